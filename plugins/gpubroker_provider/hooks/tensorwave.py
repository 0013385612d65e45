"""TensorWave: AMD Instinct MI300X / MI325X / MI355X node prices read from the public price page.

Page: GET https://tensorwave.com/pricing (no key; TensorWave publishes no price API). The prices are
one table, `table.pricing-table`, columns "Accelerator" ("AMD Instinct MI325X"), "Memory" ("256 GB
HBM3E", per GPU), "Node" ("8 GPUs") and "On-demand" ("$1.95 / GPU / hr", or "Contact sales"). No
stored copy of the page and no peer reading it could be found: the markup is written from
TensorWave's published on-demand prices (MI300X $1.50, MI325X $1.95 per GPU-hour, as quoted on
2026-05-18); selectors to be checked live.

Units: the on-demand price is USD per GPU per hour; TensorWave rents whole nodes ("Node": its GPU
count), so an offer is one node: `price_per_hour` = price x the node's GPUs. A price not per GPU is
dropped with that reason. offer_id "<gpu>.<n>x" ("mi325x.8x"), the instance type the same.
Interconnect: the page states none (left empty). TensorWave's clusters are in the United States
(the page names no data centre): region "us", country US. Capacity is not published (availability
"unknown"); "Contact sales" rows are skipped (no public price).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import PageHook, Table, count, gb, usd

_PER_GPU_HOUR = re.compile(r"/\s*GPU\s*/\s*hr\b", re.IGNORECASE)


class TensorWaveHook(PageHook):
    vendor = VENDORS["tensorwave"]
    page = "/pricing"
    rows_at = Table("table.pricing-table", columns=("Accelerator", "Memory", "Node", "On-demand"))

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        price = row["On-demand"]
        if "contact" in price.lower():
            skip("contact sales: no public price")
        if not _PER_GPU_HOUR.search(price):
            raise ValueError(f"price {price!r} is not per GPU-hour")
        gpus = count(row["Node"])
        model = row["Accelerator"].split()[-1].lower()  # "AMD Instinct MI325X" -> "mi325x"
        yield {
            "gpu": row["Accelerator"],
            "region": "us",
            "country": "US",
            "offer_id": f"{model}.{gpus}x",
            "instance_type": f"{model}.{gpus}x",
            "gpu_count": gpus,
            "gpu_memory_gb": gb(row["Memory"]),
            "price_per_hour": usd(price) * gpus,  # per GPU -> the node
        }
