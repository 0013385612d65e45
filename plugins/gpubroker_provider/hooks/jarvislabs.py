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
from datetime import datetime
from decimal import Decimal
from typing import Any

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import Batch, StaticCatalogueHook, is_number
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"
MAX_GPUS = 8
_VENDOR_PREFIX = re.compile(r"^(NVIDIA|AMD)\s+", re.IGNORECASE)


class JarvisLabsHook(StaticCatalogueHook):
    vendor = VENDORS["jarvislabs"]
    price_unit = PRICE_UNIT

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        page = self.catalogue(pages)
        regions = page["regions"]
        self.expect(isinstance(regions, dict) and regions, "expected a regions table")
        self.expect(isinstance(page["gpus"], list) and page["gpus"], 'expected "gpus": [...]')
        for row in page["gpus"]:
            match = batch.gpu(row["gpu"])
            if match is None:
                continue
            per_gpu = row["usd_per_gpu_hour"]
            self.expect(is_number(per_gpu) and per_gpu > 0, f"{row['gpu']}: bad price {per_gpu!r}")
            counts = row["gpu_counts"]
            self.expect(
                isinstance(counts, list) and counts and all(isinstance(n, int) and 1 <= n <= MAX_GPUS for n in counts),
                f"{row['gpu']}: bad GPU counts {counts!r}",
            )
            self.expect(isinstance(row["regions"], list) and row["regions"], f"{row['gpu']}: no region")
            short = _VENDOR_PREFIX.sub("", row["gpu"]).strip()  # "H100 SXM", "A100 80GB": unique per row
            for region in row["regions"]:
                self.expect(region in regions, f"{row['gpu']}: unknown region {region!r}")
                for n in counts:
                    batch.add(
                        self.offer(
                            match,
                            observed_at,
                            region=region,
                            country=regions[region]["country"],
                            offer_id=f"{n}x {short}@{region}",
                            instance_type=f"{n}x {row['gpu']}",
                            gpu_count=n,
                            gpu_memory_gb=float(row["gpu_memory_gb"]),
                            vcpus=row["vcpus_per_gpu"] * n,
                            ram_gb=float(row["ram_gb_per_gpu"] * n),
                            price_per_hour=Decimal(str(per_gpu)) * n,  # per GPU -> whole instance
                            availability=Availability.UNKNOWN,
                        )
                    )
