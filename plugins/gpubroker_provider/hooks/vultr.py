"""Vultr: Cloud GPU (`vcg`) plans and bare-metal GPU plans from the public plan catalogue.

Endpoints: GET {base}/v2/plans?type=vcg (virtual Cloud GPU plans, key `plans`) and
GET {base}/v2/plans-metal (bare-metal plans, key `plans_metal`; GPU machines are the ids ending in
`-gpu`, e.g. `vbm-112c-2048gb-8-h100-gpu`). Auth: `Authorization: Bearer <key>`.
Pagination: cursor based. Each response carries `meta.links.next`, an opaque cursor string (not a
URL; "" on the last page) that is sent back as `?cursor=...` with the same `per_page`.

Units of the fields used:
- `hourly_cost` USD/hour for the whole plan (all its GPUs), on-demand. `monthly_cost` USD/month;
  used only when `hourly_cost` is absent or 0: Vultr's cloud plans price an hour at monthly/730,
  its bare-metal plans at monthly/672 (the monthly cap is 672 billed hours), so the fallback
  divides by HOURS_PER_MONTH[kind]. `location_cost.{region}.hourly_cost|monthly_cost` (USD)
  overrides the plan price in that region.
- `gpu_vram_gb`: GB of GPU memory for the WHOLE plan (all cards, or the slice of one card).
- `ram` MB (MiB); `disk` GB (per disk for bare metal, with `disk_count` disks).
- `gpu_count`: cards in the plan, when sent (bare metal); `gpu_type` e.g. "NVIDIA_A100".

Inferred, vendor specific:
- `vcg` plans do not carry a card count: it is `gpu_vram_gb` / the memory of one card of that type
  (CARD_GB below, what Vultr sells: A100 80 GB, A40 48 GB ...; else the registry's largest variant). A plan with less memory than one
  card (e.g. `vcg-a16-2c-16g-4vram`, 4 GB of an A16) is a vGPU slice, not a whole GPU: skipped.
- bare-metal plans carry no `gpu_type`: the card is the id token before `-gpu`.
- `locations` lists where the plan can be deployed: one offer per location, availability
  "available" (the catalogue has no stock levels). `deploy_ondemand: false` plans (preemptible
  only) are skipped: prices here are on-demand.
Each plan is an item. Skipped as not (whole, on-demand) GPU offers: CPU-only bare-metal plans,
plans of another type (`vc2`, `vhf`, `vhp`, `voc` in a `type=all` answer), preemptible-only plans
and vGPU slices. A bare-metal GPU plan without `gpu_vram_gb` gets the registry's memory per card.
Known limits: per-account region availability (`/v2/regions/{id}/availability`) is not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip
from gpubroker_provider.vendors import VENDORS

PER_PAGE = 100  # Vultr default 100, max 500
LISTINGS = (("vcg", "/v2/plans", {"type": "vcg"}, "plans"), ("metal", "/v2/plans-metal", {}, "plans_metal"))
HOURS_PER_MONTH = {"vcg": Decimal(730), "metal": Decimal(672)}

# Memory of one card, GB, by Vultr gpu_type: how a vcg plan's total VRAM becomes a card count.
CARD_GB = {
    "NVIDIA_A16": 16, "NVIDIA_A40": 48, "NVIDIA_A100": 80, "NVIDIA_L40S": 48,
    "NVIDIA_H100": 80, "NVIDIA_GH200": 96, "AMD_MI300X": 192, "AMD_MI325X": 256,
}

# Vultr location id -> ISO country.
COUNTRY = {
    "ewr": "US", "ord": "US", "dfw": "US", "sea": "US", "lax": "US", "atl": "US", "mia": "US",
    "sjc": "US", "hnl": "US", "yto": "CA", "mex": "MX", "sao": "BR", "scl": "CL", "ams": "NL",
    "fra": "DE", "lhr": "GB", "man": "GB", "cdg": "FR", "mad": "ES", "waw": "PL", "sto": "SE",
    "nrt": "JP", "itm": "JP", "icn": "KR", "sgp": "SG", "syd": "AU", "mel": "AU", "bom": "IN",
    "del": "IN", "blr": "IN", "jnb": "ZA", "tlv": "IL",
}


class VultrHook(VendorHook):
    vendor = VENDORS["vultr"]
    variants = (
        Variant("all-types", "plans-vcg-1.json", "`/v2/plans?type=all`: Cloud Compute, High Frequency, High "
                "Performance and Optimized plans (no GPU fields) beside the Cloud GPU ones"),
    )

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for _kind, path, query, _key in LISTINGS:
            cursor, seen = None, set()
            while True:
                params = query | {"per_page": PER_PAGE} | ({"cursor": cursor} if cursor else {})
                page = self.request(client, "GET", path, params=params)
                yield page
                cursor = _next_cursor(page)
                if not cursor or cursor in seen:
                    break
                seen.add(cursor)

    def items(self, pages: list[Any]) -> Iterator[tuple[str, Any]]:
        """(listing kind, plan) for every plan of every page."""
        for page in pages:
            self.expect(isinstance(page, dict), "expected a JSON object")
            kind, key = next(((k, key) for k, _p, _q, key in LISTINGS if key in page), (None, None))
            self.expect(kind is not None and isinstance(page[key], list), 'expected {"plans": [...]} or {"plans_metal": [...]}')
            yield from ((kind, plan) for plan in page[key])

    def item_offers(self, item: tuple[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        kind, plan = item
        if kind == "metal" and not plan["id"].endswith("-gpu"):
            skip("CPU-only bare-metal plan")
        if kind == "vcg" and plan.get("type", "vcg") != "vcg" and not plan.get("gpu_type"):
            skip(f"not a GPU plan (type {plan['type']!r})")
        if plan.get("deploy_ondemand") is False:
            skip("preemptible only: no on-demand price")
        card = _card(kind, plan)
        if (match := batch.gpu(card.replace("_", " "))) is None:
            return
        count = _gpu_count(kind, plan, CARD_GB.get(card) or max(match.model.memory_gb))
        if count is None:
            skip("a vGPU slice of one card, not a whole GPU")
        disks = (plan.get("disk_count") or 1) if kind == "metal" else 1
        if not isinstance(plan["locations"], list) or not all(isinstance(r, str) for r in plan["locations"]):
            raise ValueError("locations is not a list of location ids")
        for region in filter(None, plan["locations"]):
            if (price := _hourly_price(kind, plan, region)) > 0:
                yield self.offer(
                    match,
                    observed_at,
                    region=region,
                    country=COUNTRY.get(region),
                    offer_id=f"{plan['id']}:{region}",
                    instance_type=plan["id"],
                    gpu_count=count,
                    gpu_memory_gb=round(plan["gpu_vram_gb"] / count, 1) if "gpu_vram_gb" in plan else None,
                    vcpus=int(plan.get("cpu_threads") or plan["cpu_count"]) if kind == "metal" else int(plan["vcpu_count"]),
                    ram_gb=round(plan["ram"] / 1024, 1),
                    disk_gb=float(plan["disk"] * disks),
                    price_per_hour=price,
                    availability=Availability.AVAILABLE,
                )


def _next_cursor(page: Any) -> str | None:
    """meta.links.next, or None; a page not in the documented shape ends the walk (normalise rejects it)."""
    if not isinstance(page, dict):
        return None
    links = (page.get("meta") or {}).get("links") or {}
    return links.get("next") or None


def _card(kind: str, plan: dict[str, Any]) -> str:
    if kind == "metal" and not plan.get("gpu_type"):
        return plan["id"].split("-")[-2].upper()  # vbm-112c-2048gb-8-h100-gpu -> H100
    return plan["gpu_type"]


def _gpu_count(kind: str, plan: dict[str, Any], card_gb: float) -> int | None:
    """Whole cards in the plan: `gpu_count` when sent, else inferred; None for a slice of one card."""
    if plan.get("gpu_count"):
        return int(plan["gpu_count"])
    if kind == "metal":  # vbm-112c-2048gb-8-h100-gpu: 8 cards; vbm-64c-2048gb-l40-gpu: one
        token = plan["id"].split("-")[-3]
        return int(token) if token.isdigit() else 1
    vram = plan["gpu_vram_gb"]
    return int(vram // card_gb) if vram >= card_gb and vram % card_gb == 0 else None


def _hourly_price(kind: str, plan: dict[str, Any], region: str) -> Decimal:
    costs = (plan.get("location_cost") or {}).get(region) or plan
    if costs.get("hourly_cost"):
        return _usd(costs["hourly_cost"])
    return (_usd(costs["monthly_cost"]) / HOURS_PER_MONTH[kind]).quantize(Decimal("0.0001"))


def _usd(value: Any) -> Decimal:
    """A price as Vultr sends it: a JSON number of US dollars."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"price {value!r} is not a number")
    return Decimal(str(value))
