"""Offer search shared by the REST API and the WebSocket `get_offers` message."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import redis

from gpubroker import cache, gpus
from gpubroker_provider.vendors import VENDORS
from offers.models import Offer, ProviderStatus

OUTPUT_FIELDS = (
    "provider", "offer_id", "instance_type", "gpu_model", "gpu_form_factor", "gpu_vendor", "gpu_count",
    "gpu_memory_gb", "vcpus", "ram_gb", "disk_gb", "price_per_hour", "spot_price", "region", "country",
    "continent", "availability", "available_count", "cpu_arch", "observed_at", "first_seen", "last_seen",
)  # fmt: skip
MAX_PER_PAGE = 500


class BadFilter(ValueError):
    """A filter value that can match nothing because it names nothing GPUBroker knows."""


@dataclass
class OfferFilter:
    gpu: str | None = None
    provider: str | None = None
    region: str | None = None
    max_price: Decimal | None = None
    warnings: list[str] = field(default_factory=list)

    def canonical_gpu(self) -> str | None:
        if not self.gpu:
            return None
        try:
            name = gpus.resolve(self.gpu).model.name
        except gpus.UnknownGpu:
            raise BadFilter(f"unknown GPU model {self.gpu!r}; use a name such as H100, A100, RTX4090") from None
        if name != self.gpu:
            self.warnings.append(f"gpu {self.gpu!r} read as {name!r}")
        return name

    def queryset(self):
        qs = Offer.objects.all()
        if gpu := self.canonical_gpu():
            qs = qs.filter(gpu_model=gpu)
        if self.provider:
            if self.provider not in VENDORS:
                raise BadFilter(f"unknown provider {self.provider!r}; known: {', '.join(sorted(VENDORS))}")
            qs = qs.filter(provider=self.provider)
        if self.region:
            qs = qs.filter(region__iexact=self.region)
        if self.max_price is not None:
            qs = qs.filter(price_per_hour__lte=self.max_price)
        return qs.order_by("price_per_hour", "provider", "offer_id")

    def stale_warnings(self) -> list[str]:
        """A provider whose latest batch was quarantined is served from its last good data: say so."""
        stale = ProviderStatus.objects.filter(stale=True)
        if self.provider:
            stale = stale.filter(provider=self.provider)
        return [
            f"{s.provider}: latest batch quarantined, serving data last good at "
            f"{s.last_good_at:%Y-%m-%d %H:%M} UTC ({s.stale_reason[:160]})"
            if s.last_good_at
            else f"{s.provider}: latest batch quarantined ({s.stale_reason[:160]})"
            for s in stale.order_by("provider")
        ]


def _row(values: dict) -> dict:
    for price in ("price_per_hour", "spot_price"):
        if values[price] is not None:
            values[price] = float(values[price])
    return values


def search(filters: OfferFilter, page: int = 1, per_page: int = 50) -> dict:
    """One page of matching offers, cheapest first: {total, items, page, per_page, has_next, warnings}."""
    qs = filters.queryset()
    total = qs.count()
    start = (page - 1) * per_page
    items = [_row(v) for v in qs.values(*OUTPUT_FIELDS)[start : start + per_page]]
    return {
        "total": total,
        "items": items,
        "page": page,
        "per_page": per_page,
        "has_next": start + len(items) < total,
        "warnings": filters.warnings + filters.stale_warnings(),
    }


def cheapest_per_region(gpu: str) -> dict:
    """Cheapest available offer of a GPU model in each region: Redis (warmed) first, then PostgreSQL."""
    model = OfferFilter(gpu=gpu).canonical_gpu()
    try:
        cached = cache.read(f"cheapest:{model}")
    except redis.RedisError:  # Redis blinked: the database still answers
        cached = None
    if cached is not None:
        return {"gpu": model, "regions": cached, "source": "cache"}
    regions: dict[str, dict] = {}
    rows = Offer.objects.filter(gpu_model=model).exclude(availability="unavailable").order_by("price_per_hour")
    for row in rows.values(*cache.FIELDS):
        regions.setdefault(row["region"], _row(row))
    return {"gpu": model, "regions": regions, "source": "database"}
