"""REST API v1, analytics: what the stream found (flink/README.md).

    GET /api/v1/anomalies?gpu=&provider=&since=&limit=   newest first (event time)
    GET /api/v1/gpus                                     per GPU: cheapest now, median, offers, 24 h change
    GET /api/v1/gpus/{gpu}/stats?window=1h&by=all        the 1-minute price series of the last `window`

Prices are USD per GPU per hour (`price_per_hour`: the whole offer). A GPU is named by any alias
(H100, "RTX 4090"); an unknown one is a 400 with a message, a malformed parameter a 422.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from analytics import queries
from gpubroker import gpus, search
from gpubroker_web.responses import PRICING_TTL, json_response
from offers.schemas import ERRORS

router = Router(tags=["analytics"])
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
           "24h": timedelta(hours=24), "7d": timedelta(days=7)}  # fmt: skip


def canonical(gpu: str) -> str:
    try:
        return gpus.resolve(gpu).model.name
    except gpus.UnknownGpu:
        raise HttpError(400, f"unknown GPU model {gpu!r}; use a name such as H100, A100, RTX4090") from None


class AnomalyQuery(Schema):
    gpu: search.text(64, 0) | None = Field(None, description="GPU model, canonical or any alias")
    provider: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,32}$", description="provider slug, e.g. vastai")
    since: search.Timestamp | None = Field(None, description="observed at or after this time (ISO 8601 with timezone)")
    limit: int = Field(50, ge=1, le=500)


class AnomalyOut(Schema):
    event_id: str
    provider: str
    offer_id: str
    gpu: str
    gpu_form_factor: str | None
    region: str
    price_per_hour: float
    price_per_gpu: float
    mean: float | None = Field(description="mean price per GPU of the trailing window (zscore)")
    stddev: float | None
    z: float | None
    reason: Literal["zscore", "drop"]
    old_price: float | None = Field(description="the offer's previous price per hour")
    observed_at: datetime
    detected_at: datetime


class AnomalyList(Schema):
    items: list[AnomalyOut]
    generated_at: datetime


@router.get("/anomalies", response={200: AnomalyList, **ERRORS}, summary="Price anomalies, newest first")
async def list_anomalies(request: HttpRequest, query: Query[AnomalyQuery]):
    """A price per GPU more than 3 standard deviations from its GPU model's trailing hour (`zscore`), or
    a price more than 30% below the offer's previous one (`drop`)."""
    gpu = canonical(query.gpu) if query.gpu else None
    items = await queries.anomalies(gpu, query.provider, query.since, query.limit)
    return json_response({"items": items, "generated_at": datetime.now(timezone.utc)}, max_age=PRICING_TTL)


class CheapestOffer(Schema):
    provider: str
    offer_id: str
    region: str
    price_per_hour: float
    price_per_gpu: float


class GpuOut(Schema):
    gpu: str
    offers: int = Field(description="offers not unavailable")
    cheapest: CheapestOffer
    median_price_per_gpu: float
    price_per_gpu_24h_ago: float | None = Field(description="cheapest in the stream's windows of the hour 24 h ago")
    change_24h_percent: float | None


class GpuList(Schema):
    items: list[GpuOut]
    generated_at: datetime


@router.get("/gpus", response={200: GpuList, **ERRORS}, summary="Every GPU model: cheapest now, median, offers, 24 h change")
async def list_gpus(request: HttpRequest):
    now = datetime.now(timezone.utc)
    return json_response({"items": await queries.gpu_overview(now), "generated_at": now}, max_age=PRICING_TTL)


class StatsQuery(Schema):
    window: Literal["15m", "1h", "6h", "24h", "7d"] = Field("1h", description="how far back the series goes")
    by: Literal["all", "provider", "continent"] = Field("all", description="one series, or one per provider/continent")


class WindowOut(Schema):
    provider: str | None = None
    continent: str | None = None
    window_start: datetime
    window_end: datetime
    min_price_per_gpu: float
    avg_price_per_gpu: float
    max_price_per_gpu: float
    offers: int
    available: int = Field(description="offers available or limited")


class GpuStats(Schema):
    gpu: str
    window: str
    by: str
    since: datetime
    series: list[WindowOut] = Field(description="1-minute event-time windows with observations, oldest first")
    generated_at: datetime


@router.get("/gpus/{gpu}/stats", response={200: GpuStats, **ERRORS}, summary="A GPU's 1-minute price series")
async def gpu_stats(request: HttpRequest, gpu: str, query: Query[StatsQuery]):
    model, now = canonical(gpu), datetime.now(timezone.utc)
    since = now - WINDOWS[query.window]
    series = await queries.gpu_series(model, since, query.by)
    return json_response({"gpu": model, "window": query.window, "by": query.by, "since": since, "series": series,
                          "generated_at": now}, max_age=PRICING_TTL)  # fmt: skip
