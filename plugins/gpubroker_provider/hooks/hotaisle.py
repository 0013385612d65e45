"""Hot Aisle: AMD Instinct MI300X prices read from the public price page.

Page: GET https://hotaisle.xyz/pricing/ (no key; Hot Aisle's own API, admin.hotaisle.app, needs a
key and a team handle, so the page is read). Each offering is a card `div.pricing-card`: the
configuration (`.pricing-config`, "1x MI300X virtual machine", "8x MI300X bare metal"), the GPU
memory (`.pricing-memory`, "192 GB HBM3") and the price (`.pricing-price`, "$1.99 per GPU/hr", or
"Contact us"), and the fabric line (`.pricing-fabric`) where the card has one. No stored copy of
the page and no peer reading it could be found: the markup is written from Hot Aisle's published
offer (MI300X at $1.99 per GPU-hour, 1-GPU VMs and 8-GPU machines); selectors to be checked live.

Units: the price is USD per GPU per hour; an offer's `price_per_hour` = price x the GPUs of the
configuration (8x MI300X at $1.99 = $15.92). `gpu_memory_gb` per GPU, GB. offer_id
"<gpu>-<n>x-<kind>" ("mi300x-8x-bare-metal"). Interconnect as the card's fabric line says: RoCE
where machines are joined by RDMA over Ethernet ("400G RoCEv2"), else Infinity Fabric (the 8 OAMs
of one machine); a single-GPU VM has none.
Location: Hot Aisle runs one data centre, in Michigan (dstack's gpuhunt Hot Aisle provider: region
"us-michigan-1", "HotAisle only has one location"): region us-michigan-1, country US. Capacity is
not published (availability "unknown"); vCPU/RAM per configuration are not on the page (left empty).
A "Contact us" card is skipped (no public price).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.schema import Interconnect
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, count, gb, usd

REGION = "us-michigan-1"  # Hot Aisle's one location (gpuhunt's Hot Aisle provider)
# the card's fabric line -> interconnect; the fabric between machines first, as in the Offer schema
FABRICS = (("RoCE", Interconnect.ROCE), ("Infinity Fabric", Interconnect.INFINITY_FABRIC))
_CONFIG = re.compile(r"^\s*(\d+)\s*[x×]\s*(\S+)\s+(.+?)\s*$", re.IGNORECASE)  # "8x MI300X bare metal"


class HotAisleHook(PageHook):
    vendor = VENDORS["hotaisle"]
    page = "/pricing/"
    rows_at = Cards("div.pricing-card", {"config": ".pricing-config", "memory": ".pricing-memory",
                                         "price": ".pricing-price", "fabric": ".pricing-fabric"})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if "contact" in (row["price"] or "").lower():
            skip("contact sales: no public price")
        if not re.search(r"per GPU\s*/\s*hr", row["price"] or "", re.IGNORECASE):
            raise ValueError(f"price {row['price']!r} is not per GPU-hour")
        if not (found := _CONFIG.match(row["config"] or "")):
            raise ValueError(f"no configuration in {row['config']!r}")
        gpus, gpu, kind = count(row["config"]), found[2], found[3]
        yield {
            "gpu": gpu,
            "region": REGION,
            "offer_id": f"{gpu}-{gpus}x-{kind}".lower().replace(" ", "-"),
            "instance_type": row["config"],
            "gpu_count": gpus,
            "gpu_memory_gb": gb(row["memory"]),
            "price_per_hour": usd(row["price"]) * gpus,  # per GPU -> the whole machine
            "interconnect": next((f for tag, f in FABRICS if tag in (row["fabric"] or "")), None),
        }
