"""Scaleway: GPU Instance types, zone by zone, with their current stock level.

Endpoints, for each zone in ZONES:
  GET {base}/instance/v1/zones/{zone}/products/servers               (Instance types and prices)
  GET {base}/instance/v1/zones/{zone}/products/servers/availability  (stock level per type)
Auth: `X-Auth-Token: <secret key>`.
Pagination: `?per_page=100&page=N` (per_page max 100). Responses are {"servers": {TYPE: {...}},
"total_count": N}: a map keyed by commercial type, not a list; pages are read until `total_count`
types are collected (or a page adds no new type).
The zone is not part of the vendor's response, so each yielded page is wrapped as
{"zone": ..., "listing": "servers" | "availability", "response": <the vendor's JSON>}.

Units of the fields used:
- `hourly_price` EUR/hour for the whole Instance (all its GPUs), on-demand, VAT excluded.
  Scaleway prices only in EUR: converted at gpubroker.fx.EUR_USD (dated there).
  `monthly_price` (EUR, 30-day month) is unused.
- `gpu`: GPU count; `gpu_info.gpu_name` (e.g. "H100", "L40S", "H100-SXM") goes to the registry;
  `gpu_info.gpu_memory`: bytes PER GPU, 80 GiB for an "80G" type -> GB as advertised = bytes / 2^30.
- `ncpus`: vCPUs; `ram`: bytes -> GB / 2^30 (Scaleway's "GB" are GiB);
  `scratch_storage_max_size`: bytes of local scratch NVMe -> GB / 10^9 (None when 0).
- availability: "available" / "scarce" / "shortage" -> available / limited / unavailable;
  a type missing from the availability map is "unknown".
One offer per GPU type per zone (offer_id `<type>:<zone>`). Each type of each listing is an item:
types with `end_of_service: true` (no longer orderable) and types with `gpu: 0` (CPU Instances) are
skipped (counted); a type or stock entry that cannot be read is dropped with its reason.
Known limits: only the zones in ZONES are read (the ones selling GPUs); Scaleway's Elastic Metal
GPU servers are a different API and are not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.fx import EUR_USD  # one dated rate for every vendor
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, skip
from gpubroker.vendors import VENDORS

ZONES = ("fr-par-1", "fr-par-2", "nl-ams-1", "pl-waw-2")
PER_PAGE = 100
MAX_PAGES = 20
COUNTRY = {"fr-par": "FR", "nl-ams": "NL", "pl-waw": "PL"}  # zone without its number -> country
AVAILABILITY = {"available": Availability.AVAILABLE, "scarce": Availability.LIMITED, "shortage": Availability.UNAVAILABLE}
GIB = 2**30


class ScalewayHook(VendorHook):
    vendor = VENDORS["scaleway"]
    primary_only = False  # each page is tagged with its zone by fetch_pages

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Auth-Token": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for zone in ZONES:
            for listing, suffix in (("servers", ""), ("availability", "/availability")):
                path = f"/instance/v1/zones/{zone}/products/servers{suffix}"
                for response in self._pages(client, path):
                    yield {"zone": zone, "listing": listing, "response": response}

    def _pages(self, client: httpx.Client, path: str) -> Iterator[Any]:
        seen: set[str] = set()
        for page_number in range(1, MAX_PAGES + 1):
            response = self.request(client, "GET", path, params={"per_page": PER_PAGE, "page": page_number})
            yield response
            servers = response.get("servers") if isinstance(response, dict) else None
            if not isinstance(servers, dict) or not set(servers) - seen:
                return  # not the documented shape (normalise rejects it), or nothing new
            seen |= set(servers)
            if not isinstance(response.get("total_count"), int) or len(seen) >= response["total_count"]:
                return

    def items(self, pages: list[Any]) -> Iterator[tuple[str, str, str, Any]]:
        """(zone, listing, commercial type, row) for every type of every page."""
        for page in pages:
            self.expect(isinstance(page, dict) and page.get("zone") in ZONES, "expected a page of a known zone")
            servers = page["response"].get("servers") if isinstance(page["response"], dict) else None
            self.expect(isinstance(servers, dict), 'expected {"servers": {TYPE: {...}}, "total_count": N}')
            yield from ((page["zone"], page["listing"], name, row) for name, row in servers.items())

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        listed = list(self.items(pages))
        stock = dict(batch.each((i for i in listed if i[1] == "availability"), _stock_level))
        for zone, listing, name, server_type in listed:
            if listing == "servers":
                with batch.item():
                    for offer in self._type(zone, name, server_type, stock.get((zone, name)), observed_at, batch):
                        batch.add(offer)

    def _type(self, zone: str, name: str, server_type: dict[str, Any], stock: str | None, observed_at: datetime,
              batch: Batch) -> Iterator[Offer]:
        if not server_type["gpu"]:
            skip("CPU Instance type")
        if server_type.get("end_of_service"):
            skip("end of service: no longer orderable")
        gpu = server_type["gpu_info"]
        if (match := batch.gpu(gpu["gpu_name"])) is None:
            return
        scratch = server_type.get("scratch_storage_max_size") or 0
        memory = gpu.get("gpu_memory")
        yield self.offer(
            match,
            observed_at,
            region=zone,
            country=COUNTRY[zone.rsplit("-", 1)[0]],
            offer_id=f"{name}:{zone}",
            instance_type=name,
            gpu_count=int(server_type["gpu"]),
            gpu_memory_gb=None if memory is None else round(memory / GIB, 1),
            vcpus=int(server_type["ncpus"]),
            ram_gb=round(server_type["ram"] / GIB, 1),
            disk_gb=round(scratch / 1e9, 1) if scratch else None,
            price_per_hour=eur_to_usd(server_type["hourly_price"]),
            availability=AVAILABILITY.get(stock, Availability.UNKNOWN) if stock else Availability.UNKNOWN,
            cpu_arch=server_type.get("arch"),
        )


def _stock_level(item: tuple[str, str, str, Any]) -> tuple[tuple[str, str], str]:
    zone, _listing, name, row = item
    level = row["availability"]
    if not isinstance(level, str):
        raise ValueError("availability is not a stock level")
    return (zone, name), level


def eur_to_usd(eur: Any) -> Decimal:
    if isinstance(eur, bool) or not isinstance(eur, (int, float)):
        raise TypeError(f"hourly_price {eur!r} is not a number")
    return Decimal(str(eur)) * EUR_USD
