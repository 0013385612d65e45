"""Shadeform: one API over many GPU clouds (Lambda, Hyperstack, DataCrunch, RunPod, Massed Compute, ...).

Endpoint: GET {base}/v1/instances/types (base https://api.shadeform.ai), the OpenAPI `InstancesTypes`
operation; auth `X-API-KEY: <key>` (a free account's key). No pagination: one answer
`{"instance_types": [...]}`, every type of every cloud with its regions (no filter sent).

Per instance type (shape from Shadeform's published OpenAPI, shadeform/docs `openapi.yaml`):
  `cloud` — the cloud that runs it: the offer's `cloud`; `shade_instance_type` ("H100x8", Shadeform's
    name across clouds) and `cloud_instance_type` ("gpu_8x_h100_sxm5", the cloud's own): the offer's
    instance type is the cloud's;
  `hourly_price` — US CENTS per hour for the WHOLE instance (all its GPUs): / 100;
  `configuration.num_gpus`, `.gpu_type` ("H100", "A100_80G", "A6000"), `.vram_per_gpu_in_gb` (GB PER
    GPU), `.memory_in_gb` (RAM, GB), `.storage_in_gb` (GB), `.vcpus`;
  `configuration.interconnect` — "pcie", "sxm4", "sxm5": the GPU's form factor (read with its name),
    and with `.nvlink` the interconnect: NVLink where `nvlink` is true or the board is SXM, else PCIe;
  `availability` — [{"region", "available", "display_name"}]: one offer per region, AVAILABLE or
    UNAVAILABLE as stated; the country from `display_name` ("US, Wichita, KS"), else the region name.
Offers: offer_id `<cloud>:<shade_instance_type>@<region>`; on demand (the API lists no spot prices);
`deployment_type` (vm, container, baremetal) is not an offer field. RunPod's region "any" has no country.
Skipped: types without GPUs. Dropped with a reason: no price, no region listed, a field missing or not
a number. GPU names the registry does not know are counted as unknown.
Kind: cloud (hourly) — availability is a per-region flag of each cloud's instance type, not a listing
of hosts that are rented by the minute; prices are the clouds' list prices.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker import regions
from gpubroker.schema import Availability, Interconnect, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

FORMS = {"pcie", "sxm4", "sxm5", "sxm6"}  # interconnect values that name the GPU's board


class ShadeformHook(VendorHook):
    vendor = VENDORS["shadeform"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-API-KEY": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/v1/instances/types")

    def items(self, pages: list[Any]) -> Iterator[Any]:
        yield from self.listed(pages, "instance_types")

    def item_offers(self, entry: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        config = entry["configuration"]
        count = number(config, "num_gpus")
        if count == 0:
            skip("CPU-only instance type")
        if not entry["availability"]:
            raise ValueError("availability lists no region")
        board = str(config.get("interconnect") or "").lower()
        if not (match := batch.gpu(f"{text(config, 'gpu_type')} {board if board in FORMS else ''}".strip())):
            return
        cloud, shade_type = text(entry, "cloud"), text(entry, "shade_instance_type")
        for place in entry["availability"]:
            region = text(place, "region")
            location = regions.from_place(place.get("display_name"))
            yield self.offer(
                match,
                observed_at,
                region=region,
                country=location.country or regions.from_place(region).country,
                offer_id=f"{cloud}:{shade_type}@{region}",
                instance_type=text(entry, "cloud_instance_type"),
                gpu_count=count,
                gpu_memory_gb=number(config, "vram_per_gpu_in_gb"),
                vcpus=number(config, "vcpus"),
                ram_gb=number(config, "memory_in_gb"),
                disk_gb=number(config, "storage_in_gb"),
                price_per_hour=Decimal(str(number(entry, "hourly_price"))) / 100,
                availability=Availability.AVAILABLE if place["available"] is True else Availability.UNAVAILABLE,
                interconnect=_interconnect(board, config.get("nvlink")),
                cloud=cloud,
            )


def _interconnect(board: str, nvlink: Any) -> Interconnect | None:
    """NVLink where stated or on an SXM board; PCIe for a PCIe board without NVLink; else not stated."""
    if nvlink is True or board.startswith("sxm"):
        return Interconnect.NVLINK
    return Interconnect.PCIE if board == "pcie" else None
