"""TensorDock: GPU offerings per marketplace location, from the v2 locations listing.

Endpoint: GET {base}/api/v2/locations; auth `Authorization: Bearer <key>`. No pagination: one answer,
`{"data": {"locations": [{"id", "city", "stateprovince", "country", "tier", "gpus": [...]}]}}`.

Fields and units, per GPU of a location:
  `v0Name` ("h100-sxm5-80gb") — TensorDock's stable GPU id; `displayName` ("H100 SXM5 80GB") — the
    name matched in the registry; per-GPU memory is the "<n>GB" in it (GB);
  `price_per_hr` — USD per hour for ONE GPU, on-demand;
  `pricing.per_vcpu_hr`, `pricing.per_gb_ram_hr`, `pricing.per_gb_storage_hr` — USD per hour per
    vCPU / per GB of RAM / per GB of storage, billed on top of the GPU;
  `max_count` — GPUs deployable there now; `resources.max_*` — the most one VM can take.
A TensorDock VM is built to order, so an offer is defined here as the smallest VM with ONE GPU:
BASE_VCPUS vCPUs, BASE_RAM_GB GB RAM and the 100 GB minimum storage (inferred: TensorDock documents
the 100 GB storage minimum; 2 vCPUs / 4 GB RAM is its documented example configuration). Its price
is `price_per_hr` + 2 x per_vcpu_hr + 4 x per_gb_ram_hr + 100 x per_gb_storage_hr.
offer_id `<location id>:<v0Name>`; region "<city>, <country>" (country by name); available_count
= `max_count` (0 -> unavailable). No spot prices in this listing.
Each GPU of each location is an item; a GPU name without "<n>GB" (in `displayName` or `v0Name`)
gets its memory from the registry when the model has one size (marked inferred).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, number
from gpubroker_provider.vendors import VENDORS

BASE_VCPUS, BASE_RAM_GB, MIN_STORAGE_GB = 2, 4, 100
MEMORY = re.compile(r"(\d+)\s*GB\b", re.IGNORECASE)


class TensorDockHook(VendorHook):
    vendor = VENDORS["tensordock"]

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/api/v2/locations")

    def items(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], Any]]:
        """(location, one GPU offered there): each GPU of each location is an item."""
        for page in pages:
            locations = page["data"]["locations"]
            self.expect(isinstance(locations, list), 'expected {"data": {"locations": [...]}}')
            for location in locations:
                gpus_there = location.get("gpus") if isinstance(location, dict) else None
                self.expect(isinstance(gpus_there, list), 'expected each location to list its "gpus"')
                yield from ((location, gpu) for gpu in gpus_there)

    def item_offers(self, item: tuple[dict[str, Any], Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        location, gpu = item
        if match := batch.gpu(gpu["displayName"]):
            yield self._offer(location, gpu, match, observed_at)

    def _offer(self, location: dict[str, Any], gpu: dict[str, Any], match: gpus.GpuMatch,
               observed_at: datetime) -> Offer:
        rates = gpu["pricing"]
        price = (number(gpu, "price_per_hr") + BASE_VCPUS * number(rates, "per_vcpu_hr")
                 + BASE_RAM_GB * number(rates, "per_gb_ram_hr") + MIN_STORAGE_GB * number(rates, "per_gb_storage_hr"))
        memory = MEMORY.search(gpu["displayName"]) or MEMORY.search(gpu["v0Name"])
        count = gpu["max_count"]
        self.expect(isinstance(count, int) and count >= 0, "max_count is not a count")
        return self.offer(
            match,
            observed_at,
            region=f"{location['city']}, {location['country']}",
            country=location["country"],
            offer_id=f"{location['id']}:{gpu['v0Name']}",
            instance_type=f"1x {gpu['v0Name']}",
            gpu_count=1,
            gpu_memory_gb=float(memory.group(1)) if memory else None,  # else from the registry
            vcpus=BASE_VCPUS,
            ram_gb=BASE_RAM_GB,
            disk_gb=MIN_STORAGE_GB,
            price_per_hour=round(price, 4),
            availability=Availability.AVAILABLE if count else Availability.UNAVAILABLE,
            available_count=count,
        )
