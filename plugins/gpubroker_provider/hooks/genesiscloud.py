"""Genesis Cloud: published price list (no price API), read from `catalogues/genesiscloud.json`.

Genesis Cloud's REST API (https://api.genesiscloud.com/compute/v1/..., `Authorization: Bearer <key>`)
creates and lists the caller's instances, volumes, snapshots, SSH keys and security groups, and
reports cluster availability (`/compute/v1/availability/{region}/instances`), but it has no
instance-type or price listing: its documentation lists the instance types and refers to the
pricing page for their cost. So this is a `StaticCatalogueHook`: the page, dated, transcribed.

Catalogue units: `usd_per_gpu_hour` is USD per hour for ONE GPU (on-demand; vCPUs, RAM and disks
included); `price_per_hour` = `usd_per_gpu_hour` x `gpus`. `gpu_memory_gb` is per GPU, as advertised.
`memory_gib`, `disk_gib`, `local_nvme_gib` are GiB, converted to GB (x 1.073741824);
`disk_gb` = boot disk + local NVMe.
One offer per (instance type, region); `offer_id` = "<region>:<instance type>". Regions map to
countries through the catalogue's `regions` table.
Skipped (counted): CPU-only types (`gpus` 0) and 'Contact sales' rows (`usd_per_gpu_hour` null). GPU names the
registry does not know are counted as unknown. Availability is not published: UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpubroker_provider.hooks.base import StaticCatalogueHook, skip, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per GPU per hour"
GIB_TO_GB = 1.073741824


class GenesisCloudHook(StaticCatalogueHook):
    vendor = VENDORS["genesiscloud"]
    price_unit, rows = PRICE_UNIT, "instance_types"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if not row["gpus"]:
            skip("CPU-only instance type")
        if row["usd_per_gpu_hour"] is None:
            skip("contact sales: no public price")
        for region in row["regions"]:
            yield {
                "gpu": row["gpu"],
                "region": region,
                "offer_id": f"{region}:{row['type']}",
                "instance_type": row["type"],
                "gpu_count": row["gpus"],
                "gpu_memory_gb": row.get("gpu_memory_gb"),
                "vcpus": row["vcpus"],
                "ram_gb": round(row["memory_gib"] * GIB_TO_GB, 1),  # GiB -> GB
                "disk_gb": round((row["disk_gib"] + row["local_nvme_gib"]) * GIB_TO_GB, 1),
                "price_per_hour": times(row["usd_per_gpu_hour"], row["gpus"]),  # per GPU -> whole instance
            }
