"""E2E Networks (E2E Cloud, India): per-GPU hourly, monthly and annual prices read from the price page's table.

Page: GET https://www.e2enetworks.com/pricing?region=us (Next.js, server-rendered; no key). E2E has
no public price API. The GPU prices are one table, columns exactly "Item" (the GPU: "H100", "A100"),
"vRAM" (GB per GPU, a bare number), "vCPUs", "RAM, GB", "Hourly/On-Demand", "Monthly", "Annually";
a footnote under it says "Prices are per GPU-hour" and a 1x/2x/4x/8x control above it multiplies the
view. Columns, footnote and the ten GPU rows are as a public reader of this page recorded them live
(getcomputable/gpu-index, sources/e2e.py, 2026-08-22); the `#gpu-pricing` container we select it
by is written by us: selector to be checked live.

Units and currency: each price cell carries its currency symbol. The ?region=us view prints USD
("$6.99"); E2E's home list is in INR (the India view, and the page's JSON-LD catalogue: B200
₹671/h), and a "₹" cell is converted at `gpubroker.fx`'s dated INR rate. Prices are for ONE GPU:
  - "Hourly/On-Demand": USD per GPU-hour, billed per minute -> the on-demand offer;
  - "Monthly": the price of a GPU for a month, committed (E2E's committed billing is paid up front
    for the term) -> a reserved offer, `commitment_months` 1, at monthly / 730 h;
  - "Annually": the price for a year, committed -> a reserved offer, `commitment_months` 12, at
    annual / 8760 h.
A cell without a number ("Contact Sales", "—") leaves that term out; a row with none priced is
skipped (no public price). One GPU per offer, with the row's vCPUs and RAM (the page does not list
the 2x/4x/8x machines' vCPUs and RAM). offer_id `<item>-<vRAM>gb` ("a100-80gb": two A100 rows differ
only by vRAM), reserved ones `@reserved-1mo` / `@reserved-12mo`. E2E's GPU data centres are in India
(Delhi NCR, Mumbai; the table names no site): region "india", country IN. Interconnect and capacity
are not published. A page whose footnote no longer says the prices are per GPU-hour is refused.

Recording (replay/recordings/e2enetworks/pricing.html): columns, footnote and rows as recorded live; prices
from public sources where we have them (B200 $6.99/h: the reader above; H200 $3.37/h and A100 80 GB
$2.80/h: E2E's blog "NVIDIA A100 vs H100 vs H200"), every other price and spec a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.schema import PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import PageChanged, PageHook, Table, node_text, usd

PER_GPU = "Prices are per GPU-hour"
# price column -> (hours it pays for, months committed; None: on demand)
TERMS = {"Hourly/On-Demand": (1, None), "Monthly": (730, 1), "Annually": (8760, 12)}


class E2eNetworksHook(PageHook):
    vendor = VENDORS["e2enetworks"]
    page = "/pricing?region=us"
    rows_at = Table("#gpu-pricing table", columns=("Item", "vRAM", "vCPUs", "RAM, GB", *TERMS))

    def rows(self, pages: list[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        for tree, row in super().rows(pages):
            if PER_GPU not in (node_text(tree.css_first("#gpu-pricing")) or ""):
                raise PageChanged(f"the GPU table no longer says {PER_GPU!r}: its prices may be per machine")
            yield tree, row

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        prices = {column: usd(row[column]) for column in TERMS if re.search(r"\d", row[column])}
        if not prices:
            skip("contact sales: no public price")
        vram = whole(row, "vRAM")
        base = f"{re.sub(r'[^a-z0-9]+', '-', row['Item'].lower()).strip('-')}-{vram}gb"
        for column, price in prices.items():
            hours, months = TERMS[column]
            yield {
                "gpu": row["Item"],
                "region": "india",
                "country": "IN",
                "offer_id": base if months is None else f"{base}@reserved-{months}mo",
                "instance_type": f"{row['Item']} {vram}GB",
                "gpu_count": 1,
                "gpu_memory_gb": float(vram),
                "vcpus": whole(row, "vCPUs"),
                "ram_gb": float(whole(row, "RAM, GB")),
                "price_per_hour": price / hours,  # one GPU; a term's price spread over its hours
                "pricing_type": PricingType.ON_DEMAND if months is None else PricingType.RESERVED,
                "commitment_months": months,
            }


def whole(row: dict[str, Any], column: str) -> int:
    """A spec cell the table prints as a bare whole number ("80")."""
    if not re.fullmatch(r"\d+", value := row[column].strip()):
        raise ValueError(f"{column} {value!r} is not a whole number")
    return int(value)

