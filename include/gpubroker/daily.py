"""The daily analytics report: one UTC day's prices per GPU model, biggest movers, each provider's
availability and reliability, and the anomalies seen. Written by the `gpubroker_analytics` DAG (shortly
after each day ends) into two tables owned by the webapp's migrations (webapp/analytics/models.py); the
webapp reads them (`GET /api/v1/analytics/daily?date=`, the page `/analytics/daily`).

`build(conn, day)` replaces the day's rows in one transaction, so re-running a day (a retry, a manual
run with `{"date": "YYYY-MM-DD"}`) leaves exactly one report of it. Prices are USD per GPU per hour
(`price_per_hour / gpu_count`, rounded to 4 decimals as everywhere); percentages have 2 decimals.

**Prices** (`daily_gpu_prices`, one row per GPU model): over the offers *listed on the day* — first
seen before the day ended, and still listed (availability other than `unavailable`) or last seen on or
after the day began — each at its *closing price*: its latest `price_history` row before the day's
end. Every pricing type counts (on-demand, spot, reserved), as in `GET /api/v1/gpus`, and a listed
price counts whether or not the vendor had capacity at the time. `cheapest` is the lowest closing
price per GPU (ties: provider, offer id), `median` the median of them. The 1-day and 7-day changes
compare the day's figures with those of the day before and of 7 days before, computed the same way
from the history (not from earlier reports): `(now - then) / then * 100`, null when nothing was listed
then. A GPU model with anomalies but no offer listed has a row too (no prices).

**Biggest movers** (`movers`): the `MOVERS` GPU models whose median changed most over the day (by the
size of the 1-day change; unchanged ones are no movers).

**Availability** of a provider (`daily_provider_stats.availability_percent`): of its *offer observations*
of the day that state an availability, the share `available` or `limited` (the others: `unavailable`).
An observation is one offer of one landed batch (every `offer_observed` event the landing queued,
observed during the day), plus the one event of an offer that vanished from its listing
(`unavailable`). Observations whose availability the vendor does not state (`unknown`: price lists,
most clouds) are counted (`observations`) but take no part in the share, which is null when none
states one. They are read from the event outbox, which keeps events `settings.OUTBOX_RETENTION_DAYS`
after Kafka acknowledged them: a day that began longer ago than that may have lost some, and its
observation figures are left empty (null). `offers`: the provider's offers listed on the day (as for
prices).

**Reliability** of a provider: `healthy_percent`, the share of its health checks of the day
(`provider_health`, one a minute) that found it `healthy` (not `degraded`: slow or failing calls, nor
`down`); and `landed_percent`, the share of its syncs of the day (gate runs in `gate_reports`:
outcome `landed` or `quarantined`; an operator's approval is not a sync) whose batch landed. A sync that
failed before the gate (vendor down, timeout) leaves no gate report: it shows in the health checks.

**Anomalies**: those the stream flagged (`anomalies`, observed during the day), counted per GPU model
(`zscore`, `drop`) and per provider.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import psycopg

from gpubroker import settings
from gpubroker.vendors import VENDORS

__all__ = ["MOVERS", "NotADay", "Written", "build", "day_before", "movers", "parse_day"]

MOVERS = 5
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only (\d would take any script's)
_ONE_AT_A_TIME = 7_210_817  # advisory lock key: two builds of one day never interleave


class NotADay(ValueError):
    """Text that is not a calendar day written YYYY-MM-DD."""


def parse_day(text: str) -> date:
    """A day written `YYYY-MM-DD` (ISO 8601's calendar date, nothing else); NotADay names what to give."""
    if not _DAY.fullmatch(text):
        raise NotADay(f"give a day as YYYY-MM-DD, e.g. 2026-12-01 (got {text[:40]!r})")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise NotADay(f"{text} is not a day of the calendar") from None


def day_before(moment: datetime) -> date:
    """The UTC day before `moment`'s: the day a daily run at `moment` reports on."""
    return (moment.astimezone(timezone.utc) - timedelta(days=1)).date()


def movers(gpus: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The biggest movers of a day's GPU rows: the `MOVERS` with the largest |median_change_1d|, not
    zero nor null, largest first (ties by GPU name)."""
    moved = [g for g in gpus if g["median_change_1d"]]
    return sorted(moved, key=lambda g: (-abs(g["median_change_1d"]), g["gpu"]))[:MOVERS]


def _percent(part: str, whole: str) -> str:
    return f"round(100.0 * {part} / NULLIF({whole}, 0), 2)"


def _change(now: str, then: str) -> str:
    return f"round(({now} - {then}) * 100 / NULLIF({then}, 0), 2)"


# The offers listed on the day ending at each close (the day itself, the day before, 7 days before),
# each at its closing price per GPU; then per close and GPU model: offers, cheapest, median.
_GPU_PRICES = f"""
WITH closes(ago, close) AS (VALUES (0, %(end)s::timestamptz), (1, %(end)s - interval '1 day'),
                                   (7, %(end)s - interval '7 days')),
listed AS (
    SELECT c.ago, o.gpu_model AS gpu, o.provider, o.offer_id, round(h.price_per_hour / o.gpu_count, 4) AS price_per_gpu
    FROM closes c
    JOIN offers o ON o.first_seen < c.close AND (o.availability <> 'unavailable' OR o.last_seen >= c.close - interval '1 day')
    CROSS JOIN LATERAL (SELECT p.price_per_hour FROM price_history p
                        WHERE p.provider = o.provider AND p.offer_id = o.offer_id AND p.observed_at < c.close
                        ORDER BY p.observed_at DESC LIMIT 1) h
), stats AS (
    SELECT ago, gpu, count(*) AS offers, min(price_per_gpu) AS cheapest,
           -- the middle value, or the mean of the middle two, in exact numeric (percentile_cont is float8)
           round((percentile_disc(0.5) WITHIN GROUP (ORDER BY price_per_gpu)
                  + percentile_disc(0.5) WITHIN GROUP (ORDER BY price_per_gpu DESC)) / 2, 4) AS median
    FROM listed GROUP BY ago, gpu
), cheapest AS (
    SELECT DISTINCT ON (gpu) gpu, provider, offer_id FROM listed WHERE ago = 0 ORDER BY gpu, price_per_gpu, provider, offer_id
), seen AS (
    SELECT gpu, count(*) FILTER (WHERE reason = 'zscore') AS zscore, count(*) FILTER (WHERE reason = 'drop') AS drops
    FROM anomalies WHERE observed_at >= %(start)s AND observed_at < %(end)s GROUP BY gpu
), today AS (
    SELECT s.*, c.provider, c.offer_id FROM stats s JOIN cheapest c USING (gpu) WHERE s.ago = 0
)
INSERT INTO daily_gpu_prices (day, gpu, offers, cheapest_price_per_gpu, cheapest_provider, cheapest_offer_id,
    median_price_per_gpu, cheapest_change_1d, cheapest_change_7d, median_change_1d, median_change_7d,
    anomalies_zscore, anomalies_drop, generated_at)
SELECT %(day)s, coalesce(t.gpu, a.gpu), coalesce(t.offers, 0), t.cheapest, t.provider, t.offer_id, t.median,
       {_change("t.cheapest", "d1.cheapest")}, {_change("t.cheapest", "d7.cheapest")},
       {_change("t.median", "d1.median")}, {_change("t.median", "d7.median")},
       coalesce(a.zscore, 0), coalesce(a.drops, 0), now()
FROM today t
LEFT JOIN stats d1 ON d1.gpu = t.gpu AND d1.ago = 1
LEFT JOIN stats d7 ON d7.gpu = t.gpu AND d7.ago = 7
FULL JOIN seen a ON a.gpu = t.gpu
"""

# Per provider of the vendor table. Observations: `offer_observed` events of the day, found through
# the outbox's index on published_at (an event is published after it is observed; pending ones have
# none); counted only when the outbox still holds the whole day (%(observations_kept)s).
_PROVIDER_STATS = f"""
WITH providers(provider) AS (SELECT unnest(%(providers)s::text[])),
listed AS (
    SELECT provider, count(*) AS offers FROM offers
    WHERE first_seen < %(end)s AND (availability <> 'unavailable' OR last_seen >= %(start)s) GROUP BY provider
), observed AS (
    SELECT payload->>'provider' AS provider, count(*) AS observations,
           count(*) FILTER (WHERE payload->>'availability' IN ('available', 'limited')) AS available,
           count(*) FILTER (WHERE payload->>'availability' = 'unavailable') AS unavailable
    FROM event_outbox
    WHERE (published_at >= %(start)s OR published_at IS NULL) AND topic = %(topic)s
      AND payload->>'type' = 'offer_observed'
      AND (payload->>'observed_at')::timestamptz >= %(start)s AND (payload->>'observed_at')::timestamptz < %(end)s
    GROUP BY 1
), checks AS (
    SELECT provider, count(*) AS checks, count(*) FILTER (WHERE status = 'healthy') AS healthy,
           count(*) FILTER (WHERE status = 'degraded') AS degraded, count(*) FILTER (WHERE status = 'down') AS down
    FROM provider_health WHERE checked_at >= %(start)s AND checked_at < %(end)s GROUP BY provider
), syncs AS (
    SELECT provider, count(*) AS syncs, count(*) FILTER (WHERE outcome = 'landed') AS landed,
           count(*) FILTER (WHERE outcome = 'quarantined') AS quarantined
    FROM gate_reports WHERE run_at >= %(start)s AND run_at < %(end)s AND outcome IN ('landed', 'quarantined')
    GROUP BY provider
), seen AS (
    SELECT provider, count(*) AS anomalies FROM anomalies WHERE observed_at >= %(start)s AND observed_at < %(end)s
    GROUP BY provider
), counted AS (
    SELECT p.provider, coalesce(l.offers, 0) AS offers,
           CASE WHEN %(observations_kept)s THEN coalesce(o.observations, 0) END AS observations,
           CASE WHEN %(observations_kept)s THEN coalesce(o.available, 0) END AS available,
           CASE WHEN %(observations_kept)s THEN coalesce(o.unavailable, 0) END AS unavailable,
           coalesce(c.checks, 0) AS checks, coalesce(c.healthy, 0) AS healthy, coalesce(c.degraded, 0) AS degraded,
           coalesce(c.down, 0) AS down, coalesce(s.syncs, 0) AS syncs, coalesce(s.landed, 0) AS landed,
           coalesce(s.quarantined, 0) AS quarantined, coalesce(a.anomalies, 0) AS anomalies
    FROM providers p LEFT JOIN listed l USING (provider) LEFT JOIN observed o USING (provider)
    LEFT JOIN checks c USING (provider) LEFT JOIN syncs s USING (provider) LEFT JOIN seen a USING (provider)
)
INSERT INTO daily_provider_stats (day, provider, offers, observations, observed_available, observed_unavailable,
    availability_percent, health_checks, healthy_checks, degraded_checks, down_checks, healthy_percent, syncs,
    syncs_landed, syncs_quarantined, landed_percent, anomalies, generated_at)
SELECT %(day)s, provider, offers, observations, available, unavailable, {_percent("available", "available + unavailable")},
       checks, healthy, degraded, down, {_percent("healthy", "checks")}, syncs, landed, quarantined,
       {_percent("landed", "syncs")}, anomalies, now()
FROM counted
"""


@dataclass(frozen=True)
class Written:
    day: date
    gpus: int  # rows of daily_gpu_prices
    providers: int  # rows of daily_provider_stats
    observations_kept: bool  # false: the day is older than the outbox keeps, availability left empty

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "gpus": self.gpus, "providers": self.providers,
                "observations_kept": self.observations_kept}  # fmt: skip


def build(conn: psycopg.Connection, day: date, now: datetime | None = None) -> Written:
    """Write `day`'s report, replacing any earlier one of it, in one transaction. `now`: when the
    report is made (what the outbox still holds depends on it)."""
    start = datetime.combine(day, time(), timezone.utc)
    now = now or datetime.now(timezone.utc)
    if start > now:
        raise NotADay(f"{day} has not begun yet (UTC): a report covers a day that has begun, usually one that has ended")
    kept = start >= now - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    params = {"day": day, "start": start, "end": start + timedelta(days=1), "providers": sorted(VENDORS),
              "topic": settings.Topics.PRICE_UPDATES, "observations_kept": kept}  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", (_ONE_AT_A_TIME, day.toordinal()))
        cur.execute("DELETE FROM daily_gpu_prices WHERE day = %s", (day,))
        cur.execute("DELETE FROM daily_provider_stats WHERE day = %s", (day,))
        gpus = cur.execute(_GPU_PRICES, params).rowcount
        providers = cur.execute(_PROVIDER_STATS, params).rowcount
    return Written(day, gpus, providers, kept)
