"""What the offers API answers, as schemas (they make the OpenAPI document; views render with orjson)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Field, Schema


class Error(Schema):
    detail: str = Field(description="what is wrong, and what to do about it")


class ParameterError(Schema):
    parameter: str
    message: str


class Invalid(Error):
    errors: list[ParameterError] = Field(description="one entry per malformed parameter")


class RateLimited(Error):
    plan: str
    limit: int = Field(description="requests allowed per sliding 60 s window")
    retry_after: int = Field(description="seconds until a request can succeed")


# What any route of the API may answer besides its own outcomes (gpubroker_web/api.py's handlers):
# unknown names/paging (400), a bad key (401), malformed parameters (422), limits (429), outages (503).
ERRORS = {400: Error, 401: Error, 422: Invalid, 429: RateLimited, 503: Error}


class OfferOut(Schema):
    id: str = Field(description="the offer's id, stable across syncs: `provider:offer_id` (the key of its events on "
                    "the feed and Kafka too)")
    currency: str = Field(description='"USD": every price is normalised to US dollars')
    provider: str
    offer_id: str
    instance_type: str
    gpu_model: str
    gpu_form_factor: str | None
    gpu_vendor: str
    gpu_count: int
    gpu_memory_gb: float = Field(description="per GPU, GB")
    vcpus: int | None
    ram_gb: float | None
    disk_gb: float | None
    price_per_hour: float = Field(description="USD per hour for the whole offer")
    price_per_gpu: float = Field(description="USD per GPU-hour")
    spot_price: float | None
    region: str
    country: str | None
    continent: str | None
    availability: str
    available_count: int | None
    cpu_arch: str | None
    interconnect: str | None = Field(description="nvlink, infiniband, roce, infinity_fabric or pcie; null when the vendor does not say")
    pricing_type: str = Field(description="on_demand, spot or reserved")
    commitment_months: int | None = Field(description="the term a reserved price commits to; null otherwise")
    cloud: str | None = Field(description="the cloud that runs the offer, when the provider resells several clouds")
    inferred: list[str] = Field(description="fields filled in from the GPU registry, not stated by the vendor")
    tags: list[str] = Field(description="what the vendor states about the offer, where it does: compliance (soc2, hipaa, "
                            "iso27001, gdpr) and cloud tier (secure-cloud, community-cloud, verified)")
    observed_at: datetime = Field(description="when the vendor's listing was read")
    data_age_seconds: int = Field(description="seconds between observed_at and generated_at")
    first_seen: datetime
    last_seen: datetime


class OfferPage(Schema):
    total: int
    items: list[OfferOut]
    page: int
    per_page: int
    has_next: bool
    warnings: list[str] = Field(description="filters read differently, and providers served stale or unhealthy")
    generated_at: datetime = Field(description="when this answer was computed (the `Age` header: seconds since)")
    data_version: int | None = Field(description="the data version (bumped by every landing) it was computed from")
    at: datetime | None = Field(description="the point in time asked for, if any")


class PricePoint(Schema):
    price_per_hour: float
    spot_price: float | None
    observed_at: datetime


class OfferHistory(Schema):
    provider: str
    offer_id: str
    pricing_type: str = Field(description="on_demand, spot or reserved: how the offer's prices are bought (as last seen)")
    commitment_months: int | None = Field(description="the term a reserved price commits to; null otherwise")
    interconnect: str | None = Field(description="nvlink, infiniband, roce, infinity_fabric or pcie; null when the vendor does not say")
    since: datetime | None
    until: datetime | None
    items: list[PricePoint] = Field(description="every price the offer had, oldest first")
    generated_at: datetime


class CheapestOut(Schema):
    gpu: str
    regions: dict[str, OfferOut] = Field(description="region -> its cheapest available offer")
    generated_at: datetime


class ProviderOut(Schema):
    slug: str
    name: str
    source: Literal["api", "page", "list"] = Field(
        description='how its prices are read: "api" its price API, "page" its public price page, "list" a dated price '
        "list (only where the vendor publishes neither)")
    source_url: str = Field(description="where the prices are read: the API call's URL, the page, the list's origin")
    as_of: date | None = Field(description="a list's publication date: its offers are observed then (null for api/page)")
    cadence_seconds: int = Field(description="seconds between scheduled syncs (marketplaces 300, clouds 3600, lists 86400)")
    next_sync_at: datetime = Field(description="when its next scheduled sync starts")
    health: str | None = Field(description="healthy, degraded or down (latest health check); null before one ran")
    latency_ms: int | None = Field(description="latency of the latest health check")
    checked_at: datetime | None
    breaker_state: str = Field(description="closed, half_open or open")
    healthy: bool = Field(description="in rotation: breaker not open and its last 3 calls did not all fail")
    weight: float = Field(description="0..1, orders its syncs: 0 while unhealthy (breaker open, or 3 failed calls in a "
                          "row), else its success rate, x0.75 when avg_latency_ms > 1000, x0.5 > 2000, at least 0.1")
    avg_latency_ms: int | None = Field(description="how long it took to answer its last 20 requests, on average "
                                       "(null: none timed yet)")
    last_good_sync: datetime | None = Field(description="when a batch of it last passed the data-quality gate")
    offer_count: int = Field(description="offers currently listed (not unavailable)")
    stale: bool = Field(description="true: its latest batch was quarantined and older data is served, or its price "
                        "list is older than 30 days")
    stale_reason: str | None
    last_quarantine_reason: str | None
    last_quarantine_at: datetime | None


class VaultOut(Schema):
    """The Vault the syncs read vendor keys from, as the last health check saw it."""

    status: Literal["ok", "standby", "sealed", "not_initialized", "down", "not_configured"]
    latency_ms: int | None
    checked_at: datetime
    error: str | None


class ProviderHealthOut(Schema):
    provider: str
    healthy: bool = Field(description="in rotation: breaker not open and its last 3 calls did not all fail")
    weight: float = Field(description="0 (unhealthy) to 1: success rate, x0.75 above 1 s average latency, x0.5 above 2 s; floor 0.1")
    avg_latency_ms: int | None = Field(description="mean answer time of its last 20 requests")
    last_check: datetime | None = Field(description="the latest health check")
    circuit_state: str = Field(description="closed, open or half_open")
    failure_count: int
    success_count: int
    score: float | None = Field(description="the stream's health score (0-1) of the last window (Flink HealthScorer); null before one")


class GatewayHealth(Schema):
    """The contract's gateway health: every service the answers depend on, probed at most every 5 s."""

    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    postgres_connected: bool
    redis_connected: bool
    kafka_connected: bool
    flink_jobs_running: int
    airflow_healthy: bool
    websocket_connections: int = Field(description="open sockets over every webapp worker")
    providers: list[ProviderHealthOut]
    vault: VaultOut | None


class ProviderList(Schema):
    items: list[ProviderOut]
    vault: VaultOut | None = Field(description="null until the health checks have run")
    generated_at: datetime
