"""Voltage Park: on-demand H100 prices read from the schema.org data embedded in the public price page.

Page: GET https://www.voltagepark.com/pricing (no key). The page carries its price list as JSON-LD
(`<script type="application/ld+json">`, a list of schema.org `Product`s, each with an `Offer`:
thatkavish/OpenComputePrices' Voltage Park collector reads the same `name`, `offers.price` and
`offers.priceCurrency`); the page's other JSON-LD block (the `Organization`) is not a list and is
passed over. Each product: `name` "<GPU> — <product>" ("NVIDIA H100 SXM5 80GB — On-Demand,
InfiniBand"), `sku`, `offers` {`price` (a decimal string), `priceCurrency`}.

Units: `offers.price` is USD per GPU per hour (Voltage Park's billing docs: "Number of GPUs x 24
hours x 2 days x On-Demand Price", "$3.00 per GPU/hr"). Voltage Park rents H100 nodes of 8 GPUs
(8x H100 80GB SXM5 per node, the AI @ Georgia Tech benchmark of its on-demand fleet), so an offer
is one node: `price_per_hour` = price x 8. offer_id "<sku>", instance type "<sku>.8x".
Interconnect as the product name says: "InfiniBand" (nodes on the 3.2 Tb/s InfiniBand fabric),
else NVLink (the HGX board's NVSwitch within the node).

Not on the page: which data centre a product runs in. Voltage Park's fleet is in the United States
(Texas, Virginia and Washington, per its fleet announcement): region "us", country US. Capacity is
not published (availability "unknown"). A product without an offer (a "Contact sales" card) is
skipped; a price in another currency is converted by gpubroker.fx, one it does not know drops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpubroker.schema import Interconnect
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import EmbeddedJson, PageHook, gb, usd

GPUS_PER_NODE = 8


class VoltageParkHook(PageHook):
    vendor = VENDORS["voltagepark"]
    page = "/pricing"
    rows_at = EmbeddedJson('script[type="application/ld+json"]', pattern=r"^\s*(\[.*\])\s*$")

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if row["@type"] != "Product":
            skip(f"schema.org {row['@type']}, not a product")
        if not (offer := row.get("offers")):
            skip("contact sales: no public price")
        gpu, _, product = row["name"].partition(" — ")
        per_gpu = usd(str(offer["price"]), currency=offer["priceCurrency"])
        yield {
            "gpu": gpu,
            "region": "us",
            "country": "US",
            "offer_id": row["sku"],
            "instance_type": f"{row['sku']}.{GPUS_PER_NODE}x",
            "gpu_count": GPUS_PER_NODE,
            "gpu_memory_gb": gb(gpu),
            "price_per_hour": per_gpu * GPUS_PER_NODE,  # per GPU -> the 8-GPU node
            "interconnect": Interconnect.INFINIBAND if "InfiniBand" in product else Interconnect.NVLINK,
        }
