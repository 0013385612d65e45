"""Akamai Linode: GPU Linode types, priced per region, where the availability list places them.

Endpoints (public, no key): GET {base}/v4/linode/types (every Linode type with its price) and
GET {base}/v4/regions/availability (which premium and GPU plans each region offers, and whether
they can be created now: rows {region, plan, available}). Auth: none.
Pagination: page numbers. Every response is {data: [...], page, pages, results}; the hook asks for
`?page=N&page_size=100` and walks N = 1 .. `pages`.

Units of the fields used:
- `price.hourly` USD/hour for the whole Linode (all its GPUs), on-demand; `region_prices[]`
  ({id, hourly, monthly}) replaces it in the regions listed (e.g. id-cgk, br-gru). A region whose
  resulting price is 0 or missing drops the type with that reason. `price.monthly` is unused.
- `gpus`: GPU count; `vcpus`: count; `memory` MB (MiB) and `disk` MB (MiB) -> GB / 1024.

Inferred, vendor specific:
- Linode types name the GPU only in their id and label (`g1-gpu-rtx6000-2` "Dedicated 64GB +
  RTX6000 GPU x2", `g2-gpu-rtx4000a1-s` "RTX4000 Ada x1 Small") and never state its memory:
  GPU_FAMILIES maps the id to the card and its advertised memory per GPU. A GPU type of a family
  not in that table is counted in `batch.unknown_gpus` under its label, never guessed.
- Regions come from /v4/regions/availability: one offer per (GPU type, listed region), "available"
  or "unavailable" from its `available` flag. A GPU type no region lists is skipped, counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, skip, text
from gpubroker.vendors import VENDORS

PAGE_SIZE = 100  # Linode allows 25..500
MAX_PAGES = 50
LISTINGS = ("/v4/linode/types", "/v4/regions/availability")

# Type id fragment -> (GPU name for the registry, advertised memory per GPU in GB).
GPU_FAMILIES = (
    ("-gpu-rtx6000-", "Quadro RTX 6000", 24.0),
    ("-gpu-rtx4000a", "RTX 4000 Ada", 20.0),
    ("-gpu-rtxpro6000", "RTX PRO 6000 Blackwell", 96.0),
)

# Linode region id -> ISO country (core and distributed compute regions, legacy and new ids).
COUNTRY = {
    "us-east": "US", "us-central": "US", "us-west": "US", "us-southeast": "US", "us-ord": "US",
    "us-iad": "US", "us-sea": "US", "us-lax": "US", "us-mia": "US", "ca-central": "CA",
    "br-gru": "BR", "eu-west": "GB", "gb-lon": "GB", "eu-central": "DE", "de-fra-2": "DE",
    "fr-par": "FR", "nl-ams": "NL", "se-sto": "SE", "it-mil": "IT", "es-mad": "ES",
    "ap-west": "IN", "in-maa": "IN", "in-bom-2": "IN", "ap-south": "SG", "sg-sin-2": "SG",
    "ap-northeast": "JP", "jp-osa": "JP", "jp-tyo-3": "JP", "ap-southeast": "AU", "au-mel": "AU",
    "id-cgk": "ID",
}


class LinodeHook(VendorHook):
    vendor = VENDORS["linode"]
    primary_only = False  # regions come from /v4/regions/availability

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for path in LISTINGS:
            page_number = 1
            while page_number <= MAX_PAGES:
                page = self.request(client, "GET", path, params={"page": page_number, "page_size": PAGE_SIZE})
                yield page
                if not isinstance(page, dict) or not isinstance(page.get("pages"), int) or page_number >= page["pages"]:
                    break
                page_number += 1

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("data"), list), 'expected {"data": [...], "page": ...}')
            yield from page["data"]

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        rows = list(self.items(pages))
        # a /v4/regions/availability row names a plan and a region; a /v4/linode/types row does not
        is_place = [isinstance(row, dict) and "plan" in row and "region" in row for row in rows]
        regions: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for plan, place in batch.each((r for r, p in zip(rows, is_place) if p), _place):
            regions[plan].append(place)
        for linode_type in (r for r, p in zip(rows, is_place) if not p):
            with batch.item():
                for offer in self._type(linode_type, regions, observed_at, batch):
                    batch.add(offer)

    def _type(self, linode_type: dict[str, Any], regions: dict[str, list[tuple[str, bool]]], observed_at: datetime,
              batch: Batch) -> Iterator[Offer]:
        if not linode_type["gpus"]:
            skip("CPU Linode type")
        family = next((f for f in GPU_FAMILIES if f[0] in linode_type["id"]), None)
        if family is None:
            batch.unknown(linode_type["label"])  # a GPU family this module has no card for
            return
        _fragment, gpu_name, memory_gb = family
        if (match := batch.gpu(gpu_name)) is None:
            return
        region_prices = {p["id"]: p["hourly"] for p in linode_type["region_prices"]}
        if not regions[linode_type["id"]]:
            skip("GPU type listed in no region")
        for region, available in regions[linode_type["id"]]:
            price = _number(region_prices.get(region, linode_type["price"]["hourly"]))
            if not price:
                raise ValueError(f"no hourly price in {region!r}")
            yield self.offer(
                match,
                observed_at,
                region=region,
                country=COUNTRY.get(region),
                offer_id=f"{linode_type['id']}:{region}",
                instance_type=linode_type["id"],
                gpu_count=int(linode_type["gpus"]),
                gpu_memory_gb=memory_gb,
                vcpus=int(linode_type["vcpus"]),
                ram_gb=round(linode_type["memory"] / 1024, 1),
                disk_gb=round(linode_type["disk"] / 1024, 1),
                price_per_hour=price,
                availability=Availability.AVAILABLE if available else Availability.UNAVAILABLE,
            )


def _place(row: dict[str, Any]) -> tuple[str, tuple[str, bool]]:
    """(plan, (region, available)) of one /v4/regions/availability row."""
    if not isinstance(row["available"], bool):
        raise ValueError("field 'available' is not a flag")
    return text(row, "plan"), (text(row, "region"), row["available"])


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"price {value!r} is not a number")
    return value
