"""Leafcloud: GPU instance prices (EUR) read from the public price page.

Page: GET https://leaf.cloud/pricing/ (no key; Leafcloud's OpenStack API quotes no prices). The GPU
instances are the rows of `table.gpu-pricing`, columns "GPU" ("NVIDIA A100"), "GPU memory"
("80 GB HBM2e"), "Configurations" (the GPU counts sold, "1x, 2x, 4x, 8x") and "Price per GPU per
hour" ("€2.15", or "Pre-order"). No stored copy of the price page could be found: the markup is
written from Leafcloud's published GPU offer as its own FAQ states it (A30 at €0.60 and A100 at
€2.15 per GPU-hour, 1x/2x/4x/8x, prices excluding VAT, H100 on pre-order); selectors to be checked live.

Units: EUR per hour for ONE GPU, excluding VAT, converted at gpubroker.fx (dated there); an offer is
one configuration, priced at the per-GPU price x its GPUs (A100 8x: 8 x €2.15 = €17.20 -> USD 19.952).
A price written with a decimal comma ("€2,15") is refused for the row: `usd` would read it as 215.
`gpu_memory_gb` per GPU, GB. Leafcloud runs its servers in Dutch buildings that reuse their heat
(the Leaf Sites): region "nl", country NL. vCPU/RAM per configuration are not on the page (left
empty); availability "unknown". offer_id "<gpu>-<n>x" ("a100-8x"). Skipped: "Pre-order" rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import PageHook, Table, gb, usd

REGION, COUNTRY = "nl", "NL"  # the Leaf Sites, in the Netherlands
PRICE = "Price per GPU per hour"
_COUNTS = re.compile(r"(\d+)\s*[x×]", re.IGNORECASE)  # "1x, 2x, 4x, 8x"
_DECIMAL_COMMA = re.compile(r"\d,\d{1,2}(?!\d)")  # "€2,15"


class LeafcloudHook(PageHook):
    vendor = VENDORS["leafcloud"]
    page = "/pricing/"
    rows_at = Table("table.gpu-pricing", columns=("GPU", "GPU memory", "Configurations", PRICE))

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        price = row[PRICE]
        if "pre-order" in (price or "").lower():
            skip("pre-order: not yet deliverable")
        if _DECIMAL_COMMA.search(price or ""):
            raise ValueError(f"price {price!r} has a decimal comma")
        per_gpu, gpu = usd(price), row["GPU"]
        if not (counts := [int(n) for n in _COUNTS.findall(row["Configurations"] or "")]):
            raise ValueError(f"no GPU counts in {row['Configurations']!r}")
        for n in counts:
            yield {
                "gpu": gpu,
                "region": REGION,
                "country": COUNTRY,
                "offer_id": f"{gpu.lower().removeprefix('nvidia ').replace(' ', '-')}-{n}x",
                "instance_type": f"{n}x {gpu}",
                "gpu_count": n,
                "gpu_memory_gb": gb(row["GPU memory"]),
                "price_per_hour": per_gpu * n,  # per GPU -> the whole instance
            }
