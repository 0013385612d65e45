"""Paperspace (DigitalOcean): the published CORE machine price list, as a dated static catalogue.

Source: https://www.paperspace.com/pricing (hourly machine prices), with the datacenter of each
machine type from https://docs.digitalocean.com/products/paperspace/machines/details/availability/.
No public price API: `catalogues/paperspace.json` holds the list as of its `as_of` date (2026-11-01).

Units: `hourly_usd` is USD per hour for the WHOLE machine (all its GPUs, vCPUs and RAM), the way
Paperspace prices machine types ("H100x8" is one machine of 8 GPUs) -- no conversion needed.
`gpu_memory_gb` is per GPU in GB; `ram_gb` is the machine's RAM in GB as published.
One offer per machine type and datacenter (NY2, CA1 in the US; AMS1 in the Netherlands); offer_id
"<machine type>@<datacenter>". Country comes from the catalogue's datacenter table.

Inferred / not recorded: availability is "unknown" (a price list says nothing about capacity);
storage and the monthly access fee of hourly machines are billed on top and are not included;
36-month commitment prices (marked * / ** on the page) are not recorded.
Known limits: a static list goes stale -- re-read the pricing page and bump `as_of` when it changes.
Quadro/Pascal-era cards (RTX4000, P-series) are not in the GPU registry and are counted as unknown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpubroker_provider.hooks.base import StaticCatalogueHook, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per machine per hour"


class PaperspaceHook(StaticCatalogueHook):
    vendor = VENDORS["paperspace"]
    price_unit, rows, places = PRICE_UNIT, "machines", "datacenters"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for dc in row["datacenters"]:
            yield {
                "gpu": row["gpu"],
                "region": dc,
                "offer_id": f"{row['machine_type']}@{dc}",
                "instance_type": row["machine_type"],
                "gpu_count": row["gpus"],
                "gpu_memory_gb": row.get("gpu_memory_gb"),
                "vcpus": row["vcpus"],
                "ram_gb": float(row["ram_gb"]),
                "price_per_hour": times(row["hourly_usd"], 1),  # already the whole machine
            }
