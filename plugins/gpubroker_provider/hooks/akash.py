"""Akash Network: GPU market prices from the Akash Console API.

Endpoint: GET {base}/v1/gpu-prices (public, no key; base https://console-api.akash.network).
Pagination: none; one response `{"availability": {"total", "available"}, "models": [...]}`, one entry
per (vendor, model, memory, interface): `{"vendor": "nvidia", "model": "h100", "ram": "80Gi",
"interface": "SXM5", "availability": {"total", "available"}, "providerAvailability": {...},
"price": {"currency": "USD", "min", "max", "avg", "weightedAverage", "med"} | null}`.

Units: `price.*` are USD per hour for ONE GPU, computed by Akash from providers' bids on one-GPU
deployments; `ram` is the card's memory as a Kubernetes quantity ("80Gi"); `availability.*` are GPU
counts across the whole network.
What we take: Akash is a market, not a price list, so there is no single on-demand price. We take
the median bid (`med`): unlike `avg` and `min`/`max` it is not dragged by a single outlier provider,
and unlike `weightedAverage` it does not depend on which providers happen to hold the most GPUs.
An offer is ONE GPU of that model (`gpu_count` 1), so `price_per_hour` = `med`.
`gpu_memory_gb` = the number in `ram` ("80Gi" -> 80): Akash labels cards by their marketed size.
Inferred: bids come from providers all over the world; the aggregate has no location, so offers are
region "global" with no country. Models without bids (`price` null) cannot be priced and are
skipped (counted); GPU names the registry does not know (e.g. "rtx3050") are counted as unknown.
Availability: AVAILABLE with `available_count` = free GPUs when any are free, else UNAVAILABLE.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip
from gpubroker.vendors import VENDORS

GPU_PRICES = "/v1/gpu-prices"
REGION = "global"
_RAM = re.compile(r"(\d+(?:\.\d+)?)(Gi|G)")


def gpu_memory_gb(ram: str) -> float:
    """'80Gi' -> 80.0; anything else is malformed (ValueError)."""
    if not (m := _RAM.fullmatch(ram)):
        raise ValueError(f"unexpected GPU memory {ram!r}")
    return float(m.group(1))


class AkashHook(VendorHook):
    vendor = VENDORS["akash"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}  # public API: a configured key is never sent

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", GPU_PRICES)

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("models"), list), 'expected {"models": [...]}')
            yield from page["models"]

    def item_offers(self, model: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        price = model["price"]
        if price is None:
            skip("no bids: nothing to price")
        self.expect(price["currency"] == "USD", f"unexpected currency {price['currency']!r}")
        if (match := batch.gpu(f"{model['model']} {model['interface']}")) is None:
            return
        free = int(model["availability"]["available"])
        yield self.offer(
            match,
            observed_at,
            region=REGION,
            country=None,
            offer_id="-".join((model["vendor"], model["model"], model["ram"], model["interface"])).lower(),
            instance_type=f"1x {model['vendor']} {model['model']} {model['ram']} {model['interface']}",
            gpu_count=1,
            gpu_memory_gb=gpu_memory_gb(model["ram"]),
            price_per_hour=number(price, "med"),
            availability=Availability.AVAILABLE if free > 0 else Availability.UNAVAILABLE,
            available_count=free,
        )
