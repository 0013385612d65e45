"""Provider health checks on real PostgreSQL and Redis (an isolated Redis database)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

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
    vastai = Breaker("vastai", isolated_redis).snapshot()  # its probe's request was timed: the average the weight reads
    assert len(vastai.recent_latencies) == 1 and vastai.avg_latency_ms == round(1000 * vastai.recent_latencies[0])
    assert len(lambda_breaker.recent_latencies) == 4  # its 503s are answers too (the breaker counts the failure)


# --- property: a round of health checks probes the providers at once --------------------------------
PROBED = ["vastai", "lambda", "runpod", "lium", "primeintellect", "tensordock", "hyperbolic", "datacrunch"]


@pytest.fixture
def replay_connections(replay, pg_url, monkeypatch):
    """Every vendor's Airflow connection pointing at the replay server; the syncs' database the test's."""
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    for line in exports(replay.base_url, "replay-key"):
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value.strip("'"))
    return replay


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delays=st.dictionaries(st.sampled_from(PROBED), st.sampled_from([0.15, 0.25, 0.35]), min_size=2, max_size=5))
def test_a_round_probes_every_provider_at_once_and_takes_the_slowest_not_the_sum(pg, isolated_redis, replay_connections,
                                                                                monkeypatch, delays):  # fmt: skip
    """**Feature: provider-api-gateway, Property 11: Parallel Provider Fetching** — for any providers and
    any time each takes to answer, `check_health` probes them all at once: each waits on its own vendor and
    every probe starts before the first one ends, so a round takes about the slowest probe, not the sum."""
    replay_connections.reset()
    for provider, seconds in delays.items():
        replay_connections.faults(provider, {"delay": seconds})
    spans, probe = {}, sync.probe

    def timed(provider: str) -> dict:  # the real probe, its start and end noted
        started = time.monotonic()
        try:
            return probe(provider)
        finally:
            spans[provider] = (started, time.monotonic())

    monkeypatch.setattr(sync, "probe", timed)
    statuses = sync.check_health(list(delays))["statuses"]
    assert set(statuses) == set(delays) and "down" not in statuses.values(), statuses
    assert all(end - start >= delays[p] for p, (start, end) in spans.items())  # each waited on its vendor
    # all at once: the last to start started before the first to end ended, so the round lasts the
    # slowest probe and the others' start-up, never two probes one after the other
    assert max(start for start, _ in spans.values()) < min(end for _, end in spans.values()), (spans, delays)
