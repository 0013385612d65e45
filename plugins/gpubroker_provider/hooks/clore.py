"""Clore.ai: a peer-to-peer marketplace of GPU servers, each rented whole (on demand or spot).

Endpoint: GET {base}/v1/marketplace (base https://api.clore.ai). Public: answered without a key (the
official `clore-ai` SDK reads it unauthenticated); a configured key travels as the `auth` header
(not a Bearer token). No pagination: one answer `{"servers": [...], "code": 0}`. Every answer carries
`code`: 0 is success, anything else an error in an HTTP 200 (3 bad token, 5 over the 1 request/second
limit, 6 see `error`): raised as a VendorError naming the code.

Per server:
  `id` — the offer id (stable per machine); `rented` — rented now (listed, not rentable);
  `specs.gpu` — "<n>x <GPU name>" ("2x NVIDIA GeForce RTX 3090"): the GPU count and model; `gpu_array`
    lists one name per GPU (its length must agree); `specs.gpuram` — GB PER GPU;
  `specs.cpus` — "<cores>/<threads>": vCPUs are the threads; `specs.ram` — GB for the server;
  `specs.disk` — text such as "NVMe 1000GB" (GB, or TB x 1000; left empty when it names no size);
  `specs.net.cc` — ISO country code (the region; "unknown" without one);
  `price.usd` — USD PER HOUR for the WHOLE server, as the official SDK reads it: `on_demand_usd` (paid
    in USD-Blockchain, the stablecoin), `on_demand_clore` / `on_demand_btc` (the same rental paid in
    CLORE or bitcoin, in USD), `spot` (the lowest spot bid the host accepts). The price is
    `on_demand_usd`, else (a host not accepting USD) `on_demand_clore`, else `on_demand_btc`.
  `price.on_demand` / `price.spot` — the host's prices PER DAY in each coin ({"bitcoin",
    "CLORE-Blockchain", "USD-Blockchain"}; the API docs: "Price/day"): not read, `price.usd` has them.
Offers: one per server, on demand, `spot_price` the spot floor where one is set (> 0 and not above the
on-demand price). A server not rented is AVAILABLE (one unit); a rented one UNAVAILABLE.
Inferred: nothing but the spot floor's meaning; interconnect not stated.
Skipped: servers without GPUs ("0x ..."). Dropped with a reason: an unparseable `specs.gpu`, a GPU
count `gpu_array` contradicts, no USD price at all. Unknown GPU names (mining cards such as
"NVIDIA CMP 170HX") are counted, not guessed.
Kind: marketplace — servers are rented and listed by the minute (5-minute syncs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorError, VendorHook, number, number_or_none, skip, text

MARKETPLACE = "/v1/marketplace"
CODES = {1: "database error", 2: "invalid input data", 3: "invalid API token", 4: "invalid endpoint",
         5: "over the 1 request/second limit", 6: "application error"}  # fmt: skip
USD_PRICES = ("on_demand_usd", "on_demand_clore", "on_demand_btc")  # USD/hour paid in USD-Blockchain, CLORE, BTC
GPU_TEXT = re.compile(r"^(?P<count>\d+)x (?P<name>.+)$")  # "2x NVIDIA GeForce RTX 3090"
DISK_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([GT])B\b", re.I)  # "NVMe 1000GB", "SSD 2TB"


class CloreHook(VendorHook):
    vendor = VENDORS["clore"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"auth": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        page = self.request(client, "GET", MARKETPLACE)
        if isinstance(page, dict) and page.get("code", 0) != 0:
            code = page["code"]
            raise VendorError(f"clore: GET {MARKETPLACE} answered code {code} ({CODES.get(code, 'unknown')}): "
                              f"{str(page.get('error', ''))[:200]}")  # fmt: skip
        yield page

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and page.get("code") == 0 and isinstance(page.get("servers"), list),
                        'expected {"servers": [...], "code": 0}')  # fmt: skip
            yield from page["servers"]

    def item_offers(self, server: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        specs = server["specs"]
        count, name = _gpus(server, specs)
        if not (match := batch.gpu(name)):
            return
        price = _price(server["price"]["usd"])
        spot = number_or_none(server["price"]["usd"], "spot")
        country = (specs.get("net") or {}).get("cc")
        rented = server.get("rented") is True
        yield self.offer(
            match,
            observed_at,
            region=country or "unknown",
            country=country,
            offer_id=str(number(server, "id")),
            instance_type=specs["gpu"],
            gpu_count=count,
            gpu_memory_gb=number_or_none(specs, "gpuram"),
            vcpus=int(str(specs["cpus"]).rpartition("/")[2]) if specs.get("cpus") else None,
            ram_gb=None if specs.get("ram") is None else round(number(specs, "ram"), 1),
            disk_gb=_disk_gb(specs.get("disk")),
            price_per_hour=price,
            spot_price=Decimal(str(spot)) if spot and 0 < spot <= price else None,
            availability=Availability.UNAVAILABLE if rented else Availability.AVAILABLE,
            available_count=0 if rented else 1,
        )


def _gpus(server: dict[str, Any], specs: dict[str, Any]) -> tuple[int, str]:
    """(GPUs, model) from "<n>x <model>"; `gpu_array`, where sent, must list as many."""
    found = GPU_TEXT.match(text(specs, "gpu"))
    if found is None:
        raise ValueError(f"unparseable specs.gpu {specs['gpu']!r}")
    count = int(found["count"])
    if count == 0:
        skip("server without GPUs")
    if isinstance(server.get("gpu_array"), list) and len(server["gpu_array"]) != count:
        raise ValueError("specs.gpu count != len(gpu_array)")
    return count, found["name"]


def _price(usd: dict[str, Any]) -> Decimal:
    """USD per hour for the whole server: paid in USD, else in CLORE, else in bitcoin."""
    for key in USD_PRICES:
        if usd.get(key):
            return Decimal(str(number(usd, key)))
    raise ValueError("no USD price (price.usd.on_demand_usd, on_demand_clore, on_demand_btc)")


def _disk_gb(disk: Any) -> float | None:
    """GB from "NVMe 1000GB" / "SSD 2TB"; None where the text names no size."""
    found = DISK_SIZE.search(disk) if isinstance(disk, str) else None
    if found is None:
        return None
    return float(found[1]) * (1000 if found[2].upper() == "T" else 1)
