"""Novita AI: GPU instance products, their per-GPU prices and the regions that offer them, from Novita's API.

Endpoint: GET {base}/gpu-instance/openapi/v1/products (base https://api.novita.ai), Novita's API
reference "List GPU Products"; auth `Authorization: Bearer <key>` (a free account's key). No
pagination: one answer `{"data": [<product>, ...]}`, every product of every cluster (no filter sent).
Errors are `{"code": 401, "reason": ..., "message": ...}`.

Per product (shape from two public readers: SkyPilot's Novita catalog fetcher, `fetch_novita.py`, and
a reader whose fixtures mirror live answers; the docs' query filters name the units):
  `id` ("4090.16c62g") — the instance type; `name` ("RTX 4090 24GB", "A100 SXM 80GB") — the GPU, its
    form and its memory PER GPU in GB (the registry's size where the name states none);
  `price`, `spotPrice` — strings of an integer in 1/100,000 USD per GPU-hour ("35000" = $0.35/h):
    both readers divide by 100,000 (one verified live: "67000" = $0.67). A product is ONE GPU (the
    docs filter products by `gpuNum` 0-8 and by resources "per GPU"), so an offer is one GPU at that
    price; `spotPrice` is its interruptible price where `billingMethods` lists "spot" (else none);
  `cpuPerGpu` (vCPUs) and `memoryPerGpu` (RAM, GB) — per GPU, as the docs' `minCpuPerGpu` /
    `minMemoryPerGpu` filters define them;
  `regions` (["US-CA-06 (California)", "EU-GB-01 (United Kingdom)"]) — where it can be launched: one
    offer per region, the country from the parenthesised name, else the code's prefix ("US-01");
  `availableDeploy` — whether it can be launched now: AVAILABLE, else UNAVAILABLE.
Offers: offer_id `<id>@<region code>` ("4090.16c62g@US-CA-06"); on demand. A product listed in no
region still has a price: one offer in region "unknown" (offer_id `<id>@none`, unavailable).
Not read: `diskPerGpu` (its unit is not documented), monthly subscription prices (their shape is not
published), `inventoryState` (a coarse stock word; `availableDeploy` says the same). Dropped with a
reason: a price that is not a positive number of units, a missing field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from gpubroker import regions
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number, text

UNITS_PER_USD = 100_000  # `price` / `spotPrice`: 1/100,000 USD per GPU-hour
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*GB\b", re.IGNORECASE)
_PLACE = re.compile(r"\(([^)]+)\)")


class NovitaHook(VendorHook):
    vendor = VENDORS["novita"]
    variants = (Variant("numeric-prices", "products.json", "`price` / `spotPrice` as JSON integers of the same "
                        "units (as SkyPilot's reader accepts them), not strings"),)

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/gpu-instance/openapi/v1/products")

    def items(self, pages: list[Any]) -> Iterator[Any]:
        yield from self.listed(pages, "data")

    def item_offers(self, product: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        name, price = text(product, "name"), units(product, "price")
        spot = units(product, "spotPrice") if "spot" in product.get("billingMethods", ()) else None
        places = product["regions"]
        if not isinstance(places, list) or not all(isinstance(p, str) and p for p in places):
            raise ValueError("regions is not a list of names")
        if (match := batch.gpu(name)) is None:
            return
        memory = _MEMORY.search(name)
        for place in places or [None]:
            code = place.split(" ")[0] if place else None
            yield self.offer(
                match,
                observed_at,
                region=place or "unknown",
                country=region_country(place),
                offer_id=f"{text(product, 'id')}@{code or 'none'}",
                instance_type=product["id"],
                gpu_count=1,
                gpu_memory_gb=float(memory[1]) if memory else None,
                vcpus=number(product, "cpuPerGpu"),
                ram_gb=number(product, "memoryPerGpu"),
                price_per_hour=price,  # one GPU
                spot_price=spot,
                availability=Availability.AVAILABLE if product["availableDeploy"] is True and place
                else Availability.UNAVAILABLE,
            )


def units(product: dict[str, Any], key: str) -> Decimal:
    """A price field ("35000", 1/100,000 USD per GPU-hour) in USD per GPU-hour: 0.35."""
    value = product[key]
    try:
        amount = Decimal(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0:
        raise ValueError(f"field {key!r} is not a price in 1/100,000 USD")
    return amount / UNITS_PER_USD


def region_country(place: str | None) -> str | None:
    """ISO country of "EU-GB-01 (United Kingdom)" (the name in brackets) or "US-01 (Dallas)" (the prefix)."""
    if place is None:
        return None
    named = _PLACE.search(place)
    location = regions.country(named[1]) if named else regions.UNKNOWN
    return location.country or regions.from_place(place).country
