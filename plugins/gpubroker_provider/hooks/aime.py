"""AIME: GPU cloud servers (Berlin) read from the public GPU cloud page; EUR, half-yearly plan.

Page: GET https://www.aime.info/en/gpucloud/ (no key; AIME publishes no price API). Each server is a
card `div.u-pricing-v2` (its `id` the product anchor, e.g. "product-cloud-enterprise1"): the title
(`.u-pricing-v2-title`, "1x NVIDIA H200 NVL 141GB": GPU count, GPU and per-GPU memory), the specs
(`.u-pricing-v2-specs`: "30 vCores (Epyc Turin)", "192 GB ECC" RAM, "4 TB NVMe SSD") and the price
(`.u-pricing-v2-price`: "2.099,00 € per month (half-yearly plan) corresponds to 2,88 € per hour", or
"Price on request"). No stored copy of the page could be found: the markup is written from the cards
as a peer reader documents them (`.u-pricing-v2`, the spec lines, "corresponds to X € per hour");
selectors to be checked live.

Units: the hourly figure AIME states ("corresponds to 2,88 € per hour", German number format: decimal
comma, thousands dot) is EUR per hour for the WHOLE server, excluding VAT, converted at gpubroker.fx
(dated there). It is the rate of the plan the card quotes, a half-yearly one: the offer is
`pricing_type` "reserved" with `commitment_months` from the plan (PLAN_MONTHS), not an on-demand
price. RAM and disk in GB (TB x 1000); vCPUs from "vCores". All servers are in AIME's Berlin data
centre: region "berlin", country DE. offer_id: the card's anchor. Availability "unknown".
Skipped: "Price on request" cards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from gpubroker.fx import TO_USD
from gpubroker.schema import PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip, text
from gpubroker_provider.hooks.page import Cards, PageHook, count, gb

REGION, COUNTRY = "berlin", "DE"
PLAN_MONTHS = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}
_HOURLY = re.compile(r"corresponds to\s+([\d.,]+)\s*€\s*per hour", re.IGNORECASE)
_PLAN = re.compile(r"\(([\w-]+) plan\)", re.IGNORECASE)
_VCORES = re.compile(r"(\d+)\s*vCores", re.IGNORECASE)
_RAM = re.compile(r"(\d+(?:\.\d+)?\s*[GT]B)\s+ECC", re.IGNORECASE)
_DISK = re.compile(r"(\d+(?:\.\d+)?\s*[GT]B)\s+NVMe", re.IGNORECASE)
_GERMAN = re.compile(r"\d{1,3}(?:\.\d{3})*,\d{2}")
_TITLE = re.compile(r"^\s*\d+\s*x\s*(.+)$", re.IGNORECASE)  # "4x NVIDIA A100 80GB" -> "NVIDIA A100 80GB"


class AimeHook(PageHook):
    vendor = VENDORS["aime"]
    page = "/en/gpucloud/"
    rows_at = Cards("div.u-pricing-v2", {"title": ".u-pricing-v2-title", "specs": ".u-pricing-v2-specs",
                                         "price": ".u-pricing-v2-price"}, attributes={"id": ("", "id")})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        price = row["price"] or ""
        if "on request" in price.lower():
            skip("price on request")
        if not (hourly := _HOURLY.search(price)):
            raise ValueError(f"no hourly price in {price!r}")
        if not (plan := _PLAN.search(price)) or plan[1].lower() not in PLAN_MONTHS:
            raise ValueError(f"no plan term in {price!r}")
        if not (gpu := _TITLE.match(row["title"] or "")):
            raise ValueError(f"no GPU count in {row['title']!r}")
        specs = row["specs"] or ""
        yield {
            "gpu": gpu[1],
            "region": REGION,
            "country": COUNTRY,
            "offer_id": text(row, "id"),
            "instance_type": row["title"],
            "gpu_count": count(row["title"]),
            "gpu_memory_gb": gb(gpu[1]),
            "vcpus": int(_found(_VCORES, specs, "vCores")),
            "ram_gb": gb(_found(_RAM, specs, "ECC RAM")),
            "disk_gb": gb(_found(_DISK, specs, "NVMe disk")),
            "price_per_hour": german_number(hourly[1]) * TO_USD["EUR"],  # the whole server
            "pricing_type": PricingType.RESERVED,
            "commitment_months": PLAN_MONTHS[plan[1].lower()],
        }


def german_number(written: str) -> Decimal:
    """'2,88' -> 2.88; '1.899,00' -> 1899.00 (thousands dot, decimal comma, as AIME writes prices).
    Anything else ("2.88") is refused: read the German way it would be a price 100 times too high."""
    if not _GERMAN.fullmatch(written):
        raise ValueError(f"price {written!r} is not written as AIME writes prices (1.899,00)")
    return Decimal(written.replace(".", "").replace(",", "."))


def _found(pattern: re.Pattern[str], specs: str, what: str) -> str:
    if not (found := pattern.search(specs)):
        raise ValueError(f"no {what} in {specs!r}")
    return found[1]
