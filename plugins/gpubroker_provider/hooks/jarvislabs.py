"""JarvisLabs: the published GPU price list, as a dated static catalogue.

Source: https://jarvislabs.ai/pricing. No public price API without an account:
`catalogues/jarvislabs.json` holds the list as of its `as_of` date (2026-11-01).

Units: `usd_per_gpu_hour` is USD per hour for ONE GPU, on-demand (billed per minute). An instance
takes 1-8 GPUs of one type, so an offer's `price_per_hour` = per-GPU price x GPU count.
`vcpus_per_gpu` / `ram_gb_per_gpu` are the page's per-GPU allocation (GB); an n-GPU instance gets n
times that (inferred: the page shows the single-GPU allocation and "scale to 8 GPUs per instance").
`gpu_memory_gb` is per GPU in GB.
One offer per GPU type, GPU count and region; offer_id "<n>x <GPU as JarvisLabs names it>@<region>",
e.g. "8x H100 SXM@EU1", "1x A100 40GB@IN1".

Inferred / not recorded: availability is "unknown" (a price list says nothing about capacity);
the page shows one price for all regions, the region of each GPU type comes from the catalogue's
region table (JarvisLabs' own data centres, India and Europe); which GPU counts are offered per type
is from the launch form, not the pricing page. Spot (up to 56% off) and commitment prices, and
storage ($0.10/GB-month), are not recorded.
Known limits: a static list goes stale -- re-read the pricing page and bump `as_of` when it changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker_provider.hooks.base import StaticCatalogueHook, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"
MAX_GPUS = 8
_VENDOR_PREFIX = re.compile(r"^(NVIDIA|AMD)\s+", re.IGNORECASE)


class JarvisLabsHook(StaticCatalogueHook):
    vendor = VENDORS["jarvislabs"]
    price_unit, rows = PRICE_UNIT, "gpus"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        short = _VENDOR_PREFIX.sub("", row["gpu"]).strip()  # "H100 SXM", "A100 80GB": unique per row
        for region in row["regions"]:
            for n in row["gpu_counts"]:
                if not isinstance(n, int) or not 1 <= n <= MAX_GPUS:
                    raise ValueError(f"GPU count is not 1 to {MAX_GPUS}")
                yield {
                    "gpu": row["gpu"],
                    "region": region,
                    "offer_id": f"{n}x {short}@{region}",
                    "instance_type": f"{n}x {row['gpu']}",
                    "gpu_count": n,
                    "gpu_memory_gb": row.get("gpu_memory_gb"),
                    "vcpus": row["vcpus_per_gpu"] * n,
                    "ram_gb": float(row["ram_gb_per_gpu"] * n),
                    "price_per_hour": times(row["usd_per_gpu_hour"], n),  # per GPU -> whole instance
                }
