"""Crusoe Cloud: the published GPU price list, as a dated static catalogue.

Source: https://crusoe.ai/cloud/pricing (on-demand), with VM type names and regions from Crusoe's
docs. No public price API: `catalogues/crusoe.json` holds the list as of its `as_of` date (2026-11-01).

Units: `usd_per_gpu_hour` is USD per hour for ONE GPU ("$3.90/GPU-hr"); a VM type "<type>.<n>x" has
n GPUs and is billed n x that, so an offer's `price_per_hour` = per-GPU price x GPU count
(h100-80gb-sxm-ib.8x = 8 x $3.90 = $31.20). `gpu_memory_gb` is per GPU in GB. The page publishes no
vCPU/RAM per VM type: those fields stay empty. One offer per VM type and region; offer_id
"<type>.<n>x@<region>", e.g. "l40s-48gb.1x@us-east1".

Inferred / not recorded: availability is "unknown" (a price list says nothing about capacity);
one price for all regions, the regions of each type come from the docs; "Contact sales" rows
(GB200, B200) have no public price and produce no offer. Crusoe's support FAQ says SXM (HGX) and
MI300X capacity is in practice sold under reservations, L40S and A100 PCIe on demand: the published
on-demand list price is recorded anyway. Spot and reserved prices are not recorded.
"HGX" in a Crusoe GPU name means an SXM board: form factor SXM. "NVL72" names the rack, not a form factor.
Both are read by the GPU registry: Crusoe's names go to it as written.
Known limits: a static list goes stale -- re-read the pricing page and bump `as_of` when it changes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import Batch, StaticCatalogueHook, is_number
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"


class CrusoeHook(StaticCatalogueHook):
    vendor = VENDORS["crusoe"]
    price_unit = PRICE_UNIT

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        page = self.catalogue(pages)
        regions = page["regions"]
        self.expect(isinstance(regions, dict) and regions, "expected a regions table")
        self.expect(isinstance(page["gpus"], list) and page["gpus"], 'expected "gpus": [...]')
        for row in page["gpus"]:
            per_gpu = row["usd_per_gpu_hour"]
            if per_gpu is None:  # "Contact sales": no public price, no offer
                self.expect(bool(row["price_text"]), f"{row['vm_type']}: no price and no price text")
                continue
            match = batch.gpu(row["gpu"])  # "NVIDIA H100 80GB HGX" -> H100, SXM
            if match is None:
                continue
            self.expect(is_number(per_gpu) and per_gpu > 0, f"{row['vm_type']}: bad price {per_gpu!r}")
            counts = row["gpu_counts"]
            self.expect(
                isinstance(counts, list) and counts and all(isinstance(n, int) and 1 <= n <= 16 for n in counts),
                f"{row['vm_type']}: bad GPU counts {counts!r}",
            )
            self.expect(isinstance(row["regions"], list) and row["regions"], f"{row['vm_type']}: no region")
            for region in row["regions"]:
                self.expect(region in regions, f"{row['vm_type']}: unknown region {region!r}")
                for n in counts:
                    vm_type = f"{row['vm_type']}.{n}x"
                    batch.add(
                        self.offer(
                            match,
                            observed_at,
                            region=region,
                            country=regions[region]["country"],
                            offer_id=f"{vm_type}@{region}",
                            instance_type=vm_type,
                            gpu_count=n,
                            gpu_memory_gb=float(row["gpu_memory_gb"]),
                            price_per_hour=Decimal(str(per_gpu)) * n,  # per GPU -> whole VM
                            availability=Availability.UNKNOWN,
                        )
                    )
