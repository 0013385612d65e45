"""What the alerts API takes and answers (the OpenAPI document is made from these)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from gpubroker import search, webhooks
from offers.api import Provider

COOLDOWN_DEFAULT = 300  # seconds
COOLDOWN_MAX = 7 * 24 * 3600


class RuleIn(Schema):
    """An alert rule: every condition given must hold. It watches anomalies when `anomaly` is true,
    offers becoming available when `becomes_available` is true, price changes when neither is."""

    name: search.text(100, 0) = Field("", description="your label for the rule")
    gpu: search.text(64) | None = Field(None, description="GPU model, any alias: H100, 'RTX 4090'")
    providers: list[Provider] | None = Field(None, max_length=64, description="provider slugs (any of them)")
    region: search.text(64) | None = Field(None, description="vendor region, case-insensitive")
    country: search.Country | None = Field(None, description="ISO 3166 country code")
    continent: search.Continent | None = None
    max_price: search.Price | None = Field(None, description="USD per hour for the whole offer, at most")
    max_price_per_gpu: search.Price | None = Field(None, description="USD per GPU-hour, at most")
    drop_percent: float | None = Field(None, gt=0, le=100, allow_inf_nan=False,
                                       description="the price fell by at least this many percent")  # fmt: skip
    anomaly: bool = Field(False, description="match price anomalies (z-score or sudden drop)")
    becomes_available: bool = Field(False, description="match offers becoming available (or appearing)")
    webhook_url: search.text(2000) = Field(description="public http(s) URL to POST matches to")
    cooldown_seconds: int = Field(COOLDOWN_DEFAULT, ge=0, le=COOLDOWN_MAX,
                                  description="after a webhook, the rule stays quiet this long")  # fmt: skip


class RuleOut(Schema):
    id: int
    name: str
    gpu: str | None = Field(description="canonical GPU model")
    providers: list[str] | None
    region: str | None
    country: str | None
    continent: str | None
    max_price: Decimal | None
    max_price_per_gpu: Decimal | None
    drop_percent: float | None
    anomaly: bool
    becomes_available: bool
    webhook_url: str
    cooldown_seconds: int
    created_at: datetime
    last_fired_at: datetime | None


class RuleCreated(RuleOut):
    secret: str = Field(description="Standard Webhooks signing secret (whsec_...): shown only now, keep it")


class RuleList(Schema):
    items: list[RuleOut]
    limit: int = Field(description="rules your plan allows")


class DeliveryOut(Schema):
    webhook_id: str
    event_id: str
    event_type: str
    matched_at: datetime
    status: Literal["queued", "delivered", "failing"] = Field(
        description="queued: no attempt yet; delivered; failing: attempted, not accepted (yet)")
    attempts: int
    response_code: int | None = Field(description="HTTP status of the last attempt (none: no answer)")
    latency_ms: int | None = Field(description="duration of the last attempt, ms")
    last_attempt_at: datetime | None
    error: str = Field(description="why the last attempt failed, if it did: our reason, or the start of the "
                                   f"target's answer (at most {webhooks.EXCERPT_CHARS} printable characters)")


class DeliveryList(Schema):
    items: list[DeliveryOut] = Field(description="newest first, at most 100")
