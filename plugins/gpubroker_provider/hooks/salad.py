"""SaladCloud: consumer GPU prices by priority level, read from the public price page's calculator.

Page: GET https://salad.com/pricing (Webflow; no key). SaladCloud's own API lists GPU classes with
their prices (GET /organizations/{organization}/gpu-classes) only for a signed-in organization, so
the page is read. Each GPU is a calculator tile `div.calculator_gpu-item`: its name
(`.calculator_gpu-name`, "RTX 4090 (24 GB)"), the price shown (`.calculator_gpu-price`, the Batch
price, "$0.160/hr", or "Coming soon") and the four priority prices the calculator switches between
(`data-price-batch`, `-low`, `-medium`, `-high`: USD per hour). No stored copy of the page could be
found: the markup is written from the calculator's visible text as a peer reader documents it
(tiles "RTX 4090 (24 GB)" grouped in "<n> Series Cards", a price, "Select your priority level");
the data attributes are our reading of where the per-priority prices are; to be checked live.

Units: USD per hour for ONE GPU; SaladCloud rents one GPU per container instance ("GPU rates include
vCPUs and RAM", which vary by node and are not published per GPU: left empty), so each offer is one
GPU (offer_id "<gpu>-<memory>gb", e.g. "rtx-4090-24gb"). `gpu_memory_gb` from the name, GB.
Priority levels (Salad's docs): every node is a consumer PC that can disconnect; a container at a
lower priority is also preempted whenever a higher-paying one needs the node, and at High it is
"not interrupted by other workloads". So `price_per_hour` is the High price (the on-demand rate,
`pricing_type` on_demand) and `spot_price` the Batch price (the lowest level, interruptible by every
other); Low and Medium sit between them and are not offers of their own.
Salad is a global network of nodes with no data centre to name: region "global", no country;
availability "unknown" (the page shows no node counts). Skipped: "Coming soon" tiles (no price).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, gb, usd

REGION = "global"  # a worldwide network of consumer nodes


class SaladHook(PageHook):
    vendor = VENDORS["salad"]
    page = "/pricing"
    rows_at = Cards("div.calculator_gpu-item", {"name": ".calculator_gpu-name", "shown": ".calculator_gpu-price"},
                    attributes={"high": ("", "data-price-high"), "batch": ("", "data-price-batch")})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if row["high"] is None and "coming soon" in (row["shown"] or "").lower():
            skip("coming soon: no price")
        name, memory = row["name"], gb(row["name"])  # "RTX 4090 (24 GB)"
        gpu = name.split("(")[0].strip()
        high, batch = usd(row["high"], currency="USD"), usd(row["batch"], currency="USD")
        if batch > high:
            raise ValueError(f"Batch price {batch} above the High price {high}")
        yield {
            "gpu": gpu,
            "region": REGION,
            "offer_id": f"{gpu.lower().replace(' ', '-')}-{memory:g}gb",
            "instance_type": name,
            "gpu_count": 1,
            "gpu_memory_gb": memory,
            "price_per_hour": high,  # High priority: not preempted by other workloads
            "spot_price": batch,  # Batch: preempted by any higher priority
        }
