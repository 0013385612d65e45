"""The one offer schema every vendor is normalised to, and the events derived from it.

Events: `OfferObserved` and `ProviderCall` (pipeline -> stream), `PriceChange`,
`SignificantPriceChange`, `AvailabilityChange`, `Anomaly`, `PriceAggregate`, `HealthScore` (stream ->
clients), `ProviderEvent`. flink/README.md gives who owns which.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator,
                      model_validator)

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


class Interconnect(StrEnum):
    """How the offer's GPUs talk to each other, as the vendor states it (None: not stated)."""

    NVLINK = "nvlink"  # NVLink / NVSwitch within the machine (SXM boards, NVL pairs)
    INFINIBAND = "infiniband"  # the machine's GPUs also on an InfiniBand fabric to other machines
    ROCE = "roce"  # RDMA over Converged Ethernet between machines
    INFINITY_FABRIC = "infinity_fabric"  # AMD Infinity Fabric (xGMI) within the machine
    PCIE = "pcie"  # PCIe only


class PricingType(StrEnum):
    """How the price is bought: by the hour, interruptible, or committed for `commitment_months`."""

    ON_DEMAND = "on_demand"
    SPOT = "spot"
    RESERVED = "reserved"


class Tag(StrEnum):
    """What a vendor states about an offer beyond its hardware and price: the compliance its data centre
    is certified for, and the tier of cloud that runs it. Only where the vendor's listing says so (the
    hooks' docstrings name the field), never inferred; an offer without tags stated none."""

    SOC2 = "soc2"  # SOC 2 attested
    HIPAA = "hipaa"  # HIPAA eligible
    ISO27001 = "iso27001"  # ISO/IEC 27001 certified
    GDPR = "gdpr"  # GDPR compliant
    SECURE_CLOUD = "secure-cloud"  # the vendor's vetted data-centre tier (e.g. RunPod Secure Cloud)
    COMMUNITY_CLOUD = "community-cloud"  # hosts run by the vendor's community (e.g. RunPod Community Cloud)
    VERIFIED = "verified"  # a marketplace host the vendor has verified (Vast.ai)


class Offer(BaseModel):
    """One rentable GPU configuration at one vendor, in one region, at one moment.

    Units: prices in USD per hour for the whole offer (all its GPUs), bought as `pricing_type` says
    (on demand unless the vendor sells it otherwise; `spot_price` is an on-demand offer's interruptible
    price where the vendor gives both); memory and disk in GB (10^9 bytes, as vendors advertise);
    `gpu_memory_gb` is per GPU. A reserved offer states its `commitment_months`; no other does.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1, max_length=32)
    offer_id: str = Field(min_length=1, max_length=200)
    instance_type: str = Field(min_length=1, max_length=200)
    gpu_model: str = Field(min_length=1, max_length=32)
    gpu_form_factor: FormFactor | None = None
    gpu_vendor: str = Field(min_length=1, max_length=16)
    gpu_count: int = Field(ge=1, le=16)  # an offer without a GPU is not a GPU offer
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
    interconnect: Interconnect | None = None
    pricing_type: PricingType = PricingType.ON_DEMAND
    commitment_months: int | None = Field(default=None, ge=1, le=120)  # reserved only: the term bought
    # the cloud that runs the offer when the provider is a marketplace of clouds (an aggregator), e.g. "lambda"
    cloud: str | None = Field(default=None, min_length=1, max_length=64)
    # fields the vendor did not state, filled in from the GPU registry (e.g. gpu_memory_gb from the model)
    inferred: tuple[str, ...] = ()
    tags: tuple[Tag, ...] = ()  # what the vendor states about the offer (`Tag`), sorted, each once
    observed_at: UtcDatetime

    @model_validator(mode="after")
    def _commitment_only_when_reserved(self) -> Offer:
        if (self.pricing_type == PricingType.RESERVED) != (self.commitment_months is not None):
            raise ValueError("commitment_months is given for reserved prices, and only for them")
        return self

    @field_validator("inferred")
    @classmethod
    def _names_offer_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if unknown := set(value) - set(cls.model_fields):
            raise ValueError(f"inferred names fields an offer does not have: {sorted(unknown)}")
        return tuple(sorted(set(value)))

    @field_validator("tags")
    @classmethod
    def _sorted_once(cls, value: tuple[Tag, ...]) -> tuple[Tag, ...]:
        return tuple(sorted(set(value)))


OFFER_FIELDS: tuple[str, ...] = tuple(Offer.model_fields)


def offer_key(provider: str, offer_id: str) -> str:
    """An offer's identity, stable across syncs: `provider:offer_id` (a slug holds no colon). The API's
    `id` of the offer and the Kafka key of every event about it."""
    return f"{provider}:{offer_id}"


def event_uuid(name: str) -> str:
    """A deterministic event id: the UUID spelled by the MD5 of `name` (PostgreSQL's `md5(name)::uuid`,
    Flink SQL's `MD5`), so a re-sent or replayed event carries the id it had the first time."""
    return str(uuid.UUID(hashlib.md5(name.encode()).hexdigest()))


def observation_id(provider: str, offer_id: str, observed_at: datetime) -> str:
    """`event_id` of one offer observed at one time (`store.land` computes the same in SQL)."""
    return event_uuid(f"{provider}:{offer_id}@{observed_at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%fZ}")


def derived_id(event_id: str, kind: str) -> str:
    """`event_id` of what the stream derives from one input event: kind is the output's type
    (`price_change`, `availability_change`) or `anomaly:<reason>` (the Flink jobs compute the same)."""
    return event_uuid(f"{event_id}:{kind}")


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def key(self) -> str:
        """Kafka message key: the offer's identity across providers."""
        return offer_key(self.provider, self.offer_id)


class OfferObserved(_Event):
    """`offer_observed` (topic `gpubroker.price-updates`): one offer as one landing saw it.

    The store queues one per offer of every landed batch, and one per offer that vanished from its
    provider's batch (then `availability` is "unavailable"), with what only the landing transaction
    knows: the previous price and availability (None for an offer seen for the first time). Whether
    and how much the price changed is the stream's to say (flink/README.md). Prices in USD per hour.
    """

    type: Literal["offer_observed"] = "offer_observed"
    event_id: str
    provider: str
    offer_id: str
    gpu: str  # canonical GPU model
    gpu_form_factor: FormFactor | None
    gpu_count: int
    region: str
    country: str | None
    continent: str | None
    price_per_hour: JsonPrice  # the whole offer
    price_per_gpu: JsonPrice  # price_per_hour / gpu_count, 4 places
    spot_price: JsonPrice | None
    availability: Availability
    available_count: int | None
    old_price: JsonPrice | None
    old_availability: Availability | None
    interconnect: Interconnect | None = None
    pricing_type: PricingType = PricingType.ON_DEMAND
    commitment_months: int | None = None
    observed_at: UtcDatetime  # event time
    # the landing's commit time: the outbox relay stamps it as it publishes (None in the outbox row)
    landed_at: UtcDatetime | None = None

    @classmethod
    def of(cls, offer: Offer, old_price: Decimal | None = None, old_availability: Availability | None = None,
           **changes) -> OfferObserved:  # fmt: skip
        """The event `store.land` queues for `offer` (tests and benchmarks build their input with it)."""
        fields = dict(
            event_id=observation_id(offer.provider, offer.offer_id, offer.observed_at),
            provider=offer.provider, offer_id=offer.offer_id, gpu=offer.gpu_model,
            gpu_form_factor=offer.gpu_form_factor, gpu_count=offer.gpu_count, region=offer.region,
            country=offer.country, continent=offer.continent, price_per_hour=offer.price_per_hour,
            price_per_gpu=(offer.price_per_hour / offer.gpu_count).quantize(PRICE_QUANTUM, ROUND_HALF_UP),
            spot_price=offer.spot_price, availability=offer.availability, available_count=offer.available_count,
            old_price=old_price, old_availability=old_availability, interconnect=offer.interconnect,
            pricing_type=offer.pricing_type, commitment_months=offer.commitment_months, observed_at=offer.observed_at,
        )  # fmt: skip
        return cls(**(fields | changes))


class PriceChange(_Event):
    """`price_change` (topic `gpubroker.price-changes`): an offer's price differs from the last one
    the stream saw for it. `change_percent` is (new - old) / old * 100; `detected_at` is when the
    change job emitted it (processing time), `observed_at` the input's event time."""

    type: Literal["price_change"] = "price_change"
    event_id: str
    provider: str
    offer_id: str
    gpu: str
    gpu_form_factor: FormFactor | None
    gpu_count: int
    region: str
    country: str | None
    continent: str | None
    old_price: JsonPrice
    new_price: JsonPrice
    price_per_gpu: JsonPrice
    change_percent: float
    direction: Literal["up", "down"]
    availability: Availability
    interconnect: Interconnect | None = None
    pricing_type: PricingType = PricingType.ON_DEMAND
    commitment_months: int | None = None
    observed_at: UtcDatetime
    landed_at: UtcDatetime | None = None  # the input's: when its landing committed
    detected_at: UtcDatetime


class SignificantPriceChange(PriceChange):
    """`significant_price_change` (topic `gpubroker.price-changes`): sent beside a `price_change` whose
    price moved by 5% or more (|change_percent| >= 5), with the same fields and an id of its own."""

    type: Literal["significant_price_change"] = "significant_price_change"


class AvailabilityChange(_Event):
    """`availability_change` (topic `gpubroker.price-changes`): an offer appeared
    (`old_availability` None), vanished (`availability` "unavailable") or changed availability."""

    type: Literal["availability_change"] = "availability_change"
    event_id: str
    provider: str
    offer_id: str
    gpu: str
    region: str
    country: str | None
    continent: str | None
    old_availability: Availability | None
    availability: Availability
    available_count: int | None
    price_per_hour: JsonPrice
    interconnect: Interconnect | None = None
    pricing_type: PricingType = PricingType.ON_DEMAND
    commitment_months: int | None = None
    observed_at: UtcDatetime
    landed_at: UtcDatetime | None = None  # the input's: when its landing committed
    detected_at: UtcDatetime


class Anomaly(_Event):
    """`anomaly` (topic `gpubroker.anomalies`, table `anomalies`): a price per GPU more than 3
    standard deviations from its GPU model's trailing window (`zscore`), or a drop of more than 30%
    against the offer's previous price (`drop`). mean/stddev/z are None when the window holds fewer
    than 10 samples or has no spread."""

    type: Literal["anomaly"] = "anomaly"
    event_id: str
    provider: str
    offer_id: str
    gpu: str
    gpu_form_factor: FormFactor | None
    region: str
    price_per_hour: JsonPrice
    price_per_gpu: JsonPrice
    mean: float | None
    stddev: float | None
    z: float | None
    reason: Literal["zscore", "drop"]
    old_price: JsonPrice | None
    observed_at: UtcDatetime
    detected_at: UtcDatetime


class PriceAggregate(BaseModel):
    """`price_aggregate` (topic `gpubroker.aggregations`, table `gpu_price_aggregates`): one GPU model's
    offers observed in one 1-minute event-time window, per provider or per continent (`dimension`).
    Prices are USD per GPU per hour; `window_end` is exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["price_aggregate"] = "price_aggregate"
    gpu: str
    dimension: Literal["provider", "continent"]
    value: str  # the provider slug or the continent code ("??" when unknown)
    window_start: UtcDatetime
    window_end: UtcDatetime
    min_price_per_gpu: JsonPrice
    avg_price_per_gpu: JsonPrice
    max_price_per_gpu: JsonPrice
    offers: int
    available: int

    @property
    def key(self) -> str:
        return f"{self.gpu}:{self.dimension}:{self.value}"


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


class ProviderCall(BaseModel):
    """`provider_call` (topic `gpubroker.provider-calls`, keyed by provider): the outcome of one call
    to a provider, a health-check probe or a sync's fetch (`kind`). `latency_ms` is the call's wall
    time (a sync's: its whole fetch, every page); `at` is event time: the health-check round's time for
    a probe, the end of the fetch for a sync. The health score job reads these (flink/README.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["provider_call"] = "provider_call"
    event_id: str
    provider: str
    kind: Literal["probe", "sync"]
    ok: bool
    latency_ms: int = Field(ge=0)
    at: UtcDatetime

    @classmethod
    def of(cls, provider: str, kind: Literal["probe", "sync"], ok: bool, seconds: float, at: datetime) -> ProviderCall:
        """The event of one call, its id derived from provider, kind and time (a re-sent row keeps it)."""
        event_id = event_uuid(f"{provider}:{kind}@{at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%fZ}")
        return cls(event_id=event_id, provider=provider, kind=kind, ok=ok, latency_ms=round(seconds * 1000), at=at)

    @property
    def key(self) -> str:
        return self.provider


def health_score_id(provider: str, window_end: datetime) -> str:
    """`event_id` of a provider's health score for the window ending at `window_end` (a whole minute;
    flink/health_scores.py computes the same), so a replayed window repeats its id."""
    return event_uuid(f"{provider}@{window_end.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}:health_score")


class HealthScore(BaseModel):
    """`health_score` (topic `gpubroker.health-scores`, table `provider_health_scores`, keyed by
    provider): how well a provider served over the trailing window [window_start, window_end) of event
    time, 0 (no call succeeded) to 1 (flink/health_scores.py gives the formula). `calls` and `failures`
    count its probes and sync fetches; `latency_ms` is the mean of its successful probes (None: none);
    `last_landed_at` is its newest landing the job has seen (None: none yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["health_score"] = "health_score"
    event_id: str
    provider: str
    score: float = Field(ge=0, le=1)
    calls: int = Field(ge=1)
    failures: int = Field(ge=0)
    latency_ms: int | None
    last_landed_at: UtcDatetime | None
    window_start: UtcDatetime
    window_end: UtcDatetime
    detected_at: UtcDatetime

    @property
    def key(self) -> str:
        return self.provider
