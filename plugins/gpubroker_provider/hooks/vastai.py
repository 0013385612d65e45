"""Vast.ai: marketplace offers from the bundles search.

Endpoint: POST {base}/api/v0/bundles/ with a search query body; auth `Authorization: Bearer <key>`.
No cursor pagination: one call returns up to `limit` offers ordered by price, as `{"offers": [...]}`.
Units: `gpu_ram` and `cpu_ram` in MiB; `disk_space` in GB; `dph_total` USD/hour for the whole offer
(GPUs + its share of CPU, RAM and disk); `min_bid` USD/hour for an interruptible rental.
`cpu_ram` is the whole machine's; an offer gets its `gpu_frac` share of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

SEARCH_LIMIT = 1000
_ARCH = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}


class VastAiHook(VendorHook):
    vendor = VENDORS["vastai"]

    def search_query(self) -> dict[str, Any]:
        return {
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "verified": {"eq": True},
            "external": {"eq": False},
            "type": "on-demand",
            "order": [["dph_total", "asc"]],
            "limit": SEARCH_LIMIT,
        }

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "POST", "/api/v0/bundles/", json=self.search_query())

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("offers"), list), 'expected {"offers": [...]}')
            for row in page["offers"]:
                if match := batch.gpu(row["gpu_name"]):
                    batch.add(self._offer(row, match, observed_at))

    def _offer(self, row: dict[str, Any], match: gpus.GpuMatch, observed_at: datetime) -> Offer:
        share = float(row.get("gpu_frac") or 1.0)
        price, min_bid = row["dph_total"], row.get("min_bid")
        available = row.get("rentable", True) and not row.get("rented", False)
        return self.offer(
            match,
            observed_at,
            region=row.get("geolocation") or "unknown",
            offer_id=str(row["id"]),
            instance_type=f"{row['num_gpus']}x {row['gpu_name']}",
            gpu_count=row["num_gpus"],
            gpu_memory_gb=round(row["gpu_ram"] / 1024, 1),
            vcpus=int(row["cpu_cores_effective"]),
            ram_gb=round(row["cpu_ram"] * share / 1024, 1),
            disk_gb=round(row["disk_space"], 1),
            price_per_hour=price,
            spot_price=min_bid if min_bid and min_bid <= price else None,
            availability=Availability.AVAILABLE if available else Availability.UNAVAILABLE,
            available_count=1 if available else 0,
            cpu_arch=_ARCH.get(row.get("cpu_arch") or "", row.get("cpu_arch")),
        )
