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
Each size is an item. Skipped (counted): sizes without `gpu_info` (CPU Droplets) and GPU sizes that
cannot be created anywhere now. A "gpu-" size listed without `gpu_info` is read from its slug
("gpu-h100x8-640gb": 8 GPUs, 640 GB together), or dropped when the slug names no GPU. A size without `gpu_info.vram` gets the registry's memory (inferred).
Known limits: the AMD-only endpoint api-amd.digitalocean.com is not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number, skip

PATH = "/v2/sizes"
GPU_SLUG = re.compile(r"^gpu-(?P<model>[a-z0-9]+?)x(?P<count>\d+)-(?P<gb>\d+)gb")
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
    variants = (
        Variant("slug-only-gpus", "sizes-1.json", "GPU sizes listed without `gpu_info`: the GPU, its count "
                "and the total GPU memory only in the slug (\"gpu-h100x8-640gb\"); `disk_info`, `description`"),
        Variant("single-page", "sizes-1.json", "every size on one page (`per_page=200`): `links: {}`, CPU-Optimized "
                "and Memory-Optimized sizes beside the GPU ones"),
    )

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        params: dict[str, Any] = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            page = self.request(client, "GET", PATH, params=params)
            yield page
            next_link = _next_link(page)
            if not next_link:
                return
            params = dict(httpx.URL(next_link).params)

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("sizes"), list), 'expected {"sizes": [...]}')
            yield from page["sizes"]

    def item_offers(self, size: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        slug, gpu = size["slug"], size.get("gpu_info") or _gpu_in_slug(size["slug"])
        if not gpu:
            skip("CPU Droplet size (no gpu_info)")
        if not size["available"] or not size["regions"]:
            skip("GPU size that cannot be created anywhere now")
        if (match := batch.gpu(gpu["model"])) is None:
            return
        count = int(gpu["count"])
        self.expect(count >= 1, f"gpu_info.count {count}")
        vram = _vram_gb(gpu["vram"]) if gpu.get("vram") else None
        for region in size["regions"]:
            yield self.offer(
                match,
                observed_at,
                region=region,
                country=COUNTRY.get(region.rstrip("0123456789")),
                offer_id=f"{slug}:{region}",
                instance_type=slug,
                gpu_count=count,
                gpu_memory_gb=None if vram is None else round(vram / count, 1),
                vcpus=int(size["vcpus"]),
                ram_gb=round(size["memory"] / 1024, 1),
                disk_gb=float(size["disk"]),
                price_per_hour=number(size, "price_hourly"),
                availability=Availability.AVAILABLE,
            )


def _gpu_in_slug(slug: str) -> dict[str, Any] | None:
    """`gpu_info` as a GPU size's slug states it ("gpu-h100x8-640gb": 8 H100s, 640 GB in all; "gpu-mi300x8-
    1536gb": MI300X), for a size listed without `gpu_info`; None for a slug that is not a GPU size's.
    A "gpu-" slug it cannot read drops the size: a GPU size must not pass as a CPU one."""
    if not slug.startswith("gpu-"):
        return None
    found = GPU_SLUG.match(slug)
    if found is None:
        raise ValueError(f"GPU size {slug!r} without gpu_info and a slug naming no GPU")
    model = next((m for m in (found["model"], found["model"] + "x", "rtx" + found["model"]) if _known(m)), found["model"])
    return {"model": model, "count": int(found["count"]), "vram": {"amount": int(found["gb"]), "unit": "gb"}}


def _known(name: str) -> bool:
    try:
        gpus.resolve(name)
    except gpus.UnknownGpu:
        return False
    return True


def _vram_gb(vram: dict[str, Any]) -> float:
    """{amount, unit} -> GB as advertised; an unknown unit drops the size."""
    unit = vram["unit"].lower()
    if unit not in VRAM_UNIT_TO_GB:
        raise ValueError(f"unknown gpu_info.vram unit {unit!r}")
    return vram["amount"] * VRAM_UNIT_TO_GB[unit]


def _next_link(page: Any) -> str | None:
    """links.pages.next, or None (also for a page not in the documented shape: normalise rejects it)."""
    if not isinstance(page, dict):
        return None
    return ((page.get("links") or {}).get("pages") or {}).get("next") or None
