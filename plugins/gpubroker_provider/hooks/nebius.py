"""Nebius AI Cloud: the published GPU price list, as a dated static catalogue.

Source: https://nebius.com/prices (pay-as-you-go), with the VM presets and their regions from
docs.nebius.com (Compute pricing, regions). No public price API: `catalogues/nebius.json` holds the
list as of its `as_of` date (2026-11-01), i.e. the prices effective since 2026-10-01.

Units: `usd_per_gpu_hour` is USD per hour for ONE GPU, on-demand; since 2025-10-01 Nebius bills GPU,
vCPUs and RAM of a preset as one item, so it covers the preset's vCPUs and RAM too. An offer's
`price_per_hour` = per-GPU price x the preset's GPU count (e.g. 8gpu-128vcpu-1600gb H100 = 8 x $4.50).
Preset RAM is GiB (`ram_gib`, "200gb" in a preset name is 200 GiB): converted to GB (x 1.073741824).
`gpu_memory_gb` is per GPU in GB. One offer per preset and region; offer_id
"<platform>/<preset>@<region>", e.g. "gpu-h100-sxm/8gpu-128vcpu-1600gb@eu-north1".

Inferred / not recorded: availability is "unknown" (a price list says nothing about capacity);
"NVIDIA HGX <GPU>" names are HGX boards of SXM modules (the registry reads "HGX" as SXM); the page
prices the same in every region, the regions of each platform are from the docs. L40S prices are "from" prices: only
the smallest preset, whose price that is, is recorded. Preemptible prices, commitment discounts and
ILS prices (Israeli companies) are not recorded.
Known limits: a static list goes stale -- re-read the pricing page and bump `as_of` when it changes.
Nebius's GPU names go to the registry as written; a name it does not know is counted as unknown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpubroker_provider.hooks.base import StaticCatalogueHook, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"
GIB_TO_GB = 1.073741824


class NebiusHook(StaticCatalogueHook):
    vendor = VENDORS["nebius"]
    price_unit, rows = PRICE_UNIT, "presets"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        gpus = row["gpus"]
        if not row["preset"].startswith(f"{gpus}gpu-"):
            raise ValueError("preset name disagrees with its GPU count")
        for region in row["regions"]:
            yield {
                "gpu": row["gpu"],  # "NVIDIA HGX H100" -> H100, SXM
                "region": region,
                "offer_id": f"{row['platform']}/{row['preset']}@{region}",
                "instance_type": f"{row['platform']} {row['preset']}",
                "gpu_count": gpus,
                "gpu_memory_gb": row.get("gpu_memory_gb"),
                "vcpus": row["vcpus"],
                "ram_gb": round(row["ram_gib"] * GIB_TO_GB, 1),  # GiB -> GB
                "price_per_hour": times(row["usd_per_gpu_hour"], gpus),  # per GPU -> whole VM
            }
