"""Provider health checks on real PostgreSQL and Redis (an isolated Redis database)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from gpubroker import health, settings
from gpubroker.breaker import Breaker
from gpubroker_provider import sync
from gpubroker_provider.replay.connections import exports

T0 = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


def probe(provider, ok=True, latency=0.2, weight=1.0):
    return {"provider": provider, "ok": ok, "latency": latency, "weight": weight, "error": None if ok else "ConnectError"}


@pytest.mark.parametrize(
    ("ok", "latency", "weight", "status"),
    [(True, 0.3, 1.0, "healthy"), (True, 2.5, 1.0, "degraded"), (True, 0.3, 0.8, "degraded"), (False, 0.1, 1.0, "down")],
)
def test_classify(ok, latency, weight, status):
    assert health.classify(ok, latency, weight) == status


def events(pg):
    return [p for (p,) in pg.execute("SELECT payload FROM event_outbox WHERE topic = %s ORDER BY id", (settings.Topics.PROVIDER_EVENTS,))]


def test_only_a_change_of_status_is_announced(pg, isolated_redis):
    assert health.record(pg, [probe("vastai"), probe("lambda")], T0, isolated_redis) == ["vastai", "lambda"]
    assert health.record(pg, [probe("vastai"), probe("lambda")], T0 + timedelta(minutes=1), isolated_redis) == []
    assert health.record(pg, [probe("vastai", ok=False), probe("lambda")], T0 + timedelta(minutes=2), isolated_redis) == ["vastai"]

    announced = [(e["provider"], e["status"], e["details"]["previous"]) for e in events(pg)]
    assert announced == [("vastai", "healthy", None), ("lambda", "healthy", None), ("vastai", "down", "healthy")]
    assert pg.execute("SELECT count(*) FROM provider_health").fetchone()[0] == 6  # every probe kept
    current = json.loads(isolated_redis.hget(health.CURRENT, "vastai"))
    assert (current["status"], current["error"]) == ("down", "ConnectError")


def test_check_health_probes_over_http_and_feeds_the_breaker(pg_url, pg, isolated_redis, replay, monkeypatch):
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    for line in exports(replay.base_url, "replay-key"):
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, json.loads(json.dumps(value.strip("'"))))
    replay.faults("lambda", *[{"status": 503}] * 4)  # lambda answers 503 to every retry
    result = sync.check_health(["vastai", "lambda", "coreweave"])
    statuses = result["statuses"]
    assert statuses["lambda"] == "down" and statuses["vastai"] != "down" and statuses["coreweave"] != "down"
    assert sorted(result["changed"]) == ["coreweave", "lambda", "vastai"]
    lambda_breaker = Breaker("lambda", isolated_redis).snapshot()
    assert (lambda_breaker.failures_total, lambda_breaker.successes_total) == (1, 0)  # the failed probe was recorded
