"""Spheron: a GPU marketplace of many providers' spare capacity, grouped by GPU type.

Endpoint: GET {base}/api/gpu-offers (base https://app.spheron.ai), the listing SkyPilot's Spheron catalog
fetcher reads; auth `Authorization: Bearer <key>` (a free account's key). Pagination: page numbers,
`page=N&limit=PAGE_SIZE`; each answer is `{"data": [<GPU group>, ...], "totalPages": N, ...}` and we
stop at page `totalPages` (or an empty page, or after `MAX_PAGES`).

Per GPU group: `gpuType` ("rtx-4090", "h100-sxm") — the GPU model (with its form where it names one),
`displayName`, `totalAvailable`, `lowestPrice`/`highestPrice` (not read), and `offers`, each:
  `offerId` — the provider's offer; `provider` — the provider running it: the offer's `cloud`;
  `gpuCount`; `gpu_memory` — GB PER GPU; `vcpus`; `memory` — RAM, GB; `price` — USD PER HOUR for the
    WHOLE offer, as SkyPilot's catalog reads it; `spot_price` — a dedicated offer's interruptible
    price, USD/hour, where given;
  `instanceType` — "DEDICATED" (on demand) or "SPOT" (the price is a spot price);
  `available`, `maintenance` — rentable now (AVAILABLE), else UNAVAILABLE;
  `clusters` — where it runs: one offer per cluster (else the offer's `region`); the country from the
    cluster's name where it carries one ("us-central-1"), else unknown.
Offers: offer_id `<offerId>@<cluster>`. Skipped: offers without GPUs. Dropped with a reason: no price, no
cluster or region, a count or price that is not a number. Unknown GPU names are counted, not guessed.
Kind: marketplace — providers' spare capacity comes and goes by the minute (5-minute syncs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from gpubroker.schema import Availability, Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, is_number, number, number_or_none, skip, text

OFFERS = "/api/gpu-offers"
MAX_PAGES = 50


class SpheronHook(VendorHook):
    vendor = VENDORS["spheron"]
    page_size: ClassVar[int] = 100

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for page_number in range(1, MAX_PAGES + 1):
            page = self.request(client, "GET", OFFERS, params={"page": page_number, "limit": self.page_size})
            yield page
            groups = page.get("data") if isinstance(page, dict) else None
            pages = page.get("totalPages", 1) if isinstance(page, dict) else 1
            if not isinstance(groups, list) or not groups or not is_number(pages) or page_number >= pages:
                return

    def items(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        yield from self.grouped(self.listed(pages, "data"), "offers", "a GPU group")

    def item_offers(self, item: tuple[dict[str, Any], dict[str, Any]], observed_at: datetime,
                    batch: Batch) -> Iterator[Offer]:  # fmt: skip
        group, offer = item
        count = number(offer, "gpuCount")
        if count == 0:
            skip("offer without GPUs")
        places = offer.get("clusters") or ([offer["region"]] if offer.get("region") else [])
        if not places:
            raise ValueError("offer in no cluster or region")
        if not (match := batch.gpu(text(group, "gpuType"))):
            return
        spot_sale = str(offer.get("instanceType", "DEDICATED")).upper() == "SPOT"
        price, spot = Decimal(str(number(offer, "price"))), number_or_none(offer, "spot_price")
        rentable = offer.get("available") is True and not offer.get("maintenance")
        for place in places:
            yield self.offer(
                match,
                observed_at,
                region=place,
                offer_id=f"{text(offer, 'offerId')}@{place}",
                instance_type=offer["offerId"],
                gpu_count=count,
                gpu_memory_gb=number_or_none(offer, "gpu_memory"),
                vcpus=number_or_none(offer, "vcpus"),
                ram_gb=number_or_none(offer, "memory"),
                price_per_hour=price,
                spot_price=None if spot_sale or spot is None else Decimal(str(spot)),
                pricing_type=PricingType.SPOT if spot_sale else PricingType.ON_DEMAND,
                availability=Availability.AVAILABLE if rentable else Availability.UNAVAILABLE,
                cloud=text(offer, "provider"),
            )
