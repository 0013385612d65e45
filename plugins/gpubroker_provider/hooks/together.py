"""Together AI: GPU Clusters prices per GPU-hour, on demand and reserved by term, read from the price page.

Page: GET https://www.together.ai/pricing (Webflow, server-rendered; no key). Together publishes no
price API for its GPU Clusters. The section after the `#gpu-clusters` anchor holds the table headed
"On-demand hourly rates and reserved capacity" (caption "All prices are per GPU per hour"): one row
`tr[fs-list-element="item"]` per hardware ("NVIDIA HGX H100"), cells: the hardware, the "ON-Demand"
price (the cell marked `is-right-border`), then four reserved terms, "7-30 days", "31-90 days",
"91-180 days", "181+ days". A hidden copy of the on-demand column sits before it (its rows carry no
`is-right-border`: not read) and the Dedicated Inference section above has a look-alike HGX B200 row
(outside the anchor's section: not read). Anchors, classes, captions, the hidden copy and the cell
conventions are as a public reader recorded the live page (getcomputable/gpu-index,
sources/together.py, 2026-08-22); the nesting of anchor and table is written by us: selector to be
checked live.

Units: "$3.45" in a cell is USD per GPU-hour; Together rents clusters of HGX nodes, whose size the
page does not give, so an offer is ONE GPU at that price (`gpu_count` 1; "HGX" names an SXM board).
  - "ON-Demand": the on-demand offer (offer_id the hardware in lower case with dashes, "hgx-h100");
  - each priced term: a reserved offer (`@reserved-<term>`: "7-30d", "31-90d", "91-180d", "181d-plus") whose
    `commitment_months` is the shortest reservation that buys the price, in whole months, at least 1
    (7-30 days: 1, 31-90: 1, 91-180: 3, 181+: 6).
A "—" cell: not offered on that term; a "Contact us" cell (one cell may span all four terms,
`colspan` 4): no public price. A row with no price at all is skipped; a priced cell spanning several
terms, or any other cell with a number that is not a "$" price, drops its row. Together names no
region for its clusters (region "unknown", no country) and states no fabric; capacity is not published.
Per-GPU memory is NVIDIA's for each HGX / NVL72 board (MEMORY below; the page states none).

Recording (replay/recordings/together/pricing.html): the structure above; the H100's 31-90 days
price ($3.45) as that reader recorded it, every other price a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from gpubroker.schema import PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageChanged, PageHook, node_text, usd

PER_GPU = "All prices are per GPU per hour"
# term -> (offer_id suffix, commitment_months: the shortest reservation buying it, whole months, at least 1)
TERMS = {"7-30 days": ("7-30d", 1), "31-90 days": ("31-90d", 1), "91-180 days": ("91-180d", 3),
         "181+ days": ("181d-plus", 6)}  # fmt: skip
UNPRICED = {"—", "-", "contact us"}
# per-GPU memory of each hardware row (GB): NVIDIA's HGX / NVL72 specifications; the page gives none
MEMORY = {"NVIDIA HGX H100": 80, "NVIDIA HGX H200": 141, "NVIDIA HGX B200": 180, "NVIDIA HGX B300": 288,
          "NVIDIA GB200 NVL72": 186, "NVIDIA GB300 NVL72": 279}  # fmt: skip
CELLS = {"hardware": 1, "on_demand": 2} | {term: 3 + i for i, term in enumerate(TERMS)}


class TogetherHook(PageHook):
    vendor = VENDORS["together"]
    page = "/pricing"
    rows_at = Cards('#gpu-clusters ~ * tr[fs-list-element="item"]:has(> td.is-right-border)',
                    {key: f"td:nth-child({n})" for key, n in CELLS.items()},
                    {"span": ("td:nth-child(3)", "colspan")})  # fmt: skip

    def rows(self, pages: list[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        for tree, row in super().rows(pages):
            if PER_GPU not in (node_text(tree.css_first("#gpu-clusters").parent) or ""):
                raise PageChanged(f"the GPU Clusters table no longer says {PER_GPU!r}")
            yield tree, row

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if row["span"] not in (None, "1"):
            if price(row[next(iter(TERMS))]) is not None:
                raise ValueError(f"a price spanning {row['span']} reserved terms")
            row = row | dict.fromkeys(TERMS)
        prices = {term: price(row[term]) for term in ("on_demand", *TERMS)}
        if not any(prices.values()):
            skip("contact sales: no public price")
        base = re.sub(r"[^a-z0-9]+", "-", row["hardware"].lower().removeprefix("nvidia ")).strip("-")
        for term, amount in prices.items():
            if amount is not None:
                suffix, months = TERMS.get(term, (None, None))
                yield {
                    "gpu": row["hardware"],  # "NVIDIA HGX H100" -> H100, SXM
                    "region": "unknown",
                    "country": None,
                    "offer_id": base if months is None else f"{base}@reserved-{suffix}",
                    "instance_type": row["hardware"].removeprefix("NVIDIA "),
                    "gpu_count": 1,
                    "gpu_memory_gb": MEMORY.get(row["hardware"]),  # else the registry's, where the model fixes it
                    "price_per_hour": amount,  # one GPU
                    "pricing_type": PricingType.ON_DEMAND if months is None else PricingType.RESERVED,
                    "commitment_months": months,
                }


def price(cell: str | None) -> Decimal | None:
    """A cell's USD per GPU-hour; None for "—" / "Contact us" / no cell; ValueError for any other text."""
    if cell is None or cell.strip().lower() in UNPRICED:
        return None
    if not cell.strip().startswith("$"):
        raise ValueError(f"not a $ price: {cell!r}")
    return usd(cell)
