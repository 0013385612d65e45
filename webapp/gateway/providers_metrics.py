"""Provider metrics, read at scrape time from the state the pipeline keeps (the seed's names).

circuit_breaker_state (the gateway contract's encoding: 0 closed, 1 open, 2 half-open),
circuit_breaker_{failures,successes,rejections}_total,
provider_request_latency_seconds (histogram of calls made through the breaker), provider_weight,
provider_health (1 healthy, 0.5 degraded, 0 down), gpubroker_data_age_seconds (since the last landing).

`/metrics` is not rate-limited, so what it reads (PostgreSQL and Redis) is read at most once every
`STATE_SECONDS` per worker, by one scrape for all that arrive meanwhile. While PostgreSQL is down
the last state read is exposed (ages keep growing), or none before the first: /metrics still answers,
and waits for PostgreSQL (at most the pool's 2 s) once every `STATE_SECONDS` at most.
"""

from __future__ import annotations

import asyncio
import time
import weakref

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from gpubroker import breaker
from gpubroker_web import db
from offers import providers

STATE_SECONDS = 5.0

STATE_VALUE = {"closed": 0, "open": 1, "half_open": 2}  # the contract's encoding
HEALTH_VALUE = {"healthy": 1.0, "degraded": 0.5, "down": 0.0}


class ProviderCollector:
    """A collector over values fetched just before the scrape (collect() itself does no I/O)."""

    def __init__(self, statuses: list[dict], snapshots: dict[str, breaker.Snapshot], now: float):
        self.statuses, self.snapshots, self.now = statuses, snapshots, now

    def collect(self):
        labels = ["provider"]
        state = GaugeMetricFamily("circuit_breaker_state", "0 closed, 1 open, 2 half-open", labels=labels)
        failures = CounterMetricFamily("circuit_breaker_failures", "Calls that failed", labels=labels)
        successes = CounterMetricFamily("circuit_breaker_successes", "Calls that succeeded", labels=labels)
        rejections = CounterMetricFamily("circuit_breaker_rejections", "Calls refused by an open breaker",
                                         labels=labels)  # fmt: skip
        latency = HistogramMetricFamily("provider_request_latency_seconds", "Provider call latency", labels=labels)
        weight = GaugeMetricFamily("provider_weight", "Routing weight 0..1", labels=labels)
        health = GaugeMetricFamily("provider_health", "1 healthy, 0.5 degraded, 0 down", labels=labels)
        age = GaugeMetricFamily("gpubroker_data_age_seconds", "Seconds since the provider's last landing",
                                labels=labels)  # fmt: skip
        for status in self.statuses:
            slug = status["slug"]
            snap = self.snapshots.get(slug) or breaker.Snapshot(provider=slug)
            state.add_metric([slug], STATE_VALUE[snap.state.value])
            failures.add_metric([slug], snap.failures_total)
            successes.add_metric([slug], snap.successes_total)
            rejections.add_metric([slug], snap.rejections_total)
            buckets = [(f"{le:g}", count) for le, count in snap.latency_buckets] + [("+Inf", snap.latency_count)]
            latency.add_metric([slug], buckets, snap.latency_sum)
            weight.add_metric([slug], snap.weight)
            if status["health"] in HEALTH_VALUE:
                health.add_metric([slug], HEALTH_VALUE[status["health"]])
            if status["last_good_sync"]:
                age.add_metric([slug], self.now - status["last_good_sync"].timestamp())
        yield from (state, failures, successes, rejections, latency, weight, health, age)


class _State:
    """The providers' state in this event loop (a worker's): one read at a time, a new one at most
    every STATE_SECONDS (whether the last succeeded or not), the last one PostgreSQL answered kept."""

    def __init__(self):
        self.read: tuple[list[dict], dict[str, breaker.Snapshot]] = ([], {})
        self.reading: asyncio.Task | None = None
        self.started = float("-inf")  # monotonic seconds

    async def current(self) -> tuple[list[dict], dict[str, breaker.Snapshot]]:
        if self.reading is None or (self.reading.done() and time.monotonic() - self.started >= STATE_SECONDS):
            self.started = time.monotonic()
            self.reading = asyncio.ensure_future(providers.statuses_and_breakers())
        try:
            self.read = await asyncio.shield(self.reading)
        except db.DatabaseUnavailable:
            pass  # PostgreSQL is down: the state as it stood when it last answered
        return self.read


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _State] = weakref.WeakKeyDictionary()


def forget() -> None:
    """Drop every loop's remembered state (tests: `runtime.reset`)."""
    _states.clear()


async def collector() -> ProviderCollector:
    loop = asyncio.get_running_loop()
    statuses, snapshots = await (_states.get(loop) or _states.setdefault(loop, _State())).current()
    return ProviderCollector(statuses, snapshots, time.time())
