"""FluidStack: on-demand GPU configurations, their per-GPU price and the regions that have them.

Endpoint: GET {base}/list_available_configurations on the platform API (base
https://platform.fluidstack.io); auth: the raw key in an `api-key` header (no Bearer scheme).
Chosen because it is the one FluidStack documents with an example response (docs.fluidstack.io,
"Configurations"), the one its generated SDKs call (`configurations.list()`), and the one SkyPilot's
current FluidStack catalog fetcher and provisioner use. The older `https://api.fluidstack.io/v1/plans`
(key + token pair) is retired, and the Atlas management API (api.atlas.fluidstack.io/api/v1alpha1)
manages reserved clusters and publishes no prices.

No pagination: one answer, a bare JSON array (not wrapped in an object) of configurations:
`[{"gpu_type": "H100_SXM5_80GB", "gpu_counts": [1, 2, 4, 8], "price_per_gpu_hr": "2.89",
"estimated_provisioning_time_minutes": 15, "regions": ["CANADA", "TEXAS_USA"]}, ...]`.
A bad key gets HTTP 401 with the SDK's `Message` body, `{"message": "..."}`.

Fields used, and their units:
  `gpu_type` — FluidStack's GPU name, "<MODEL>[_<FORM>]_<N>GB" (e.g. "A100_SXM4_80GB",
    "RTX_A6000_48GB"): GPU model and form factor via the registry (the raw name is what
    `batch.gpu` sees and counts when unknown), and `<N>GB` = memory PER GPU in GB;
  `price_per_gpu_hr` — a decimal STRING, USD per GPU-hour (the currency is not stated; FluidStack
    bills in USD): the offer's price is it x the GPU count (exact Decimal arithmetic);
  `gpu_counts` — the GPU counts one instance of this type can have: one offer per count;
  `regions` — region names, upper case with underscores ("NORWAY", "TEXAS_USA"): where the
    configuration can be launched now.
Offers: one per (gpu_type, GPU count, region); offer_id `<gpu_type>x<count>@<region>`, instance type
`<count>x <gpu_type>`, available. A configuration listed with no region still has a price: one offer
per count in region "unknown" (offer_id `...@none`, unavailable) — FluidStack does not say where it
would run. Region -> country: the whole name as a country ("GERMANY"), else its last `_` part
("TEXAS_USA" -> "USA"), and only then the shared place patterns (so "INDIANA_USA" is US, not India).

Not in the answer: vCPUs, RAM and disk (the API sizes them from the GPU count but does not say
how: left empty), spot prices (none sold on demand), how many instances are free
(available_count empty), CPU architecture. `estimated_provisioning_time_minutes` is ignored.
A `gpu_type` naming NVLink ("H100_NVLINK_80GB", "A100_NVLINK_80GB") states NVLink-bridged cards:
interconnect "nvlink".

The retired v1 plans (GET https://api.fluidstack.io/v1/plans, a bare array) are read too, each plan
an item: `{"plan_id", "type": "preconfigured"|"custom", "minimum_commitment": "hourly"|"monthly"|...,
"gpu_type", "configuration": {"gpu_count", "gpu_memory" ("80GB" or 80), "core_count", "ram" (GB),
"nvme_storage" (GB)}, "price": {"hourly": USD per GPU-hour}, "regions": [{"id": "norway_2"}]}`:
one offer per region, offer_id `<plan_id>@<region id>`; an hourly commitment is on demand, a monthly
one reserved for 1 month (MONTHS_COMMITTED), the id then ending "@reserved-<n>mo". Skipped: "NO GPU"
plans and `custom` plans (a price per component, no configuration to price).

Each configuration is an item: one that is not an object, has a price that is not a positive finite
decimal, GPU counts that are not positive integers, regions that are not a list of names, or repeats
an offer already listed, is dropped with that reason; the rest land. A known GPU whose name carries no
"_<N>GB" gets its memory from the registry when the model has one size (marked inferred). Anything but
a JSON array refuses the batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from gpubroker import gpus, regions
from gpubroker.schema import Availability, Interconnect, Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip

MEMORY_SUFFIX = re.compile(r"_(?P<gb>\d+(?:\.\d+)?)GB$", re.IGNORECASE)
NO_REGION = "unknown"
MONTHS_COMMITTED = {"hourly": None, "monthly": 1, "quarterly": 3, "yearly": 12}  # v1 plans' minimum_commitment


class FluidStackHook(VendorHook):
    vendor = VENDORS["fluidstack"]
    variants = (
        Variant("v1-plans", "list_available_configurations.json", "the retired v1 plans: `plan_id`, `type`, "
                "`minimum_commitment`, `configuration`, `price.hourly` per GPU, `regions` as objects"),
    )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/list_available_configurations")

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, list), "expected a JSON array of configurations")
            yield from page

    def item_offers(self, row: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if "configuration" in row:
            yield from self._plan_offers(row, observed_at, batch)
            return
        gpu_type = row["gpu_type"]
        self.expect(isinstance(gpu_type, str) and gpu_type != "", "gpu_type is not a name")
        per_gpu = _usd(row["price_per_gpu_hr"])
        counts = row["gpu_counts"]
        self.expect(
            isinstance(counts, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in counts),
            "gpu_counts is not a list of positive integers",
        )
        places = row["regions"]
        self.expect(isinstance(places, list) and all(isinstance(p, str) and p for p in places),
                    "regions is not a list of names")  # fmt: skip
        if not (match := batch.gpu(gpu_type)):
            return
        memory_gb = _memory_gb(gpu_type)
        for count in counts:
            for place in places or [None]:
                yield self._offer(gpu_type, count, place, per_gpu, memory_gb, match, observed_at)

    def _plan_offers(self, plan: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        """The offers of one retired v1 plan: one per region, at its commitment."""
        if plan["gpu_type"] == "NO GPU":
            skip("CPU-only plan")
        if plan["type"] == "custom":
            skip("custom plan: a price per component, no configuration to price")
        setup = plan["configuration"]
        commitment = plan["minimum_commitment"]
        if commitment not in MONTHS_COMMITTED:
            raise ValueError(f"unknown minimum_commitment {commitment!r}")
        months = MONTHS_COMMITTED[commitment]
        if not (match := batch.gpu(plan["gpu_type"])):
            return
        count, per_gpu = int(setup["gpu_count"]), _usd(plan["price"]["hourly"])
        memory = str(setup.get("gpu_memory") or "").upper().removesuffix("GB")
        for region in plan["regions"] or [{"id": None}]:
            place = region["id"]
            yield self.offer(
                match,
                observed_at,
                region=place or NO_REGION,
                country=_location(re.sub(r"_\d+$", "", place.upper()) if place else None).country,
                offer_id=f"{plan['plan_id']}@{place or 'none'}" + (f"@reserved-{months}mo" if months else ""),
                instance_type=str(plan["plan_id"]),
                gpu_count=count,
                gpu_memory_gb=float(memory) if memory else _memory_gb(plan["gpu_type"]),
                vcpus=setup.get("core_count"),
                ram_gb=setup.get("ram"),
                disk_gb=setup.get("nvme_storage"),
                price_per_hour=per_gpu * count,
                availability=Availability.AVAILABLE if place else Availability.UNAVAILABLE,
                interconnect=_interconnect(plan["gpu_type"]),
                **({"pricing_type": PricingType.RESERVED, "commitment_months": months} if months else {}),
            )

    def _offer(self, gpu_type: str, count: int, place: str | None, per_gpu: Decimal, memory_gb: float | None,
               match: gpus.GpuMatch, observed_at: datetime) -> Offer:
        location = _location(place)
        return self.offer(
            match,
            observed_at,
            region=place or NO_REGION,
            country=location.country,
            offer_id=f"{gpu_type}x{count}@{place or 'none'}",
            instance_type=f"{count}x {gpu_type}",
            gpu_count=count,
            gpu_memory_gb=memory_gb,
            price_per_hour=per_gpu * count,
            availability=Availability.AVAILABLE if place else Availability.UNAVAILABLE,
            interconnect=_interconnect(gpu_type),
        )


def _interconnect(gpu_type: str) -> Interconnect | None:
    """NVLink where the GPU type names it ("A100_NVLINK_80GB"); otherwise not stated."""
    return Interconnect.NVLINK if "NVLINK" in gpu_type.upper().split("_") else None


def _usd(value: Any) -> Decimal:
    """'2.89' (USD per GPU-hour, documented as a string; a JSON number is accepted) -> Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("price_per_gpu_hr is not a price")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("price_per_gpu_hr is not a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError("price_per_gpu_hr is not a positive price")
    return price


def _memory_gb(gpu_type: str) -> float | None:
    """'A100_SXM4_80GB' -> 80.0: the memory of ONE GPU, in GB; None without "_<N>GB" (the registry's)."""
    found = MEMORY_SUFFIX.search(gpu_type)
    return float(found["gb"]) if found else None


def _location(place: str | None) -> regions.Location:
    """'GERMANY' -> DE, 'TEXAS_USA' -> US (last part), 'UNITED_KINGDOM' -> GB; unknown -> (None, None)."""
    if not place:
        return regions.UNKNOWN
    words = place.replace("_", " ").strip()
    whole = regions.country(words)
    if whole.country:
        return whole
    last = regions.country(words.rsplit(" ", 1)[-1])
    return last if last.country else regions.from_place(words)
