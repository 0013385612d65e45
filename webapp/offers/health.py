"""`GET /api/v1/health`: the gateway's health, the contract's shape, over the whole pipeline.

Each service is probed at most every PROBE_SECONDS per worker (one probe at a time: askers in between
share the last answer) and never waited on longer than PROBE_TIMEOUT, so the route is cheap and never
hangs when a service is down:
- `redis_connected`: a PING; `kafka_connected`: the cluster's metadata (as this worker's principal);
- `flink_jobs_running`: the session cluster's RUNNING jobs (its REST API); `airflow_healthy`: every
  component Airflow's own `/api/v2/monitor/health` reports is healthy;
- `websocket_connections`: open sockets over every webapp worker (the Prometheus gauge they share);
- `providers`: each vendor's health check, breaker (state, failure and success counts), weight and
  average latency (`offers.providers`), and its latest Flink health score (`provider_health_scores`);
- `vault`: the last Vault health check.
`status`: `healthy` when every service answers and at least one provider is healthy; `unhealthy`
when PostgreSQL or Redis (what every answer needs) is away or no provider is healthy; else `degraded`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka.admin import AdminClient
from redis.exceptions import RedisError

from gpubroker import settings
from gpubroker_web import db
from offers import providers

PROBE_SECONDS = 5.0
PROBE_TIMEOUT = 0.5
_SCORES_SQL = "SELECT provider, score, window_end FROM provider_health_scores"
_last: tuple[float, dict[str, Any]] | None = None
_probing = asyncio.Lock()


async def report() -> dict[str, Any]:
    """The health answer, at most PROBE_SECONDS old."""
    global _last
    async with _probing:
        if _last is None or time.monotonic() - _last[0] > PROBE_SECONDS:
            _last = (time.monotonic(), await _probe())
        return _last[1]


async def _probe() -> dict[str, Any]:
    services = dict(zip(
        ("redis_connected", "kafka_connected", "flink_jobs_running", "airflow_healthy", "websocket_connections"),
        await asyncio.gather(_bounded(_redis), _bounded(_kafka), _flink_jobs(), _airflow(), _bounded(_websockets)),
    ))  # fmt: skip
    rows, postgres = await _providers()
    vault = await providers.vault()
    healthy = [p for p in rows if p["healthy"]]
    if not (postgres and services["redis_connected"] and healthy):
        status = "unhealthy"
    elif services["kafka_connected"] and services["flink_jobs_running"] and services["airflow_healthy"]:
        status = "healthy"
    else:
        status = "degraded"
    return {"status": status, "timestamp": datetime.now(timezone.utc), "postgres_connected": postgres,
            **services, "providers": rows, "vault": vault}  # fmt: skip


async def _bounded(probe) -> Any:
    """A blocking probe in a thread, its answer or False/0 when it fails or takes too long."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(probe), PROBE_TIMEOUT * 2)
    except Exception:  # a probe's failure is the service's health, reported not raised
        return False


def _redis() -> bool:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _kafka() -> bool:
    admin = AdminClient(settings.kafka_config() | {"socket.timeout.ms": int(PROBE_TIMEOUT * 1000)})
    return bool(admin.list_topics(timeout=PROBE_TIMEOUT).brokers)


def _websockets() -> int:
    from gateway import metrics

    return metrics.websocket_connections()


async def _flink_jobs() -> int:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as http:
            jobs = (await http.get(f"{settings.FLINK_REST_URL}/jobs/overview")).json()["jobs"]
    except (httpx.HTTPError, ValueError, KeyError):
        return 0
    return sum(job["state"] == "RUNNING" for job in jobs)


async def _airflow() -> bool:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as http:
            components = (await http.get(f"{settings.AIRFLOW_API_URL}/api/v2/monitor/health")).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(components) and all(c.get("status") == "healthy" for c in components.values() if isinstance(c, dict))


async def _providers() -> tuple[list[dict[str, Any]], bool]:
    """Each provider's health row, and whether PostgreSQL answered (without it, Redis's state alone)."""
    try:
        statuses, breakers = await providers.statuses_and_breakers()
        scores = {r["provider"]: r for r in await db.fetch(_SCORES_SQL, {})}
        postgres = True
    except (db.DatabaseUnavailable, psycopg.Error):
        (statuses, breakers), scores, postgres = await providers.statuses_and_breakers(landings=False), {}, False
    return [_provider(p, breakers.get(p["slug"]), scores.get(p["slug"])) for p in statuses], postgres


def _provider(status: dict[str, Any], snapshot, score: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "provider": status["slug"],
        "healthy": status["healthy"],
        "weight": status["weight"], "avg_latency_ms": status["avg_latency_ms"], "last_check": status["checked_at"],
        "circuit_state": status["breaker_state"],
        "failure_count": snapshot.failures_total if snapshot else 0,
        "success_count": snapshot.successes_total if snapshot else 0,
        "score": float(score["score"]) if score else None,
    }  # fmt: skip
