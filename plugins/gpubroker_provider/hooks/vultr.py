"""Vultr: cloud GPU plans and bare-metal GPU plans from the public plan catalogue.

Endpoints: GET {base}/v2/plans?type=all (every instance plan, key `plans`: fractional Cloud GPU
plans are `type: vcg`, whole-GPU ones `type: vdm`, beside CPU-only families) and
GET {base}/v2/plans-metal (bare-metal plans, key `plans_metal`). Auth: `Authorization: Bearer <key>`.
Pagination: cursor based. Each response carries `meta.links.next`, an opaque cursor string (not a
URL; "" on the last page) that is sent back as `?cursor=...` with the same `per_page`.

Units of the fields used:
- `hourly_cost` USD/hour for the whole plan (all its GPUs), on-demand. `monthly_cost` USD/month;
  used only when `hourly_cost` is absent or 0: Vultr's cloud plans price an hour at monthly/730,
  its bare-metal plans at monthly/672 (the monthly cap is 672 billed hours), so the fallback
  divides by HOURS_PER_MONTH[kind]. `location_cost.{region}.hourly_cost|monthly_cost` (USD)
  overrides the plan price in that region. `hourly_cost_preemptible` / `monthly_cost_preemptible`:
  the same plan, preemptible.
- `gpu_vram_gb` (older `gpu_vram`): GB of GPU memory for the WHOLE plan (all cards, or a card's slice).
- `ram` MB (MiB); `disk` GB (per disk for bare metal, with `disk_count` disks).
- `gpu_count`: cards in the plan, when sent; `gpu_type` e.g. "NVIDIA_A100", when sent.

Shapes served over time: bare-metal plans long carried no GPU field at all, the GPU only in the
plan id (`vbm-112c-2048gb-8-h100-gpu`, `vbm-72c-480gb-gh200-gpu`); later ones add `gpu_count`,
`gpu_vram_gb`. The GPU is `gpu_type` when sent, else the first id token the registry knows
(`h100`, `mi300x`, `a100_nvlink`: "nvlink" in the token states the NVLink interconnect), wherever
it sits in the id; Vultr's `l40` bare-metal boards are L40S cards (ID_ALIASES).

Inferred, vendor specific:
- cloud plans without `gpu_count`: the card count is the plan's VRAM / the memory of one card
  (CARD_GB, what Vultr sells: A100 80 GB, A40 48 GB ...; else the registry's largest variant). A plan
  with less memory than one card (e.g. `vcg-a16-2c-16g-4vram`, 4 GB of an A16) is a vGPU slice,
  not a whole GPU: skipped.
- bare-metal plans without `gpu_count`: the number token before the GPU token
  (`...-8-h100-gpu`: 8); none (`...-gh200-gpu`): one card, marked inferred. Without `gpu_vram_gb`
  the memory per card is CARD_GB's, marked inferred.
- `locations` lists where the plan can be deployed: one offer per location, availability
  "available" (the catalogue has no stock levels). The preemptible price is the on-demand offer's
  `spot_price` where `deploy_preemptible` is not false; a plan with `deploy_ondemand: false` is
  sold preemptible only: its offers are spot offers (`pricing_type` spot, id suffix "@spot").
Each plan is an item. Skipped as not GPU offers: plans with no GPU sign (no GPU field, no GPU in
the id: CPU-only bare metal, `vc2`/`vhf`/`vhp`/`voc`), vGPU slices, plans deployable in no
location, and preemptible-only plans with no preemptible price. A plan with a GPU sign (a GPU
field, a `vcg`/`vdm` type, a `-gpu` id) whose GPU is named nowhere is dropped with that reason.
Known limits: per-account region availability (`/v2/regions/{id}/availability`) is not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Interconnect, Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip

PER_PAGE = 500  # Vultr default 100, max 500
LISTINGS = (("cloud", "/v2/plans", {"type": "all"}, "plans"), ("metal", "/v2/plans-metal", {}, "plans_metal"))
HOURS_PER_MONTH = {"cloud": Decimal(730), "metal": Decimal(672)}
GPU_TYPES = ("vcg", "vdm")  # plan types of Cloud GPU plans: fractional, whole-GPU

# Memory of one card, GB, by registry model: what Vultr sells of each (how VRAM becomes a card count).
CARD_GB = {
    "A16": 16, "A40": 48, "A100": 80, "L40S": 48, "H100": 80, "GH200": 96, "B200": 192,
    "MI300X": 192, "MI325X": 256, "MI355X": 288,
}
ID_ALIASES = {"l40": "L40S"}  # id tokens Vultr spells differently from the card it sells

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
        Variant("gpu-in-id-metal", "plans-metal.json", "bare-metal plans with no GPU field, the GPU only in "
                "the plan id (count token or none, `gh200`, `mi300x`, `a100_nvlink`, ids not ending in "
                "`-gpu`), preemptible-only plans priced preemptible"),
        Variant("whole-gpu-vdm", "plans-1.json", "whole-GPU cloud plans of `type: vdm` (vcg- ids), some "
                "with no `gpu_type` and some preemptible only; no `deploy_*`/`location_cost` fields"),
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
        name, interconnect = _gpu_name(plan)
        if name is None:
            if not _has_gpu_sign(plan):
                skip("CPU-only bare-metal plan" if kind == "metal" else f"not a GPU plan (type {plan.get('type')!r})")
            raise ValueError("GPU plan whose GPU is named neither in gpu_type nor in its id")
        if (match := batch.gpu(name)) is None:
            return
        card_gb = CARD_GB.get(match.model.name) or max(match.model.memory_gb)
        count, inferred = _gpu_count(kind, plan, card_gb)
        if count is None:
            skip("a vGPU slice of one card, not a whole GPU")
        locations = plan["locations"]
        if not isinstance(locations, list) or not all(isinstance(r, str) and r for r in locations):
            raise ValueError("locations is not a list of location ids")
        if not locations:
            skip("deployable in no location")
        spot_only = plan.get("deploy_ondemand") is False
        if spot_only and _preemptible_price(kind, plan, locations[0]) is None:
            skip("preemptible only, with no preemptible price")
        vram = plan.get("gpu_vram_gb", plan.get("gpu_vram"))
        if vram is None:
            inferred += ("gpu_memory_gb",)
        disks = (plan.get("disk_count") or 1) if kind == "metal" else 1
        fields = dict(
            instance_type=plan["id"],
            gpu_count=count,
            gpu_memory_gb=card_gb if vram is None else round(vram / count, 1),
            vcpus=int(plan.get("cpu_threads") or plan["cpu_count"]) if kind == "metal" else int(plan["vcpu_count"]),
            ram_gb=round(plan["ram"] / 1024, 1),
            disk_gb=float(plan["disk"] * disks),
            interconnect=interconnect,
            availability=Availability.AVAILABLE,
            inferred=inferred,
        )
        for region in locations:
            preemptible = _preemptible_price(kind, plan, region)
            if spot_only:
                price = dict(offer_id=f"{plan['id']}:{region}@spot", price_per_hour=preemptible,
                             pricing_type=PricingType.SPOT)  # fmt: skip
            else:
                spot = preemptible if plan.get("deploy_preemptible") is not False else None
                price = dict(offer_id=f"{plan['id']}:{region}", price_per_hour=_hourly_price(kind, plan, region),
                             spot_price=spot)  # fmt: skip
            yield self.offer(match, observed_at, region=region, country=COUNTRY.get(region), **price, **fields)


def _next_cursor(page: Any) -> str | None:
    """meta.links.next, or None; a page not in the documented shape ends the walk (normalise rejects it)."""
    if not isinstance(page, dict):
        return None
    links = (page.get("meta") or {}).get("links") or {}
    return links.get("next") or None


def _gpu_name(plan: dict[str, Any]) -> tuple[str | None, Interconnect | None]:
    """The plan's GPU as Vultr names it (`gpu_type`, else the GPU its id names) and the interconnect
    the name states; (None, None) when neither names a GPU."""
    if plan.get("gpu_type"):
        return plan["gpu_type"].replace("_", " "), None
    if (found := _id_gpu(plan["id"])) is None:
        return None, None
    _, name, token = found
    return name, Interconnect.NVLINK if "nvlink" in token else None


def _id_gpu(plan_id: str) -> tuple[int, str, str] | None:
    """(token index, GPU name, token) of the first id token the registry knows, wherever it sits;
    else the token a bare-metal id names its GPU with (`vbm-...-<gpu>-gpu`), for the registry to
    count as unknown; None when the id names no GPU."""
    tokens = plan_id.split("-")
    for i, token in enumerate(tokens[1:], start=1):
        name = ID_ALIASES.get(token, token.replace("_", " "))
        try:
            gpus.resolve(name)
        except gpus.UnknownGpu:
            continue
        return i, name, token
    if len(tokens) > 2 and tokens[-1] == "gpu" and not tokens[-2][:1].isdigit():
        return len(tokens) - 2, tokens[-2], tokens[-2]
    return None


def _has_gpu_sign(plan: dict[str, Any]) -> bool:
    """A GPU field, a Cloud GPU plan type or a GPU id: a plan that must not pass as CPU-only."""
    return (any(plan.get(k) for k in ("gpu_type", "gpu_count", "gpu_vram_gb", "gpu_vram"))
            or plan.get("type") in GPU_TYPES or plan["id"].startswith("vcg-")
            or "gpu" in plan["id"].split("-"))  # fmt: skip


def _gpu_count(kind: str, plan: dict[str, Any], card_gb: float) -> tuple[int | None, tuple[str, ...]]:
    """(whole cards in the plan, the fields inferred); None for a slice of one card."""
    if plan.get("gpu_count"):
        return int(plan["gpu_count"]), ()
    if kind == "metal":  # vbm-112c-2048gb-8-h100-gpu: 8 cards; vbm-72c-480gb-gh200-gpu: one
        index, _, _ = _id_gpu(plan["id"]) or (0, None, None)
        before = plan["id"].split("-")[index - 1] if index else ""
        return (int(before), ()) if before.isdigit() else (1, ("gpu_count",))
    vram = plan.get("gpu_vram_gb", plan.get("gpu_vram"))
    if not isinstance(vram, (int, float)) or isinstance(vram, bool):
        raise TypeError(f"gpu_vram_gb {vram!r} is not a number")
    return (int(vram // card_gb), ()) if vram >= card_gb and vram % card_gb == 0 else (None, ())


def _costs(plan: dict[str, Any], region: str) -> dict[str, Any]:
    return (plan.get("location_cost") or {}).get(region) or plan


def _hourly_price(kind: str, plan: dict[str, Any], region: str) -> Decimal:
    costs = _costs(plan, region)
    if costs.get("hourly_cost"):
        return _usd(costs["hourly_cost"])
    if costs.get("monthly_cost"):
        return (_usd(costs["monthly_cost"]) / HOURS_PER_MONTH[kind]).quantize(Decimal("0.0001"))
    raise ValueError(f"no on-demand price in {region!r} (hourly_cost and monthly_cost absent or 0)")


def _preemptible_price(kind: str, plan: dict[str, Any], region: str) -> Decimal | None:
    for costs in (_costs(plan, region), plan):
        if costs.get("hourly_cost_preemptible"):
            return _usd(costs["hourly_cost_preemptible"])
        if costs.get("monthly_cost_preemptible"):
            return (_usd(costs["monthly_cost_preemptible"]) / HOURS_PER_MONTH[kind]).quantize(Decimal("0.0001"))
    return None


def _usd(value: Any) -> Decimal:
    """A price as Vultr sends it: a JSON number of US dollars."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"price {value!r} is not a number")
    return Decimal(str(value))
