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
Rejected as malformed (whole batch): a non-list answer, a price that is not a positive finite decimal,
a GPU count that is not a positive integer, regions that are not a list of strings, a known GPU whose
name carries no "_<N>GB" memory, and the same (gpu_type, count, region) listed twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from gpubroker import gpus, regions
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

MEMORY_SUFFIX = re.compile(r"_(?P<gb>\d+(?:\.\d+)?)GB$", re.IGNORECASE)
NO_REGION = "unknown"


class FluidStackHook(VendorHook):
    vendor = VENDORS["fluidstack"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/list_available_configurations")

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        seen: set[str] = set()
        for page in pages:
            self.expect(isinstance(page, list), "expected a JSON array of configurations")
            for row in page:
                self.expect(isinstance(row, dict), "a configuration is not an object")
                gpu_type = row["gpu_type"]
                self.expect(isinstance(gpu_type, str) and gpu_type != "", "gpu_type is not a name")
                per_gpu = _usd(row["price_per_gpu_hr"], gpu_type)
                counts = row["gpu_counts"]
                self.expect(
                    isinstance(counts, list)
                    and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in counts),
                    f"{gpu_type}: gpu_counts is not a list of positive integers",
                )
                places = row["regions"]
                self.expect(
                    isinstance(places, list) and all(isinstance(p, str) and p for p in places),
                    f"{gpu_type}: regions is not a list of names",
                )
                if not (match := batch.gpu(gpu_type)):
                    continue
                memory_gb = _memory_gb(gpu_type)
                for count in counts:
                    for place in places or [None]:
                        offer = self._offer(gpu_type, count, place, per_gpu, memory_gb, match, observed_at)
                        self.expect(offer.offer_id not in seen, f"{offer.offer_id} is listed twice")
                        seen.add(offer.offer_id)
                        batch.add(offer)

    def _offer(self, gpu_type: str, count: int, place: str | None, per_gpu: Decimal, memory_gb: float,
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
        )


def _usd(value: Any, gpu_type: str) -> Decimal:
    """'2.89' (USD per GPU-hour, documented as a string; a JSON number is accepted) -> Decimal."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{gpu_type}: price_per_gpu_hr {value!r} is not a price")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{gpu_type}: price_per_gpu_hr {value!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"{gpu_type}: price_per_gpu_hr {value!r} is not a positive price")
    return price


def _memory_gb(gpu_type: str) -> float:
    """'A100_SXM4_80GB' -> 80.0: the memory of ONE GPU, in GB."""
    found = MEMORY_SUFFIX.search(gpu_type)
    if found is None:
        raise ValueError(f"gpu_type {gpu_type!r} does not end in _<N>GB")
    return float(found["gb"])


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
