"""Reads of the stream's results (tables `anomalies`, `gpu_price_aggregates`), of the current offers and
of the daily report (`daily_gpu_prices`, `daily_provider_stats`: gpubroker.daily), as plain async SQL
(gpubroker_web.db). Prices are USD per GPU per hour unless named per hour.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any, Literal

from gpubroker import daily
from gpubroker.vendors import VENDORS
from gpubroker_web import db

ANOMALY_COLUMNS = ("event_id, provider, offer_id, gpu, gpu_form_factor, region, price_per_hour, price_per_gpu, mean,"
                   " stddev, z, reason, old_price, observed_at, detected_at")  # fmt: skip


async def anomalies(gpu: str | None, provider: str | None, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    """Newest first (by event time)."""
    return await db.fetch(
        f"SELECT {ANOMALY_COLUMNS} FROM anomalies"
        " WHERE (%(gpu)s::text IS NULL OR gpu = %(gpu)s) AND (%(provider)s::text IS NULL OR provider = %(provider)s)"
        " AND (%(since)s::timestamptz IS NULL OR observed_at >= %(since)s)"
        " ORDER BY observed_at DESC, event_id LIMIT %(limit)s",
        {"gpu": gpu, "provider": provider, "since": since, "limit": limit},
    )


# Per GPU model over the offers that are not unavailable (what the stream's statistics count too): the
# cheapest offer per GPU, the median price per GPU, and the cheapest price per GPU in the 1-minute
# windows of the hour before `then` (None without windows then).
_OVERVIEW = """
SELECT s.gpu, s.offers, s.median_price_per_gpu, c.provider, c.offer_id, c.region, c.price_per_hour, c.price_per_gpu,
       d.then_price_per_gpu
FROM (SELECT gpu_model AS gpu, count(*) AS offers,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY price_per_hour / gpu_count) AS median_price_per_gpu
      FROM offers WHERE availability <> 'unavailable' GROUP BY gpu_model) s
CROSS JOIN LATERAL (
      SELECT provider, offer_id, region, price_per_hour, round(price_per_hour / gpu_count, 4) AS price_per_gpu
      FROM offers o WHERE o.gpu_model = s.gpu AND o.availability <> 'unavailable'
      ORDER BY price_per_hour / gpu_count, provider, offer_id LIMIT 1) c
LEFT JOIN (SELECT gpu, min(min_price_per_gpu) AS then_price_per_gpu FROM gpu_price_aggregates
           WHERE dimension = 'provider' AND window_start >= %(then)s - interval '1 hour' AND window_start < %(then)s
           GROUP BY gpu) d USING (gpu)
ORDER BY s.gpu
"""


async def gpu_overview(now: datetime) -> list[dict[str, Any]]:
    rows = await db.fetch(_OVERVIEW, {"then": now - timedelta(hours=24)})
    return [
        {
            "gpu": r["gpu"],
            "offers": r["offers"],
            "cheapest": {k: r[k] for k in ("provider", "offer_id", "region", "price_per_hour", "price_per_gpu")},
            "median_price_per_gpu": round(r["median_price_per_gpu"], 4),
            "price_per_gpu_24h_ago": r["then_price_per_gpu"],
            "change_24h_percent": None if not r["then_price_per_gpu"] else
            round(float((r["price_per_gpu"] - r["then_price_per_gpu"]) / r["then_price_per_gpu"] * 100), 2),
        }
        for r in rows
    ]  # fmt: skip


# One row per window: across providers (each offer has one provider, so the sums hold), or per value.
_SERIES_ALL = """
SELECT window_start, window_end, min(min_price_per_gpu) AS min_price_per_gpu,
       round(sum(avg_price_per_gpu * offers) / sum(offers), 4) AS avg_price_per_gpu,
       max(max_price_per_gpu) AS max_price_per_gpu, sum(offers)::int AS offers, sum(available)::int AS available
FROM gpu_price_aggregates WHERE gpu = %(gpu)s AND dimension = 'provider' AND window_start >= %(since)s
GROUP BY window_start, window_end ORDER BY window_start
"""
_SERIES_BY = """
SELECT value AS {by}, window_start, window_end, min_price_per_gpu, avg_price_per_gpu, max_price_per_gpu, offers, available
FROM gpu_price_aggregates WHERE gpu = %(gpu)s AND dimension = '{by}' AND window_start >= %(since)s
ORDER BY window_start, value
"""


async def gpu_series(gpu: str, since: datetime, by: Literal["all", "provider", "continent"]) -> list[dict[str, Any]]:
    sql = _SERIES_ALL if by == "all" else _SERIES_BY.format(by=by)
    return await db.fetch(sql, {"gpu": gpu, "since": since})


# The daily report (tables written by gpubroker.daily; every report has a row per provider of the
# vendor table): the day asked for, or the latest, when it was made, and the days of the reports around it.
_DAILY_DAY = """
WITH chosen AS (SELECT coalesce(%(day)s::date, (SELECT max(day) FROM daily_provider_stats)) AS day)
SELECT c.day, (SELECT max(generated_at) FROM daily_provider_stats s WHERE s.day = c.day) AS generated_at,
       (SELECT max(day) FROM daily_provider_stats s WHERE s.day < c.day) AS previous_date,
       (SELECT min(day) FROM daily_provider_stats s WHERE s.day > c.day) AS next_date
FROM chosen c
"""
_DAILY_GPUS = """
SELECT gpu, offers, cheapest_price_per_gpu, cheapest_provider, cheapest_offer_id, median_price_per_gpu, cheapest_change_1d,
       cheapest_change_7d, median_change_1d, median_change_7d, anomalies_zscore, anomalies_drop
FROM daily_gpu_prices WHERE day = %(day)s ORDER BY gpu
"""
_DAILY_PROVIDERS = """
SELECT provider, offers, observations, observed_available, observed_unavailable, availability_percent, health_checks,
       healthy_checks, degraded_checks, down_checks, healthy_percent, syncs, syncs_landed, syncs_quarantined,
       landed_percent, anomalies
FROM daily_provider_stats WHERE day = %(day)s ORDER BY provider
"""


async def daily_report(day: date | None) -> dict[str, Any] | None:
    """The report of `day` (the latest when None), or None when there is none."""
    found = (await db.fetch(_DAILY_DAY, {"day": day}))[0]
    if found["generated_at"] is None:
        return None
    gpus, providers = await asyncio.gather(db.fetch(_DAILY_GPUS, found), db.fetch(_DAILY_PROVIDERS, found))
    for row in providers:
        row["name"] = VENDORS[row["provider"]].name if row["provider"] in VENDORS else row["provider"]
    return {
        "date": found["day"], "generated_at": found["generated_at"], "gpus": gpus, "movers": daily.movers(gpus),
        "providers": providers, "anomalies": {"zscore": sum(g["anomalies_zscore"] for g in gpus),
                                              "drop": sum(g["anomalies_drop"] for g in gpus)},
        "previous_date": found["previous_date"], "next_date": found["next_date"],
    }  # fmt: skip


def no_report(day: date | None) -> str:
    """Why there is no report to show, and what makes one."""
    if day is None:
        return "no daily report yet: the gpubroker_analytics DAG writes one each day, shortly after 00:00 UTC"
    return (f"no daily report for {day}: the gpubroker_analytics DAG writes one per day "
            f'(trigger it with {{"date": "{day}"}} for this one)')
