"""io.net: a decentralised network of GPU suppliers, rented as containers by the GPU (io.net Cloud CaaS).

Endpoint: GET {base}/enterprise/v1/io-cloud/caas/hardware (base https://api.io.solutions), the
"non-deprecated hardware listing" io.net's official `iocloud` SDK reads (`iocloud hardware list`).
Public: answered anonymously; a configured key travels as `x-api-key` and adds the caller's private
node pools. No pagination: one answer `{"data": [<hardware row>, ...]}`, one row per hardware and
location.

Per row (the SDK's `HardwareInfo`):
  `hardware_id` (an int, or a string such as "H100_sxm5") with `location` — the offer id;
  `hardware_name` — the GPU ("H100 SXM5 80GB"): the model, its form where named, and the GB PER GPU
    where the name states them (else the registry's memory, marked inferred); `brand_name` ("NVIDIA");
  `price` — USD PER GPU-HOUR (the SDK's "$/GPU-HR" column);
  `available` — free capacity right now: the available count (AVAILABLE above 0, else UNAVAILABLE);
  `location` — a country or place name ("United States"): the region and, where it names one, country;
  `network` — a count of network-connected replicas (not a fabric name): not read; nor
    `max_gpus_per_container` (a container takes 1 to that many GPUs at the per-GPU price).
Offers: one per row for ONE GPU, offer_id `<hardware_id>@<location>`. On demand; interconnect not stated.
Dropped with a reason: no price, a missing name or location. Unknown GPU names are counted.
Kind: marketplace — suppliers' GPUs come and go by the minute (5-minute syncs).
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
from gpubroker_provider.hooks.base import Batch, VendorHook, number, number_or_none, text

HARDWARE = "/enterprise/v1/io-cloud/caas/hardware"
GB_IN_NAME = re.compile(r"(\d+)\s*GB\b", re.I)  # "H100 SXM5 80GB"


class IoNetHook(VendorHook):
    vendor = VENDORS["ionet"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", HARDWARE)

    def items(self, pages: list[Any]) -> Iterator[Any]:
        yield from self.listed(pages, "data")

    def item_offers(self, row: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        name, location = text(row, "hardware_name"), text(row, "location")
        if not (match := batch.gpu(name)):
            return
        free = number_or_none(row, "available") or 0
        memory = GB_IN_NAME.search(name)
        yield self.offer(
            match,
            observed_at,
            region=location,
            offer_id=f"{row['hardware_id']}@{location}",
            instance_type=str(row["hardware_id"]),
            gpu_count=1,
            gpu_memory_gb=float(memory[1]) if memory else None,
            price_per_hour=Decimal(str(number(row, "price"))),
            availability=Availability.AVAILABLE if free > 0 else Availability.UNAVAILABLE,
            available_count=free,
        )
