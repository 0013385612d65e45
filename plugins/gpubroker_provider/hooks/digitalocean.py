"""DigitalOcean: GPU Droplet sizes from the sizes catalogue.

Endpoint: GET {base}/v2/sizes?per_page=100 ; auth `Authorization: Bearer <key>` (scope sizes:read).
Pagination: page numbers announced as links. Each response carries `links.pages.next`, an absolute
URL (`https://api.digitalocean.com/v2/sizes?page=2&per_page=100`) absent on the last page; the hook
sends that link's query (`page`, `per_page`) to /v2/sizes on the configured base URL, so the key
only ever travels to the host the connection names. `meta.total` counts sizes across pages.

Units of the fields used:
- `price_hourly` USD/hour for the whole Droplet (all its GPUs), on-demand (`price_monthly` unused).
- `memory` MB (MiB) -> GB / 1024; `disk` GB; `vcpus` count.
- `gpu_info.count` GPUs; `gpu_info.vram` {amount, unit} is the Droplet's TOTAL GPU memory
  (`gpu-h100x8-640gb`: 640 gib for 8 GPUs), so per GPU = amount / count. DigitalOcean writes the
  unit "gib" for what it advertises as GB ("80 GB H100"): the number is kept as advertised.
- `gpu_info.model` e.g. "nvidia_h100", "amd_mi300x", "nvidia_rtx4000_ada": handed to the registry.
- `regions`: region slugs where the size can be created now; `available: false` sizes are skipped.
One offer per size per listed region (offer_id `<slug>:<region>`), availability "available".
Sizes without `gpu_info` (CPU Droplets) are skipped.
Known limits: the AMD-only endpoint api-amd.digitalocean.com is not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

PATH = "/v2/sizes"
PER_PAGE = 100  # DigitalOcean default 20, max 200
MAX_PAGES = 50
VRAM_UNIT_TO_GB = {"gib": 1.0, "gb": 1.0, "mib": 1 / 1024, "mb": 1 / 1000, "tib": 1024.0, "tb": 1000.0}

# DigitalOcean region slug (without its number) -> ISO country.
COUNTRY = {
    "nyc": "US", "sfo": "US", "atl": "US", "ric": "US", "tor": "CA", "ams": "NL", "fra": "DE",
    "lon": "GB", "sgp": "SG", "blr": "IN", "syd": "AU",
}


class DigitalOceanHook(VendorHook):
    vendor = VENDORS["digitalocean"]

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        params: dict[str, Any] = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            page = self.request(client, "GET", PATH, params=params)
            yield page
            next_link = _next_link(page)
            if not next_link:
                return
            params = dict(httpx.URL(next_link).params)

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("sizes"), list), 'expected {"sizes": [...]}')
            for size in page["sizes"]:
                self._size(size, observed_at, batch)

    def _size(self, size: dict[str, Any], observed_at: datetime, batch: Batch) -> None:
        gpu = size.get("gpu_info")
        if not gpu or not size["available"] or not size["regions"]:
            return  # a CPU Droplet, or a GPU size that cannot be created anywhere now
        if (match := batch.gpu(gpu["model"])) is None:
            return
        count = int(gpu["count"])
        self.expect(count >= 1, f"{size['slug']}: gpu_info.count {count}")
        vram = gpu["vram"]["amount"] * VRAM_UNIT_TO_GB[gpu["vram"]["unit"].lower()]
        for region in size["regions"]:
            batch.add(
                self.offer(
                    match,
                    observed_at,
                    region=region,
                    country=COUNTRY.get(region.rstrip("0123456789")),
                    offer_id=f"{size['slug']}:{region}",
                    instance_type=size["slug"],
                    gpu_count=count,
                    gpu_memory_gb=round(vram / count, 1),
                    vcpus=int(size["vcpus"]),
                    ram_gb=round(size["memory"] / 1024, 1),
                    disk_gb=float(size["disk"]),
                    price_per_hour=_number(size["price_hourly"]),
                    availability=Availability.AVAILABLE,
                )
            )


def _next_link(page: Any) -> str | None:
    """links.pages.next, or None (also for a page not in the documented shape: normalise rejects it)."""
    if not isinstance(page, dict):
        return None
    return ((page.get("links") or {}).get("pages") or {}).get("next") or None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return value
