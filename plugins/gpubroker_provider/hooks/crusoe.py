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

from collections.abc import Iterator
from typing import Any

from gpubroker_provider.hooks.base import StaticCatalogueHook, skip, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"


class CrusoeHook(StaticCatalogueHook):
    vendor = VENDORS["crusoe"]
    price_unit, rows = PRICE_UNIT, "gpus"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if row["usd_per_gpu_hour"] is None:
            if not row["price_text"]:
                raise ValueError("no price and no price text")
            skip("contact sales: no public price")
        for region in row["regions"]:
            for n in row["gpu_counts"]:
                vm_type = f"{row['vm_type']}.{n}x"
                yield {
                    "gpu": row["gpu"],  # "NVIDIA H100 80GB HGX" -> H100, SXM
                    "region": region,
                    "offer_id": f"{vm_type}@{region}",
                    "instance_type": vm_type,
                    "gpu_count": n,
                    "gpu_memory_gb": row.get("gpu_memory_gb"),
                    "price_per_hour": times(row["usd_per_gpu_hour"], n),  # per GPU -> whole VM
                }
