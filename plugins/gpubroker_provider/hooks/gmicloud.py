"""GMI Cloud: on-demand GPU prices read from the public price page.

Page: GET https://www.gmicloud.ai/pricing (server-rendered; no key). GMI publishes no price API (its
Cluster Engine API needs an account and quotes no list prices). Each GPU is a card `div.gpu-card`:
an availability badge (`.gpu-badge`: "AVAILABLE NOW" or "Limited Availability"), the GPU
(`.gpu-name`, "NVIDIA H100"), its memory (`.gpu-memory`, "80 GB HBM3") and the price cell
(`.gpu-price`: "from $2.00 / GPU-hour", "Contact Sales" or "Pre order"). No stored copy of the page
could be found: the markup is written from its visible card text as a peer reader documents it
(badge, "NVIDIA <GPU>", price cell); selectors to be checked live.

Units: the price is USD per hour for ONE GPU, the lowest on-demand rate ("from"); an offer is one
GPU at that rate (`gpu_count` 1, offer_id "<gpu>-1x"). `gpu_memory_gb` per GPU, GB.
Availability from the badge: "AVAILABLE NOW" -> available, "Limited Availability" -> limited,
another badge -> unknown. The page names no data centre (region "global", no country) and no
vCPU/RAM/fabric per GPU (left empty). Skipped (counted): "Contact Sales" (no public price) and
"Pre order" cards (not yet deliverable).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.schema import Availability
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, gb, usd

BADGES = {"available now": Availability.AVAILABLE, "limited availability": Availability.LIMITED}
REGION = "global"  # the page names no data centre
_PER_GPU_HOUR = re.compile(r"/\s*GPU[- ]hour", re.IGNORECASE)


class GmiCloudHook(PageHook):
    vendor = VENDORS["gmicloud"]
    page = "/pricing"
    rows_at = Cards("div.gpu-card", {"badge": ".gpu-badge", "gpu": ".gpu-name", "memory": ".gpu-memory",
                                     "price": ".gpu-price"})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        price = (row["price"] or "").lower()
        if "contact sales" in price:
            skip("contact sales: no public price")
        if "pre order" in price or "pre-order" in price:
            skip("pre-order: not yet deliverable")
        if not _PER_GPU_HOUR.search(row["price"] or ""):
            raise ValueError(f"price {row['price']!r} is not per GPU-hour")
        if not (gpu := row["gpu"]):
            raise ValueError("no GPU name on the card")
        yield {
            "gpu": gpu,
            "region": REGION,
            "offer_id": f"{gpu.lower().removeprefix('nvidia ').replace(' ', '-')}-1x",
            "instance_type": f"{gpu} (1 GPU)",
            "gpu_count": 1,
            "gpu_memory_gb": gb(row["memory"]),
            "price_per_hour": usd(row["price"]),  # one GPU, one hour
            "availability": BADGES.get((row["badge"] or "").strip().lower(), Availability.UNKNOWN),
        }
