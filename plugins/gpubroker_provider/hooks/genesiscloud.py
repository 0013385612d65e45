"""Genesis Cloud: published price list (no price API), read from `catalogues/genesiscloud.json`.

Genesis Cloud's REST API (https://api.genesiscloud.com/compute/v1/..., `Authorization: Bearer <key>`)
creates and lists the caller's instances, volumes, snapshots, SSH keys and security groups, and
reports cluster availability (`/compute/v1/availability/{region}/instances`), but it has no
instance-type or price listing: its documentation lists the instance types and refers to the
pricing page for their cost. So this is a `StaticCatalogueHook`: the page, dated, transcribed.

Catalogue units: `usd_per_gpu_hour` is USD per hour for ONE GPU (on-demand; vCPUs, RAM and disks
included); `price_per_hour` = `usd_per_gpu_hour` x `gpus`. `gpu_memory_gb` is per GPU, as advertised.
`memory_gib`, `disk_gib`, `local_nvme_gib` are GiB; `disk_gb` = boot disk + local NVMe.
One offer per (instance type, region); `offer_id` = "<region>:<instance type>". Regions map to
countries through the catalogue's `regions` table.
Skipped: CPU-only types (`gpus` 0) and 'Contact sales' rows (`usd_per_gpu_hour` null). GPU names the
registry does not know are counted as unknown. Availability is not published: UNKNOWN.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from gpubroker import gpus
from gpubroker.schema import Offer
from gpubroker_provider.hooks.base import Batch, StaticCatalogueHook
from gpubroker_provider.vendors import VENDORS


def _usd(value: Any) -> Decimal:
    """A catalogue price (JSON number); anything else is malformed (ValueError)."""
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"not a price: {value!r}") from None


class GenesisCloudHook(StaticCatalogueHook):
    vendor = VENDORS["genesiscloud"]

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for page in pages:
            self.expect(isinstance(page, dict) and page.get("price_unit") == "per GPU per hour",
                        "expected a catalogue priced per GPU per hour")
            self.expect(isinstance(page.get("instance_types"), list), 'expected {"instance_types": [...]}')
            regions = page["regions"]
            for row in page["instance_types"]:
                if not row["gpus"] or row["usd_per_gpu_hour"] is None:
                    continue  # CPU-only, or 'Contact sales'
                if (match := batch.gpu(row["gpu"])) is None:
                    continue
                for region in row["regions"]:
                    batch.add(self._offer(row, match, region, regions[region]["country"], observed_at))

    def _offer(
        self, row: dict[str, Any], match: gpus.GpuMatch, region: str, country: str, observed_at: datetime
    ) -> Offer:
        return self.offer(
            match,
            observed_at,
            region=region,
            country=country,
            offer_id=f"{region}:{row['type']}",
            instance_type=row["type"],
            gpu_count=row["gpus"],
            gpu_memory_gb=row["gpu_memory_gb"],
            vcpus=row["vcpus"],
            ram_gb=row["memory_gib"],
            disk_gb=row["disk_gib"] + row["local_nvme_gib"],
            price_per_hour=_usd(row["usd_per_gpu_hour"]) * row["gpus"],
        )
