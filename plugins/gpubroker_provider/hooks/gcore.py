"""Gcore: GPU Cloud flavors (bare metal and virtual GPU clusters) with their prices and capacity, region by region.

Endpoints (Gcore Cloud API, https://api.gcore.com; shapes from Gcore's OpenAPI, as its generated
SDK G-Core/gcore-python types them):
  GET /cloud/v1/projects                               the account's projects: the default one is read
  GET /cloud/v1/regions?limit=100&offset=N             regions, {"count": N, "results": [...]}, offset paging
  GET /cloud/v3/gpu/baremetal/{project_id}/{region_id}/flavors?include_prices=true&hide_disabled=true
  GET /cloud/v3/gpu/virtual/{project_id}/{region_id}/flavors?include_prices=true&hide_disabled=true
      each {"count": N, "results": [flavor, ...]}, one call per region with `has_ai_gpu` that is ACTIVE.
Auth: `Authorization: APIKey <key>`. Gcore publishes no price feed without a key: its flavor prices
(the numbers its price page shows) come from these calls. A flavor list does not name its region, so
each is kept as {"region": <the region object>, "cluster": "baremetal" | "virtual", "response": ...}.

Fields used, per flavor:
- `price.price_per_hour`: the WHOLE server (all its GPUs) per hour, in `price.currency_code` (EUR or
  USD, as the account is billed), converted at gpubroker.fx (dated there); `price_per_month` unused.
  `price.price_status` "show" is a price; "hide" (price on request) is skipped; "error" is dropped;
- `hardware_properties.gpu_count`, `.gpu_manufacturer` + `.gpu_model` ("NVIDIA" "H100") for the
  registry; per-GPU memory from `hardware_description.gpu` ("8x NVIDIA H100 80GB"), else the registry's;
  `hardware_properties.nic_ib` (e.g. "8x400G") set means the servers are on InfiniBand;
- virtual flavors only: `hardware_description.vcpus`, `.ram` (MiB -> GB x 1.048576 / 1000) and
  `.local_storage` (GiB -> GB x 1.073741824); bare metal describes them as free text (left empty);
- `capacity`: servers of this flavor the account can create now: `available_count`, "available" when
  above 0 else "unavailable"; `reserved_capacity` (the account's own reservations) is not read.
Offers: one per flavor and region, offer_id "<flavor>@<region slug>", region the slug
("luxembourg-2"), country the region's ISO `country`. Disabled flavors are skipped (asked hidden).
Not in the API: spot prices (Spot bare metal is another product), form factor (left to the name).
The recorded values (region ids, flavors, prices) follow the documented shapes; no stored copy of a
live answer exists, so the numbers stand in for Gcore's published ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.fx import TO_USD
from gpubroker.schema import Availability, Interconnect, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, PayloadError, Variant, VendorHook, number, skip, text

CLUSTERS = ("baremetal", "virtual")
PAGE_SIZE = 100
MAX_PAGES = 20
MIB_TO_GB = 1.048576 / 1000
GIB_TO_GB = 1.073741824
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*GB\b", re.IGNORECASE)  # "8x NVIDIA H100 80GB" -> 80


class GcoreHook(VendorHook):
    vendor = VENDORS["gcore"]
    primary_only = False  # the flavor lists need the project and the regions, each kept with its region
    variants = (Variant("usd-account", "baremetal-luxembourg-2.json", "an account billed in USD"),)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"APIKey {api_key}"}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        project = self._default_project(self.request(client, "GET", "/cloud/v1/projects"))
        for region in self._gpu_regions(client):
            for cluster in CLUSTERS:
                path = f"/cloud/v3/gpu/{cluster}/{project}/{region['id']}/flavors"
                flavors = self.request(client, "GET", path, params={"include_prices": "true", "hide_disabled": "true"})
                yield {"region": region, "cluster": cluster, "response": flavors}

    def _default_project(self, projects: Any) -> int:
        default = [p.get("id") for p in _results(projects) or () if isinstance(p, dict) and p.get("is_default")]
        if len(default) != 1 or not isinstance(default[0], int):
            raise self._malformed("no default project in /cloud/v1/projects")
        return default[0]

    def _gpu_regions(self, client: httpx.Client) -> Iterator[dict[str, Any]]:
        """Every ACTIVE region with GPU clusters, following the offset pages of /cloud/v1/regions."""
        offset = 0
        for _ in range(MAX_PAGES):
            page = self.request(client, "GET", "/cloud/v1/regions", params={"limit": PAGE_SIZE, "offset": offset})
            regions = _results(page)
            if regions is None:
                raise self._malformed('/cloud/v1/regions is not {"results": [...]}')
            for region in regions:
                if isinstance(region, dict) and region.get("has_ai_gpu") and region.get("state") == "ACTIVE":
                    if not isinstance(region.get("id"), int):
                        raise self._malformed("a GPU region without an id")
                    yield region
            offset += len(regions)
            if not regions or not isinstance(page.get("count"), int) or offset >= page["count"]:
                return

    def _malformed(self, what: str) -> PayloadError:
        """A listing call answered outside its documented shape (raised while fetching: the batch is refused)."""
        return PayloadError(f"{self.vendor.slug}: malformed payload: {what}")

    def items(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], str, Any]]:
        """(region, cluster, flavor) for every flavor of every region's lists."""
        for page in pages:
            kept = isinstance(page, dict) and page.get("cluster") in CLUSTERS and isinstance(page.get("region"), dict)
            self.expect(kept, "expected a flavor list kept with its region and cluster")
            flavors = _results(page["response"])
            self.expect(flavors is not None, 'expected {"count": N, "results": [...]}')
            yield from ((page["region"], page["cluster"], flavor) for flavor in flavors)

    def item_offers(self, item: tuple[dict[str, Any], str, Any], observed_at: datetime,
                    batch: Batch) -> Iterator[Offer]:  # fmt: skip
        region, cluster, flavor = item
        if flavor.get("disabled"):
            skip("disabled flavor")
        price = flavor["price"]
        if price["price_status"] == "hide":
            skip("price hidden: on request")
        if price["price_status"] != "show":
            raise ValueError(f"price_status {price['price_status']!r}")
        hardware, described = flavor["hardware_properties"], flavor["hardware_description"]
        if (match := batch.gpu(f"{text(hardware, 'gpu_manufacturer')} {text(hardware, 'gpu_model')}")) is None:
            return
        name, capacity = text(flavor, "name"), int(number(flavor, "capacity"))
        yield self.offer(
            match,
            observed_at,
            region=text(region, "slug"),
            country=text(region, "country"),
            offer_id=f"{name}@{region['slug']}",
            instance_type=name,
            gpu_count=int(number(hardware, "gpu_count")),
            gpu_memory_gb=_gpu_memory(described.get("gpu")),
            price_per_hour=_to_usd(number(price, "price_per_hour"), price["currency_code"]),
            availability=Availability.AVAILABLE if capacity > 0 else Availability.UNAVAILABLE,
            available_count=capacity,
            interconnect=Interconnect.INFINIBAND if hardware.get("nic_ib") else None,
            **(_virtual_specs(described) if cluster == "virtual" else {}),
        )


def _results(body: Any) -> list[Any] | None:
    """The `results` list of a {"count": N, "results": [...]} answer; None when it is not one."""
    results = body.get("results") if isinstance(body, dict) else None
    return results if isinstance(results, list) else None


def _gpu_memory(description: Any) -> float | None:
    """Per-GPU GB from "8x NVIDIA H100 80GB"; None (the registry's) when the description gives none."""
    found = _MEMORY.search(description) if isinstance(description, str) else None
    return float(found[1]) if found else None


def _to_usd(amount: float, currency: Any) -> Decimal:
    if currency not in TO_USD:
        raise ValueError(f"price in {currency!r}, which gpubroker.fx does not convert")
    return Decimal(str(amount)) * TO_USD[currency]


def _virtual_specs(described: dict[str, Any]) -> dict[str, Any]:
    """vCPUs, RAM (MiB -> GB) and local disk (GiB -> GB) of a virtual GPU flavor."""
    return {
        "vcpus": int(number(described, "vcpus")),
        "ram_gb": round(number(described, "ram") * MIB_TO_GB, 1),
        "disk_gb": round(number(described, "local_storage") * GIB_TO_GB, 1),
    }
