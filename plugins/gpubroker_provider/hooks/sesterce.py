"""Sesterce: the live GPU offers of Sesterce Cloud (a French GPU cloud that also resells partner
capacity), from its API.

Endpoint: GET {base}/gpu-cloud/instances/offers (base https://api.cloud.sesterce.com); auth
`X-API-KEY: <key>` (a free account's key). No pagination: the answer is a bare JSON array of offers
(no filter sent). Sesterce's public price surfaces are a homepage table of "From / GPU / hr" floors
(lowest across configurations: no buyable offer) and the console page, which server-renders this
same answer into Next.js internals: the API is the one stable source of real configurations.

Per offer (shape from two public readers of this endpoint, and a reader of the console page that
renders the same book):
  `instanceId` — the configuration; `gpuName` ("H100", "A100_80G", "RTXPro6000") and `gpuCount`;
  `hourlyPrice` — USD per hour for the WHOLE instance (all its GPUs; the console prints it in USD);
  `hourlySpotPrice` — its interruptible price where `spotOfferAvailable` is true (else none);
  `configuration.vRamGB` — GPU memory PER GPU, GB (as both API readers take it; a total would fail the
    registry's memory check and be reported); `.vCpu`; `.ramGB` (RAM, GB); `.storageGB` (disk, GB);
  `nvlink` (bool) and `configuration.interconnect` (a fabric name) — InfiniBand or RoCE where the
    fabric names one, else NVLink where `nvlink` is true, else PCIe where the fabric says so;
  `availability` — [{"name", "region", "countryCode", "available"}]: one offer per entry, AVAILABLE or
    UNAVAILABLE as stated; the country from `countryCode` (null for some bare-metal sites: then from
    the region's name, else none);
  `deploymentType` ("vm", "baremetal", "container") and `cloud` ({"_id", "name"}: the partner cloud,
    named by anonymised tags such as "AZ_02") are not offer fields.
Offers: offer_id `<instanceId>@<region>`, the instance type `instanceId`; on demand. Skipped: CPU
configurations (`gpuCount` 0). Dropped with a reason: no positive price, no region listed, a field
missing or not a number.
Recording (replay/recordings/sesterce): the shape above; 1x H100 at $2.189/h and the 8x H200's float
artefact (30.008000000000003) as a public reader recorded them live, the other prices placeholders.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import regions
from gpubroker.schema import Availability, Interconnect, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, number_or_none, skip, text

FABRICS = (("infiniband", Interconnect.INFINIBAND), ("roce", Interconnect.ROCE), ("nvlink", Interconnect.NVLINK),
           ("pcie", Interconnect.PCIE))  # fmt: skip


class SesterceHook(VendorHook):
    vendor = VENDORS["sesterce"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-API-KEY": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/gpu-cloud/instances/offers")

    def items(self, pages: list[Any]) -> Iterator[Any]:
        yield from self.listed(pages)

    def item_offers(self, entry: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        count = number(entry, "gpuCount")
        if count == 0:
            skip("CPU-only configuration")
        price = number(entry, "hourlyPrice")
        if price <= 0:
            raise ValueError("hourlyPrice is not a positive price")
        spot = number(entry, "hourlySpotPrice") if entry.get("spotOfferAvailable") is True else None
        places = entry["availability"]
        if not isinstance(places, list) or not places:
            raise ValueError("no region listed in availability")
        if (match := batch.gpu(text(entry, "gpuName"))) is None:
            return
        config = entry["configuration"]
        for place in places:
            region = text(place, "region")
            location = regions.country(place.get("countryCode"))
            yield self.offer(
                match,
                observed_at,
                region=region,
                country=location.country or regions.from_place(place.get("name") or region).country,
                offer_id=f"{text(entry, 'instanceId')}@{region}",
                instance_type=entry["instanceId"],
                gpu_count=count,
                gpu_memory_gb=number(config, "vRamGB"),
                vcpus=number(config, "vCpu"),
                ram_gb=number(config, "ramGB"),
                disk_gb=number_or_none(config, "storageGB"),
                price_per_hour=price,  # the whole instance
                spot_price=spot,
                availability=Availability.AVAILABLE if place["available"] is True else Availability.UNAVAILABLE,
                interconnect=fabric(entry, config),
            )


def fabric(entry: dict[str, Any], config: dict[str, Any]) -> Interconnect | None:
    """The fabric `configuration.interconnect` names, NVLink where `nvlink` is true, PCIe where said."""
    named = str(config.get("interconnect") or "").lower().replace(" ", "")
    found = [kind for word, kind in FABRICS if word in named]
    if found and found[0] in (Interconnect.INFINIBAND, Interconnect.ROCE):
        return found[0]
    if entry.get("nvlink") is True:
        return Interconnect.NVLINK
    return found[0] if found else None
