"""Crusoe Cloud: GPU prices read from the public price page.

Page: GET https://www.crusoe.ai/cloud/pricing (Webflow, server-rendered; no key). Crusoe has no
public price API. Each GPU is a card `div.pricing_gpu-item`: its name (`h4.pricing-item-heading`,
e.g. "NVIDIA H100 HGX"), tags (`.pricing_tags-wr`: memory "80GB" and the fabric, "NVLink",
"InfiniBand", "Infinity Fabric", "PCIe") and prices (`div.pricing-rich`: "$3.90/GPU-hr on-demand",
"$1.60/GPU-hr spot", or "Contact sales").

Units: prices are USD per hour for ONE GPU; a VM type "<type>.<n>x" has n GPUs and is billed n x
that, so an offer's `price_per_hour` = per-GPU on-demand price x GPU count (h100-80gb-sxm-ib.8x =
8 x $3.90 = $31.20) and its `spot_price` the spot price x count. `gpu_memory_gb` is per GPU, GB.
The page publishes no vCPU/RAM per VM type: those fields stay empty.

Not on the page, from Crusoe's docs (VM_TYPES below): each GPU's VM type name, its GPU counts and
the regions that offer it. One offer per VM type size and region; offer_id "<type>.<n>x@<region>",
e.g. "l40s-48gb.1x@us-east1". A card whose GPU has no VM type here is dropped with that reason (a
new GPU on the page: add its row from the docs).
Interconnect: InfiniBand where the card's tags say so (the VM types ending "-ib"), else NVLink,
Infinity Fabric or PCIe as tagged. Availability is "unknown" (the page says nothing of capacity).
Skipped (counted): "Contact sales" cards (no public price). Reserved discounts are not published.
"HGX" in a Crusoe GPU name means an SXM board (form factor SXM); "NVL72" names the rack.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from gpubroker.schema import Interconnect
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, gb, usd


class VmType(NamedTuple):
    name: str  # Crusoe's VM type, e.g. "h100-80gb-sxm-ib"
    gpu_counts: tuple[int, ...]
    regions: tuple[str, ...]


# Crusoe region -> ISO country (docs: regions and zones)
REGIONS = {"us-east1": "US", "us-northcentral1": "US", "us-southcentral1": "US", "eu-iceland1": "IS"}
# page heading -> VM type, from Crusoe's docs (instance types, regions)
VM_TYPES = {
    "NVIDIA GB200 NVL72": VmType("gb200-186gb-nvl-ib", (4,), ("us-southcentral1",)),
    "NVIDIA B200 HGX": VmType("b200-180gb-sxm-ib", (8,), ("us-southcentral1",)),
    "NVIDIA H200 HGX": VmType("h200-141gb-sxm-ib", (8,), ("us-east1", "eu-iceland1")),
    "NVIDIA H100 HGX": VmType("h100-80gb-sxm-ib", (8,), ("us-east1", "us-northcentral1", "eu-iceland1")),
    "NVIDIA A100 SXM": VmType("a100-80gb-sxm-ib", (8,), ("us-northcentral1", "eu-iceland1")),
    "NVIDIA A100 PCIe": VmType("a100-80gb", (1, 2, 4, 8), ("us-northcentral1",)),
    "NVIDIA L40S": VmType("l40s-48gb", (1, 2, 4, 8, 10), ("us-east1", "us-northcentral1")),
    "AMD MI300X": VmType("mi300x-192gb-ib", (8,), ("us-northcentral1",)),
}
FABRICS = (("InfiniBand", Interconnect.INFINIBAND), ("NVLink", Interconnect.NVLINK),
           ("Infinity Fabric", Interconnect.INFINITY_FABRIC), ("PCIe", Interconnect.PCIE))  # fmt: skip
_PRICE = re.compile(r"(\$\s*[\d.,]+)\s*/GPU-hr\s+(on-demand|spot)", re.IGNORECASE)


class CrusoeHook(PageHook):
    vendor = VENDORS["crusoe"]
    page = "/cloud/pricing"
    rows_at = Cards("div.pricing_gpu-item",
                    {"gpu": "h4.pricing-item-heading", "tags": ".pricing_tags-wr", "prices": "div.pricing-rich"})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        prices = _prices(row["prices"])
        if "on-demand" not in prices:
            if "contact sales" in (row["prices"] or "").lower():
                skip("contact sales: no public price")
            raise ValueError(f"no on-demand price in {row['prices']!r}")
        if (vm := VM_TYPES.get(row["gpu"])) is None:
            raise ValueError(f"no VM type known for {row['gpu']!r} (add it from Crusoe's docs)")
        fabric = next((f for tag, f in FABRICS if tag in (row["tags"] or "")), None)
        for region in vm.regions:
            for n in vm.gpu_counts:
                yield {
                    "gpu": row["gpu"],  # "NVIDIA H100 HGX" -> H100, SXM
                    "region": region,
                    "country": REGIONS[region],
                    "offer_id": f"{vm.name}.{n}x@{region}",
                    "instance_type": f"{vm.name}.{n}x",
                    "gpu_count": n,
                    "gpu_memory_gb": gb(row["tags"]),
                    "price_per_hour": prices["on-demand"] * n,  # per GPU -> whole VM
                    "spot_price": prices["spot"] * n if "spot" in prices else None,
                    "interconnect": fabric,
                }


def _prices(text: str | None) -> dict[str, Decimal]:
    """{"on-demand": per-GPU USD, "spot": ...} from "$3.90/GPU-hr on-demand $1.60/GPU-hr spot"."""
    return {kind.lower(): usd(amount) for amount, kind in _PRICE.findall(text or "")}
