"""Reads of the stream's results (tables `anomalies`, `gpu_price_aggregates`) and of the current offers,
as plain async SQL (gpubroker_web.db). Prices are USD per GPU per hour unless named per hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

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
