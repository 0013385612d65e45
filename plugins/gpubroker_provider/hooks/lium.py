"""Lium (Bittensor subnet 51): rentable GPU executors.

Endpoint: GET {base}/api/executors (base https://lium.io), the listing the official `lium` SDK reads
(`Lium.ls`). Auth: `X-API-Key: <key>`.
Pagination: page numbers. The answer is a bare JSON array of executors; we ask `page=N&size=PAGE_SIZE`
(the SDK sends `size`) and stop at the first page shorter than `PAGE_SIZE` (or after `MAX_PAGES`).
The array carries no total or next link, so a short page is the only end marker.

Units, per executor:
- price: `price_per_hour`, USD per hour for the WHOLE executor (the shape until the backend's
  2025-11 migration), else `price_per_gpu`, USD per GPU-hour (the newer shape), times the GPUs;
- GPUs: `specs.gpu.count` (else a top-level `gpu_count`, else the count `machine_name` states,
  "8x ..." / "... 8x", else one per `specs.gpu.details` entry); the model is
  `specs.gpu.details[0].name` as `nvidia-smi` reports it, else `machine_name` (newer listings may
  send no details); `details[].capacity`: memory per GPU in MiB (an H100 is 81559 MiB = 79.6 GiB);
- `specs.cpu.count`: CPU cores; `specs.ram.total` and `specs.hard_disk.total`: KiB (inferred: the
  validator's machine-spec script reports kilobytes); each may be absent;
- `location`: `{"country", "country_code", "region", "city", ...}` from IP geolocation;
- `tier` (newer): "spot" executors are reclaimable: spot offers; "secure" (or none): on demand, and
  "secure" ones are tagged secure-cloud.
The public node feed (GET /api/public/v1/nodes, `{"nodes": [...]}`) is read too: flat rows with
`gpu_model`, `gpu_count`, `available_gpu_count`, `price_per_node_hour` (whole node), `gpu_memory_gb`,
`ram_gb`, `cpu_count`, `country_code`, `tier`.
Inferred: executors are whole machines; an executor in the list is rentable (AVAILABLE, one unit), unless
`is_whole_host_free` is false (or `available_gpu_count` < `gpu_count`): part of it is rented, LIMITED.
The offer id is the executor id (a UUID stable for the machine).
Skipped: executors stating zero GPUs. Dropped with a reason: executors whose GPU count or price is
stated nowhere. GPU names the registry does not know are counted as unknown
(e.g. "NVIDIA GeForce GTX 1660 SUPER"). An executor without a location keeps region "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer, PricingType, Tag
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import (Batch, Variant, VendorHook, is_number, number, number_or_none, skip, text,
                                            times)

EXECUTORS = "/api/executors"
MAX_PAGES = 50
KIB_PER_GB = 1024 * 1024  # KiB -> GiB, the "GB" vendors advertise
MIB_PER_GB = 1024
GB_IN_NAME = re.compile(r"(\d+)\s*GB\b", re.I)
COUNT_IN_NAME = re.compile(r"(?:^|\s)(?:(\d+)\s*x|x\s*(\d+))(?=\s|$)", re.I)  # "8x H100", "H100 SXM 8x"


def _region(location: dict[str, Any] | None) -> tuple[str, str | None]:
    """('Ashburn, VA, US', 'US') from the executor's geolocation (a code, else the country as named);
    ('unknown', None) without one."""
    country = (location or {}).get("country_code") or (location or {}).get("country")
    if not country:
        return "unknown", None
    parts = [location.get("city"), location.get("region"), country]
    return ", ".join(p for p in parts if p), country


class LiumHook(VendorHook):
    vendor = VENDORS["lium"]
    page_size: ClassVar[int] = 100
    variants = (
        Variant("machine-name", "executors-1.json", "the newer listing: `price_per_gpu` instead of "
                "`price_per_hour`, the GPU named in `machine_name` with no (or short) `specs.gpu.details`, "
                "`gpu_count` beside empty `specs`, a count in the machine name, `tier` spot/secure"),
        Variant("public-nodes", "executors-1.json", "the public node feed (`/api/public/v1/nodes`): "
                '`{"nodes": [...]}` of flat rows: `gpu_model`, `gpu_count`, `available_gpu_count`, '
                "`price_per_node_hour`, `gpu_memory_gb`, `ram_gb`, `cpu_count`, `country_code`, `tier`"),
    )

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
            rows = page.get("nodes") if isinstance(page, dict) else page
            self.expect(isinstance(rows, list), 'expected a JSON array of executors (or {"nodes": [...]})')
            yield from rows

    def item_offers(self, executor: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if "gpu_model" in executor:  # a row of the public node feed
            yield from self._node_offers(executor, observed_at, batch)
            return
        specs = executor.get("specs") or {}
        gpu = specs.get("gpu") or {}
        details = gpu.get("details") or []
        count = _gpu_count(executor, gpu, details)
        if count == 0:
            skip("CPU-only executor")
        if details and len(details) != count:
            raise ValueError("gpu.count != len(gpu.details)")
        if match := batch.gpu(_gpu_name(executor, details)):
            yield self._offer(executor, specs, count, match, observed_at)

    def _offer(self, executor: dict[str, Any], specs: dict[str, Any], count: int, match: gpus.GpuMatch,
               observed_at: datetime) -> Offer:  # fmt: skip
        details = (specs.get("gpu") or {}).get("details") or [{}]
        region, country = _region(executor.get("location"))
        name = executor.get("machine_name") or details[0]["name"]
        tier = str(executor.get("tier") or "").lower()
        return self.offer(
            match,
            observed_at,
            region=region,
            country=country,
            offer_id=str(executor["id"]),
            instance_type=name if count == 1 or COUNT_IN_NAME.search(name) else f"{count}x {name}",
            gpu_count=count,
            gpu_memory_gb=_maybe_gb(details[0].get("capacity"), MIB_PER_GB) or _gb_in_name(name),  # None: registry
            vcpus=int(specs["cpu"]["count"]) if "cpu" in specs else None,
            ram_gb=_maybe_gb((specs.get("ram") or {}).get("total"), KIB_PER_GB),
            disk_gb=_maybe_gb((specs.get("hard_disk") or {}).get("total"), KIB_PER_GB),
            price_per_hour=_price(executor, count),
            **_tier(tier),
            **_whole_host(executor.get("is_whole_host_free", True)),
        )

    def _node_offers(self, node: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        """The offer of one row of the public node feed (flat fields, the GPU as `gpu_model`)."""
        count = node["gpu_count"]
        if count == 0:
            skip("CPU-only node")
        if not (match := batch.gpu(text(node, "gpu_model"))):
            return
        free = node.get("available_gpu_count", count)
        yield self.offer(
            match,
            observed_at,
            region=node.get("country_code") or "unknown",
            country=node.get("country_code"),
            offer_id=str(node.get("id") or node["node_id"]),
            instance_type=node["gpu_model"] if count == 1 else f"{count}x {node['gpu_model']}",
            gpu_count=count,
            gpu_memory_gb=number_or_none(node, "gpu_memory_gb"),
            vcpus=_maybe(int, node.get("cpu_count")),
            ram_gb=number_or_none(node, "ram_gb"),
            price_per_hour=_price(node, count, whole="price_per_node_hour"),
            **_tier(str(node.get("tier") or "").lower()),
            **_whole_host(free >= count),
        )


def _gpu_count(executor: dict[str, Any], gpu: dict[str, Any], details: list[Any]) -> int:
    """GPUs of the executor, from the first place that states them."""
    for stated in (gpu.get("count"), executor.get("gpu_count")):
        if stated is not None:
            if not is_number(stated) or stated != int(stated) or stated < 0:
                raise ValueError(f"GPU count {stated!r} is not a whole number")
            return int(stated)
    if found := COUNT_IN_NAME.search(executor.get("machine_name") or ""):
        return int(found.group(1) or found.group(2))
    if details:
        return len(details)
    raise ValueError("GPU count stated nowhere (specs.gpu.count, gpu_count, machine_name, gpu.details)")


def _gpu_name(executor: dict[str, Any], details: list[Any]) -> str:
    """The GPU model: the first detail's `nvidia-smi` name, else the machine name without its count."""
    if details and details[0].get("name"):
        return details[0]["name"]
    name = COUNT_IN_NAME.sub(" ", executor.get("machine_name") or "").strip()
    if not name:
        raise ValueError("GPU model named nowhere (gpu.details[].name, machine_name)")
    return name


def _price(row: dict[str, Any], count: int, whole: str = "price_per_hour") -> Decimal:
    """USD per hour for the whole executor: the `whole` price, else `price_per_gpu` x GPUs."""
    if row.get(whole) is not None:
        return Decimal(str(number(row, whole)))
    if row.get("price_per_gpu") is not None:
        return times(number(row, "price_per_gpu"), count)
    raise ValueError(f"no price ({whole}, price_per_gpu)")


def _tier(tier: str) -> dict[str, Any]:
    """What a `tier` says: "spot" a spot offer; "secure" an on-demand one tagged secure-cloud."""
    return {"pricing_type": PricingType.SPOT if tier == "spot" else PricingType.ON_DEMAND,
            "tags": (Tag.SECURE_CLOUD,) if tier == "secure" else ()}  # fmt: skip


def _whole_host(free: bool) -> dict[str, Any]:
    """Availability of an executor rented whole: one unit when its whole host is free; else part of it
    is in use (Lium splits hosts): limited."""
    return {"availability": Availability.AVAILABLE, "available_count": 1} if free else {
        "availability": Availability.LIMITED, "available_count": 0}


def _maybe(convert, value):
    return None if value is None else convert(value)


def _gb_in_name(name: str) -> float | None:
    """The memory a GPU name states ("NVIDIA H100 80GB HBM3": 80.0), None when it states none."""
    found = GB_IN_NAME.search(name)
    return float(found.group(1)) if found else None


def _maybe_gb(amount: float | None, units_per_gb: int) -> float | None:
    return None if amount is None else round(amount / units_per_gb, 1)
