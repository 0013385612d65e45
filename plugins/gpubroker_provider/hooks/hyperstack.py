"""Hyperstack (NexGen Cloud infrahub API): VM flavors per region, priced from the pricebook.

Endpoints (base https://infrahub-api.nexgencloud.com):
- GET /v1/core/flavors: `{"status": true, "message": ..., "data": [{"gpu": "H100-80G-PCIe",
  "region_name": "CANADA-1", "flavors": [{"name": "n3-H100x1", "cpu", "ram", "disk", "ephemeral",
  "gpu", "gpu_count", "stock_available", ...}]}]}` — flavors grouped by GPU model and region;
- GET /v1/pricebook: a bare JSON array (no status/message envelope) of
  `{"id", "name", "value", "original_value", "discount_applied", "start_time", "end_time"}`.
Auth: the key in the `api_key` header. Pagination: none on either call (every region in one answer).

Units: flavor `cpu` in vCPUs, `ram`, `disk` and `ephemeral` in GB; pricebook `value` in USD per hour
for ONE unit of the named resource, so for a GPU model (`name` == the flavor group's `gpu`, e.g.
"H100-80G-PCIe") it is the price of one GPU, vCPUs/RAM/ephemeral disk included.
`price_per_hour` = pricebook value of the flavor's GPU x `gpu_count`. `value` is the price charged
now (`original_value` is the list price before a time-limited discount); we take `value`.
Spot: GPU names ending in "-spot" are the spot variants of the same card. They are not separate
on-demand offers: their pricebook value x `gpu_count` becomes `spot_price` of the on-demand flavor.
Inferred: per-GPU memory is not in the payload; it is read from the vendor's GPU name through the
`_GPUS` table below, else from the "-<n>G" in the name ("80G" in "H100-80G-SXM5-NVLink"), else taken
from the registry where the model has one size (marked inferred). A GPU name ending in "-NVLink"
states NVLink-bridged cards: interconnect "nvlink".
Items: each pricebook entry and each flavor. Skipped (counted): CPU-only flavors (`gpu` "") and spot
flavors (see above). Dropped with the reason: flavors whose GPU has no pricebook entry (a GPU offer
with nothing to price it with).
A GPU the registry lacks is counted in `batch.unknown_gpus`; a flavor or pricebook entry that cannot
be read is dropped with its reason. Regions map to countries through `_COUNTRY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Interconnect, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip, text

FLAVORS = "/v1/core/flavors"
PRICEBOOK = "/v1/pricebook"
SPOT = "-spot"
NVLINK = re.compile(r"-nvlink\b", re.I)  # "A100-80G-PCIe-NVLink": cards bridged by NVLink
MEMORY_IN_NAME = re.compile(r"-(\d+)G\b")  # "H100-80G-SXM5": 80 GB per GPU

# Hyperstack GPU name -> (name the registry resolves, GB per GPU as Hyperstack advertises it).
_GPUS: dict[str, tuple[str, float]] = {
    "H100-80G-PCIe": ("H100 PCIe", 80),
    "H100-80G-PCIe-NVLink": ("H100 PCIe", 80),
    "H100-80G-SXM5": ("H100 SXM", 80),
    "H200-141G-SXM5": ("H200 SXM", 141),
    "B200-SXM": ("B200 SXM", 192),
    "A100-80G-PCIe": ("A100 PCIe", 80),
    "A100-80G-PCIe-NVLink": ("A100 PCIe", 80),
    "A100-80G-SXM4": ("A100 SXM", 80),
    "L40": ("L40", 48),
    "RTX-A6000": ("RTX A6000", 48),
    "RTX-A5000": ("RTX A5000", 24),
    "RTX-A4000": ("RTX A4000", 16),
    "RTX-4090": ("RTX 4090", 24),
    "RTX-5090": ("RTX 5090", 32),
}

_COUNTRY: dict[str, str] = {"CANADA-1": "CA", "NORWAY-1": "NO", "US-1": "US"}


def _usd(value: Any) -> Decimal:
    """A pricebook value (JSON number, or numeric string); anything else is malformed (ValueError)."""
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"not a price: {value!r}") from None


def _memory_in_name(gpu_name: str) -> float | None:
    found = MEMORY_IN_NAME.search(gpu_name)
    return float(found.group(1)) if found else None


def _price(entry: dict[str, Any]) -> tuple[str, Decimal]:
    return text(entry, "name"), _usd(entry["value"])


class HyperstackHook(VendorHook):
    vendor = VENDORS["hyperstack"]
    primary_only = False  # prices live in the pricebook, specs in the flavors
    variants = (
        Variant("nvlink-flavors", "flavors.json", "flavors of an \"-NVLink\" GPU (priced as its own pricebook "
                "name), `labels`/`features` beside them, a flavor without `ephemeral`"),
    )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api_key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", FLAVORS)
        yield self.request(client, "GET", PRICEBOOK)

    def items(self, pages: list[Any]) -> Iterator[tuple]:
        """("price", entry) for each pricebook entry, then ("flavor", GPU name, flavor) for each flavor."""
        self.expect(len(pages) == 2, "expected the flavors and the pricebook")
        flavors, pricebook = pages
        self.expect(
            isinstance(flavors, dict) and flavors.get("status") is True and isinstance(flavors.get("data"), list),
            'expected flavors as {"status": true, "data": [...]}',
        )
        self.expect(isinstance(pricebook, list), "expected the pricebook as a JSON array")
        yield from (("price", entry) for entry in pricebook)
        for group in flavors["data"]:
            self.expect(isinstance(group, dict) and isinstance(group.get("flavors"), list), "expected flavor groups")
            yield from (("flavor", group.get("gpu"), flavor) for flavor in group["flavors"])

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        listed = list(self.items(pages))
        prices = dict(batch.each((item[-1] for item in listed if item[0] == "price"), _price))
        for _kind, gpu_name, flavor in (item for item in listed if item[0] == "flavor"):
            with batch.item():
                if offer := self._flavor(gpu_name, flavor, prices, observed_at, batch):
                    batch.add(offer)

    def _flavor(self, gpu_name: Any, flavor: dict[str, Any], prices: dict[str, Decimal], observed_at: datetime,
                batch: Batch) -> Offer | None:
        if not gpu_name:
            skip("CPU-only flavor")
        if gpu_name.endswith(SPOT):
            skip("spot flavor: priced onto its on-demand twin")
        name, memory = _GPUS.get(gpu_name) or (gpu_name, _memory_in_name(gpu_name))
        if (match := batch.gpu(name)) is None:
            return None
        if gpu_name not in prices:
            raise ValueError("no pricebook entry for its GPU")
        interconnect = Interconnect.NVLINK if NVLINK.search(gpu_name) else None
        return self._offer(flavor, match, memory, prices[gpu_name], prices.get(gpu_name + SPOT), interconnect,
                           observed_at)  # fmt: skip

    def _offer(
        self,
        flavor: dict[str, Any],
        match: gpus.GpuMatch,
        memory: float | None,
        gpu_price: Decimal,
        spot_gpu_price: Decimal | None,
        interconnect: Interconnect | None,
        observed_at: datetime,
    ) -> Offer:
        count = flavor["gpu_count"]
        price = gpu_price * count
        spot = spot_gpu_price * count if spot_gpu_price is not None else None
        region = flavor["region_name"]
        in_stock = flavor["stock_available"]
        self.expect(isinstance(in_stock, bool), "stock_available must be a boolean")
        return self.offer(
            match,
            observed_at,
            region=region,
            country=_COUNTRY.get(region, region),
            offer_id=f"{region}:{flavor['name']}",
            instance_type=flavor["name"],
            gpu_count=count,
            gpu_memory_gb=memory,
            vcpus=flavor["cpu"],
            ram_gb=flavor["ram"],
            disk_gb=flavor["disk"] + (flavor.get("ephemeral") or 0),
            price_per_hour=price,
            spot_price=spot if spot is not None and spot <= price else None,
            availability=Availability.AVAILABLE if in_stock else Availability.UNAVAILABLE,
            interconnect=interconnect,
        )
