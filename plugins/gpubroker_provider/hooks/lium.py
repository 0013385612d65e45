"""Lium (Bittensor subnet 51): rentable GPU executors.

Endpoint: GET {base}/api/executors (base https://lium.io), the listing the official `lium` SDK reads
(`Lium.ls`). Auth: `X-API-Key: <key>`.
Pagination: page numbers. The answer is a bare JSON array of executors; we ask `page=N&size=PAGE_SIZE`
(the SDK sends `size`) and stop at the first page shorter than `PAGE_SIZE` (or after `MAX_PAGES`).
The array carries no total or next link, so a short page is the only end marker.

Units, per executor:
- `price_per_hour`: USD per hour for the WHOLE executor (all its GPUs) — taken as is;
- `specs.gpu.count`: GPUs; `specs.gpu.details[].name` / `.capacity`: model name and memory per GPU
  in MiB (as `nvidia-smi` reports it: an H100 is 81559 MiB = 79.6 GiB);
- `specs.cpu.count`: CPU cores; `specs.ram.total` and `specs.hard_disk.total`: KiB (inferred: the
  validator's machine-spec script reports kilobytes);
- `location`: `{"country", "country_code", "region", "city", ...}` from IP geolocation.
Inferred: executors are whole machines rented on demand; an executor in the list is rentable
(AVAILABLE, one unit). The offer id is the executor id (a UUID stable for the machine).
Skipped: executors without GPUs; GPU names the registry does not know are counted as unknown
(e.g. "NVIDIA GeForce GTX 1660 SUPER"). An executor without a location keeps region "unknown".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip
from gpubroker_provider.vendors import VENDORS

EXECUTORS = "/api/executors"
MAX_PAGES = 50
KIB_PER_GB = 1024 * 1024  # KiB -> GiB, the "GB" vendors advertise
MIB_PER_GB = 1024


def _region(location: dict[str, Any] | None) -> tuple[str, str | None]:
    """('Ashburn, VA, US', 'US') from the executor's geolocation; ('unknown', None) without one."""
    if not location or not location.get("country_code"):
        return "unknown", None
    parts = [location.get("city"), location.get("region"), location["country_code"]]
    return ", ".join(p for p in parts if p), location["country_code"]


class LiumHook(VendorHook):
    vendor = VENDORS["lium"]
    page_size: ClassVar[int] = 100

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-API-Key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for page_number in range(1, MAX_PAGES + 1):
            page = self.request(client, "GET", EXECUTORS, params={"page": page_number, "size": self.page_size})
            yield page
            if not isinstance(page, list) or len(page) < self.page_size:
                return  # a short page is the last; a non-list is rejected by normalise

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, list), "expected a JSON array of executors")
            yield from page

    def item_offers(self, executor: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        gpu = executor["specs"]["gpu"]
        if not gpu["count"]:
            skip("CPU-only executor")
        details = gpu["details"]
        self.expect(len(details) == gpu["count"], "gpu.count != len(gpu.details)")
        if match := batch.gpu(details[0]["name"]):
            yield self._offer(executor, match, observed_at)

    def _offer(self, executor: dict[str, Any], match: gpus.GpuMatch, observed_at: datetime) -> Offer:
        specs = executor["specs"]
        gpu = specs["gpu"]
        region, country = _region(executor.get("location"))
        disk = specs.get("hard_disk")
        name = executor["machine_name"]
        return self.offer(
            match,
            observed_at,
            region=region,
            country=country,
            offer_id=str(executor["id"]),
            instance_type=name if gpu["count"] == 1 else f"{gpu['count']}x {name}",
            gpu_count=gpu["count"],
            gpu_memory_gb=_maybe_gb(gpu["details"][0].get("capacity"), MIB_PER_GB),  # None: from the registry
            vcpus=int(specs["cpu"]["count"]),
            ram_gb=round(specs["ram"]["total"] / KIB_PER_GB, 1),
            disk_gb=_maybe_gb(disk["total"], KIB_PER_GB) if disk else None,
            price_per_hour=number(executor, "price_per_hour"),
            availability=Availability.AVAILABLE,
            available_count=1,
        )


def _maybe_gb(amount: float | None, units_per_gb: int) -> float | None:
    return None if amount is None else round(amount / units_per_gb, 1)
