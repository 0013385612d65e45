"""Vast.ai: marketplace offers from the bundles search.

Endpoint: POST {base}/api/v0/bundles/ with a search query body; auth `Authorization: Bearer <key>`.
No cursor pagination: one call returns up to `limit` offers ordered by price, as `{"offers": [...]}`.
Units: `gpu_ram` and `cpu_ram` in MiB; `disk_space` in GB; `dph_total` USD/hour for the whole offer
(GPUs + its share of CPU, RAM and disk); `min_bid` USD/hour for an interruptible rental.
`cpu_ram` is the whole machine's; an offer gets its `gpu_frac` share of it. A host Vast.ai has
verified (`verification` "verified", or in layouts without it `verified` true) tags the offer verified.

Layouts accepted (one offer per item; each item parsed on its own):
- the bundles answer above, every field present;
- the newer layout seen from the search endpoint (PUT /api/v0/search/asks/): `search` and `instance`
  price blocks, `discounted_dph_total`, `dph_total_adj`, a `resource_type`, and no `dph_total`; the
  whole-offer price is then `search.totalHour` (GPU `gpuCostPerHour` + disk `diskHour`);
- a search that selected a subset of the fields (`select_cols`): missing `gpu_ram` comes from
  `gpu_total_ram` / `num_gpus`, else from the registry when the model has one memory size (marked
  inferred); missing `cpu_ram`, `cpu_cores_effective` or `disk_space` leave RAM, vCPUs, disk empty;
  with only `dph_base` the price is `dph_base` + the storage share (`storage_total_cost`, if sent);
- the official CLI's `vastai search offers --raw` output: the same rows as a bare JSON array.
Skipped as not GPU offers: items whose `resource_type` is not "gpu" (e.g. storage volumes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer, Tag
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number, number_or_none, skip
from gpubroker.vendors import VENDORS

SEARCH_LIMIT = 1000
MIB_PER_GB = 1024
_ARCH = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}


class VastAiHook(VendorHook):
    vendor = VENDORS["vastai"]
    variants = (
        Variant("search-asks", "bundles.json", "newer layout: no `dph_total`; price in `search.totalHour`"),
        Variant("subset-fields", "bundles.json", "a search selecting a subset of the fields: no `gpu_ram`, "
                "`cpu_ram`, `dph_total`; memory from `gpu_total_ram` or the registry"),
        Variant("cli-raw", "bundles.json", "`vastai search offers --raw`: the offers as a bare JSON array"),
    )

    def search_query(self) -> dict[str, Any]:
        return {
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "verified": {"eq": True},
            "external": {"eq": False},
            "type": "on-demand",
            "order": [["dph_total", "asc"]],
            "limit": SEARCH_LIMIT,
        }

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "POST", "/api/v0/bundles/", json=self.search_query())

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            rows = page if isinstance(page, list) else page.get("offers") if isinstance(page, dict) else None
            self.expect(isinstance(rows, list), 'expected {"offers": [...]} or a JSON array of offers')
            yield from rows

    def item_offers(self, row: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if row.get("resource_type", "gpu") != "gpu":
            skip(f"resource_type {row['resource_type']!r}")
        if match := batch.gpu(row["gpu_name"]):
            yield self.offer(match, observed_at, **offer_fields(row))


def offer_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The Offer fields of one Vast.ai row (any accepted layout)."""
    count = row["num_gpus"]
    share = float(row.get("gpu_frac") or 1.0)
    price, min_bid = whole_offer_price(row), number_or_none(row, "min_bid")
    available = row.get("rentable", True) and not row.get("rented", False)
    return {
        "region": row.get("geolocation") or "unknown",
        "offer_id": str(row["id"]),
        "instance_type": f"{count}x {row['gpu_name']}",
        "gpu_count": count,
        "gpu_memory_gb": _per_gpu_memory_gb(row),
        "vcpus": _maybe(int, row.get("cpu_cores_effective")),
        "ram_gb": _maybe(lambda mib: round(mib * share / MIB_PER_GB, 1), row.get("cpu_ram")),
        "disk_gb": _maybe(lambda gb: round(gb, 1), row.get("disk_space")),
        "price_per_hour": price,
        "spot_price": min_bid if min_bid and min_bid <= price else None,
        "availability": Availability.AVAILABLE if available else Availability.UNAVAILABLE,
        "available_count": 1 if available else 0,
        "cpu_arch": _ARCH.get(row.get("cpu_arch") or "", row.get("cpu_arch")),
        "tags": (Tag.VERIFIED,) if _verified(row) else (),
    }


def whole_offer_price(row: dict[str, Any]) -> float:
    """USD/hour for the whole offer: `dph_total`, else `search.totalHour`, else `dph_base` + storage."""
    if (total := number_or_none(row, "dph_total")) is not None:
        return total
    if (search := row.get("search")) and (total := number_or_none(search, "totalHour")) is not None:
        return total
    return number(row, "dph_base") + (number_or_none(row, "storage_total_cost") or 0)


def _per_gpu_memory_gb(row: dict[str, Any]) -> float | None:
    """`gpu_ram` (MiB), else `gpu_total_ram` / `num_gpus`; None when neither is sent (registry fills it)."""
    if row.get("gpu_ram") is not None:
        return round(row["gpu_ram"] / MIB_PER_GB, 1)
    if row.get("gpu_total_ram") is not None:
        return round(row["gpu_total_ram"] / row["num_gpus"] / MIB_PER_GB, 1)
    return None


def _verified(row: dict[str, Any]) -> bool:
    """Vast.ai verified the host: `verification` says so ("verified", not "unverified"/"deverified"),
    else (the subset layout) the boolean `verified`."""
    return row["verification"] == "verified" if "verification" in row else row.get("verified") is True


def _maybe(convert, value):
    return None if value is None else convert(value)
