"""Provider health: classify a probe, keep the current status in Redis and the history in PostgreSQL,
and announce a `health_update` on `gpubroker.provider-events` only when a provider's status changes.
Every probe and every sync's fetch also leaves a `provider_call` on `gpubroker.provider-calls` (through
the outbox), the input of the stream's health scores (flink/health_scores.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg
import redis

from gpubroker import settings, store
from gpubroker.breaker import SLOW_SECONDS
from gpubroker.schema import ProviderCall, ProviderEvent

CURRENT = "gpubroker:health"  # Redis hash: provider -> JSON {status, latency_ms, weight, checked_at, error}
# Redis string: JSON {status, latency_ms, checked_at, error} of the Vault the syncs read vendor keys from;
# status ok, standby, sealed, not_initialized, down or not_configured (gpubroker_provider.hooks.vault.vault_health)
VAULT = "gpubroker:vault"


def classify(ok: bool, latency: float, weight: float) -> str:
    if not ok:
        return "down"
    return "degraded" if latency > SLOW_SECONDS or weight < 1.0 else "healthy"


def record(conn: psycopg.Connection, probes: Sequence[dict], at: datetime, client: redis.Redis | None = None) -> list[str]:
    """Store one round of probes; returns the providers whose status changed (and were announced)."""
    client = client or redis.Redis.from_url(settings.REDIS_URL)
    previous = {k.decode(): json.loads(v)["status"] for k, v in client.hgetall(CURRENT).items()}
    current = {p["provider"]: classify(p["ok"], p["latency"], p["weight"]) for p in probes}
    changed = [p for p in probes if previous.get(p["provider"]) != current[p["provider"]]]
    events = [
        ProviderEvent(type="health_update", provider=p["provider"], status=current[p["provider"]],
                      reason=p["error"] or "", timestamp=at,
                      details={"previous": previous.get(p["provider"]), "latency_ms": round(p["latency"] * 1000),
                               "weight": p["weight"]})  # fmt: skip
        for p in changed
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO provider_health (provider, checked_at, status, latency_ms, weight, error)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [(p["provider"], at, current[p["provider"]], round(p["latency"] * 1000), p["weight"], p["error"] or "")
             for p in probes],  # fmt: skip
        )
        store.queue_events(cur, settings.Topics.PROVIDER_EVENTS, events)
        store.queue_events(cur, settings.Topics.PROVIDER_CALLS,
                           [ProviderCall.of(p["provider"], "probe", p["ok"], p["latency"], at) for p in probes])  # fmt: skip
    client.hset(CURRENT, mapping={
        p["provider"]: json.dumps({"status": current[p["provider"]], "latency_ms": round(p["latency"] * 1000),
                                   "weight": p["weight"], "checked_at": at.isoformat(), "error": p["error"]})
        for p in probes
    })  # fmt: skip
    return [p["provider"] for p in changed]


@contextmanager
def sync_call(provider: str) -> Iterator[None]:
    """Time a sync's fetch from the provider and queue its outcome (`provider_call`, kind "sync"):
    ok when the block ends normally; an exception is recorded as a failure and raised on."""
    started, ok = time.monotonic(), False
    try:
        yield
        ok = True
    finally:
        call = ProviderCall.of(provider, "sync", ok, time.monotonic() - started, datetime.now(timezone.utc))
        with store.connect() as conn, conn.transaction(), conn.cursor() as cur:
            store.queue_events(cur, settings.Topics.PROVIDER_CALLS, [call])


def record_vault(status: dict, client: redis.Redis | None = None) -> None:
    """Keep the latest Vault health check (the webapp's provider status shows it)."""
    (client or redis.Redis.from_url(settings.REDIS_URL)).set(VAULT, json.dumps(status))
