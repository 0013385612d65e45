"""REST API v1, analytics: what the stream found (flink/README.md).

    GET /api/v1/anomalies?gpu=&provider=&since=&limit=   newest first (event time)
    GET /api/v1/gpus                                     per GPU: cheapest now, median, offers, 24 h change
    GET /api/v1/gpus/{gpu}/stats?window=1h&by=all        the 1-minute price series of the last `window`
    GET /api/v1/analytics/daily?date=YYYY-MM-DD          the daily report of a UTC day (gpubroker.daily)

Prices are USD per GPU per hour (`price_per_hour`: the whole offer). A GPU is named by any alias
(H100, "RTX 4090"); an unknown one is a 400 with a message, a malformed parameter a 422.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import BeforeValidator

from analytics import queries
from gpubroker import daily, gpus, search
from gpubroker_web.responses import PRICING_TTL, STATIC_TTL, json_response
from offers.schemas import ERRORS, Error

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


def _day(value: object) -> object:
    return daily.parse_day(value) if isinstance(value, str) else value


Day = Annotated[date, BeforeValidator(_day)]  # YYYY-MM-DD only (pydantic would also read 1700000000)


class DailyQuery(Schema):
    date: Day | None = Field(None, description="the UTC day (YYYY-MM-DD); by default the latest report's")


class DailyGpuOut(Schema):
    gpu: str
    offers: int = Field(description="offers listed on the day")
    cheapest_price_per_gpu: float | None = Field(description="the lowest closing price per GPU (null: only anomalies)")
    cheapest_provider: str | None
    cheapest_offer_id: str | None
    median_price_per_gpu: float | None = Field(description="median of the closing prices per GPU")
    cheapest_change_1d: float | None = Field(description="percent against the day before (null: nothing listed then)")
    cheapest_change_7d: float | None = Field(description="percent against 7 days before")
    median_change_1d: float | None
    median_change_7d: float | None
    anomalies_zscore: int
    anomalies_drop: int


class DailyProviderOut(Schema):
    provider: str
    name: str
    offers: int = Field(description="offers listed on the day")
    observations: int | None = Field(description="offer observations of the day (null: no longer kept when the report was made)")
    observed_available: int | None = Field(description="observations available or limited")
    observed_unavailable: int | None = Field(description="observations unavailable (the rest stated no availability)")
    availability_percent: float | None = Field(description="observed_available / (observed_available + observed_unavailable) "
                                               "(null: no observation stated one)")
    health_checks: int
    healthy_checks: int
    degraded_checks: int
    down_checks: int
    healthy_percent: float | None = Field(description="healthy_checks / health_checks (null: none)")
    syncs: int = Field(description="gate runs whose batch landed or was quarantined")
    syncs_landed: int
    syncs_quarantined: int
    landed_percent: float | None = Field(description="syncs_landed / syncs (null: none)")
    anomalies: int


class AnomalyCounts(Schema):
    zscore: int
    drop: int


class DailyReport(Schema):
    date: date
    generated_at: datetime = Field(description="when the report was made (a day re-run is made again)")
    gpus: list[DailyGpuOut] = Field(description="per GPU model, by name")
    movers: list[DailyGpuOut] = Field(description="the GPU models whose median moved most over the day, largest first")
    providers: list[DailyProviderOut] = Field(description="every provider of the vendor table, by slug")
    anomalies: AnomalyCounts = Field(description="anomalies the stream flagged during the day, by reason")
    previous_date: date | None = Field(description="the day of the report before this one")
    next_date: date | None = Field(description="the day of the report after this one")


@router.get("/analytics/daily", response={200: DailyReport, 404: Error, **ERRORS}, summary="The daily report of a UTC day")
async def daily_report(request: HttpRequest, query: Query[DailyQuery]):
    """Prices per GPU model (cheapest, median, 1-day and 7-day change), the biggest movers, each
    provider's availability and reliability, and the anomalies seen, as the `gpubroker_analytics` DAG
    wrote them (definitions: `gpubroker.daily`). A day without a report is a 404 saying so."""
    report = await queries.daily_report(query.date)
    if report is None:
        raise HttpError(404, queries.no_report(query.date))
    return json_response(report, max_age=STATIC_TTL)
