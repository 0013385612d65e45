"""Provider status: the vendor table joined with what the pipeline keeps about each provider.

Sources: health checks and circuit breakers in Redis (`gpubroker.health`, `gpubroker.breaker`),
landings and quarantines in PostgreSQL. Redis unreachable: health and breaker show as unknown
(null / "closed") rather than failing the answer.
"""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import redis
from redis.exceptions import RedisError

from gpubroker import breaker, health, settings
from gpubroker.vendors import VENDORS
from gpubroker_web import db

LIST_MAX_AGE = timedelta(days=30)  # a price list older than this is flagged stale
LIST_PREFIX = "price list of"  # how a list's date is shown: "price list of 2026-11-01"
_STATUS_SQL = """
SELECT v.provider, s.last_good_at, COALESCE(s.stale, false) AS stale, s.stale_reason,
       COALESCE(c.offers, 0) AS offer_count, c.observed_at, q.reason AS quarantine_reason, q.created_at AS quarantine_at
FROM unnest(%(providers)s::text[]) AS v(provider)
LEFT JOIN provider_status s USING (provider)
LEFT JOIN (SELECT provider, count(*) FILTER (WHERE availability <> 'unavailable') AS offers, max(observed_at) AS observed_at
           FROM offers GROUP BY provider) c USING (provider)
LEFT JOIN LATERAL (SELECT reason, created_at FROM quarantine WHERE quarantine.provider = v.provider
                   ORDER BY created_at DESC LIMIT 1) q ON true
ORDER BY v.provider
"""

@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _redis_state() -> tuple[dict[str, dict], dict[str, breaker.Snapshot]]:
    """Health-check results and breaker snapshots; empty when Redis does not answer."""
    client = _redis(settings.REDIS_URL)
    try:
        checks = {k.decode(): json.loads(v) for k, v in client.hgetall(health.CURRENT).items()}
        return checks, breaker.snapshot_all(client)
    except (RedisError, OSError):
        return {}, {}


def _vault() -> dict | None:
    try:
        raw = _redis(settings.REDIS_URL).get(health.VAULT)
    except (RedisError, OSError):
        return None
    return json.loads(raw) if raw else None


async def vault() -> dict | None:
    """The last Vault health check (`gpubroker_health_checks`), or None (never checked, Redis down)."""
    return await asyncio.to_thread(_vault)


async def statuses() -> list[dict[str, Any]]:
    """One dict per provider of the vendor table, in slug order (see `schemas.ProviderOut`; and `healthy`:
    in rotation, its breaker not open and its last 3 calls not all failed)."""
    return (await statuses_and_breakers())[0]


async def statuses_and_breakers(landings: bool = True) -> tuple[list[dict[str, Any]], dict[str, breaker.Snapshot]]:
    """`statuses`, and the breakers they were read from; `landings=False`: Redis's state alone (what
    PostgreSQL holds — landings, offer counts, quarantines — left empty, e.g. while it is away)."""
    rows, (checks, breakers) = await asyncio.gather(
        db.fetch(_STATUS_SQL, {"providers": sorted(VENDORS)}) if landings else _nothing_landed(),
        asyncio.to_thread(_redis_state),
    )
    now, out = datetime.now(timezone.utc), []
    for row in rows:
        slug, vendor = row["provider"], VENDORS[row["provider"]]
        check = checks.get(slug, {})
        snapshot = breakers.get(slug)
        as_of = row["observed_at"].date() if vendor.source == "list" and row["observed_at"] else None
        stale, stale_reason = _staleness(row, as_of, now)
        out.append({
            "slug": slug, "name": vendor.name, "source": vendor.source, "source_url": vendor.source_url,
            "as_of": as_of, "cadence_seconds": vendor.cadence, "next_sync_at": vendor.next_sync_after(now),
            "health": check.get("status"), "latency_ms": check.get("latency_ms"),
            "checked_at": datetime.fromisoformat(check["checked_at"]) if "checked_at" in check else None,
            "healthy": snapshot.healthy if snapshot else check.get("status") != "down",  # no breaker yet: in rotation
            "breaker_state": snapshot.state.value if snapshot else breaker.State.CLOSED.value,
            "weight": snapshot.weight if snapshot else 1.0,
            "avg_latency_ms": snapshot.avg_latency_ms if snapshot else None,
            "last_good_sync": row["last_good_at"], "offer_count": row["offer_count"], "stale": stale,
            "stale_reason": stale_reason,
            "last_quarantine_reason": row["quarantine_reason"], "last_quarantine_at": row["quarantine_at"],
        })  # fmt: skip
    return out, breakers


async def _nothing_landed() -> list[dict[str, Any]]:
    empty = {"last_good_at": None, "stale": False, "stale_reason": None, "offer_count": 0, "observed_at": None,
             "quarantine_reason": None, "quarantine_at": None}  # fmt: skip
    return [{"provider": slug, **empty} for slug in sorted(VENDORS)]


def _staleness(row: dict[str, Any], as_of: date | None, now: datetime) -> tuple[bool, str | None]:
    """Stale: its latest batch was quarantined (older data served), or its price list is past LIST_MAX_AGE."""
    if row["stale"]:
        return True, row["stale_reason"] or None
    if reason := list_too_old(as_of, now):
        return True, reason
    return False, None


def list_too_old(as_of: date | None, now: datetime) -> str | None:
    """Why a price list published on `as_of` is stale (older than LIST_MAX_AGE), or None."""
    if as_of is not None and now.date() - as_of > LIST_MAX_AGE:
        return f"{LIST_PREFIX} {as_of:%Y-%m-%d} is more than {LIST_MAX_AGE.days} days old"
    return None


def warnings(providers: list[dict[str, Any]], only: list[str] | None = None) -> list[str]:
    """What an answer must admit about its providers (stale data, failing health, open breaker)."""
    said = []
    for p in providers:
        if only is not None and p["slug"] not in only:
            continue
        if p["stale"] and p["as_of"] is not None and p["stale_reason"].startswith(LIST_PREFIX):
            said.append(f"{p['slug']}: {p['stale_reason']}")
        elif p["stale"]:
            since = f", serving data last good at {p['last_good_sync']:%Y-%m-%d %H:%M} UTC" if p["last_good_sync"] else ""
            said.append(f"{p['slug']}: latest batch quarantined{since} ({(p['stale_reason'] or '')[:160]})")
        if p["health"] in ("down", "degraded"):
            said.append(f"{p['slug']}: health check says {p['health']}")
        if p["breaker_state"] == breaker.State.OPEN.value:
            said.append(f"{p['slug']}: circuit breaker open, its data is not being refreshed")
    return said
