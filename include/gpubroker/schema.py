"""The one offer schema every vendor is normalised to, and the events derived from it."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainSerializer, ConfigDict, Field

PRICE_QUANTUM = Decimal("0.0001")  # prices are stored as NUMERIC(12, 4) USD


def _to_usd(value: object) -> object:
    """Vendors send floats, strings or Decimals with any precision; store 4 decimal places."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return Decimal(str(value)).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return value  # not a number: left for pydantic to reject with a clear message


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(timezone.utc)


Usd = Annotated[Decimal, BeforeValidator(_to_usd), Field(gt=0, lt=Decimal("100000000"))]
UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
JsonPrice = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]  # a JSON number


class Availability(StrEnum):
    AVAILABLE = "available"
    LIMITED = "limited"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


class FormFactor(StrEnum):
    SXM = "SXM"
    PCIE = "PCIe"
    NVL = "NVL"


class Offer(BaseModel):
    """One rentable GPU configuration at one vendor, in one region, at one moment.

    Units: prices in USD per hour for the whole offer (all its GPUs), on-demand; memory and disk
    in GB (10^9 bytes, as vendors advertise); `gpu_memory_gb` is per GPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1, max_length=32)
    offer_id: str = Field(min_length=1, max_length=200)
    instance_type: str = Field(min_length=1, max_length=200)
    gpu_model: str = Field(min_length=1, max_length=32)
    gpu_form_factor: FormFactor | None = None
    gpu_vendor: str = Field(min_length=1, max_length=16)
    gpu_count: int = Field(ge=0, le=16)
    gpu_memory_gb: float = Field(ge=0)
    vcpus: int | None = Field(default=None, ge=0)
    ram_gb: float | None = Field(default=None, ge=0)
    disk_gb: float | None = Field(default=None, ge=0)
    price_per_hour: Usd
    spot_price: Usd | None = None
    region: str = Field(min_length=1, max_length=64)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    continent: str | None = None
    availability: Availability = Availability.UNKNOWN
    available_count: int | None = Field(default=None, ge=0)
    cpu_arch: str | None = None
    observed_at: UtcDatetime


OFFER_FIELDS: tuple[str, ...] = tuple(Offer.model_fields)


class PriceUpdate(BaseModel):
    """`price_update` event: one offer's on-demand price changed between two syncs."""

    model_config = ConfigDict(frozen=True)

    type: str = "price_update"
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    provider: str
    offer_id: str
    gpu: str
    region: str
    old_price: JsonPrice | None
    new_price: JsonPrice
    change_percent: float | None
    timestamp: UtcDatetime

    @classmethod
    def between(cls, offer: Offer, old_price: Decimal | None) -> PriceUpdate:
        change = None if not old_price else float((offer.price_per_hour - old_price) / old_price * 100)
        return cls(
            provider=offer.provider,
            offer_id=offer.offer_id,
            gpu=offer.gpu_model,
            region=offer.region,
            old_price=old_price,
            new_price=offer.price_per_hour,
            change_percent=None if change is None else round(change, 4),
            timestamp=offer.observed_at,
        )

    @property
    def key(self) -> str:
        """Kafka message key: the offer's identity across providers."""
        return f"{self.provider}:{self.offer_id}"


class ProviderEvent(BaseModel):
    """`provider-events` message: a provider's data or health changed state (keyed by provider)."""

    model_config = ConfigDict(frozen=True)

    type: str  # "quarantine", "health_update"
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    provider: str
    status: str  # e.g. "stale", "healthy", "degraded", "down"
    reason: str = ""
    details: dict = Field(default_factory=dict)
    timestamp: UtcDatetime

    @property
    def key(self) -> str:
        return self.provider
