"""Prometheus metrics at `/metrics`: the API's own, and the providers' state kept by the pipeline.

Several uvicorn workers share one exposition through prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set and emptied by the local stack before the workers start). There each
increment takes a lock and writes a memory-mapped file (~3 us; four per request), so requests are
tallied in plain dictionaries and written at most a second later, and before every scrape. Provider
metrics are read at scrape time from where the pipeline keeps them (breakers and health in Redis,
landings in PostgreSQL), so they are the same whichever worker answers.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections import Counter as Tally
from functools import lru_cache

from django.urls import Resolver404, resolve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter("gpubroker_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY = Histogram("gpubroker_http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
                    buckets=LATENCY_BUCKETS)  # fmt: skip
CACHE = Counter("gpubroker_cache_lookups_total", "Response cache lookups by tier", ["tier", "result"])
RATE_LIMITED = Counter("gpubroker_rate_limited_requests_total", "Requests refused with 429, by plan", ["plan"])
WEBSOCKETS = Gauge("gpubroker_websocket_connections", "Open WebSocket connections",
                   multiprocess_mode="livesum")  # fmt: skip
SSE_STREAMS = Gauge("gpubroker_sse_streams", "Open server-sent event streams", multiprocess_mode="livesum")

_GATEWAY_ROUTES = {"/healthz", "/readyz", "/metrics"}
FLUSH_SECONDS = 1.0  # tallies reach the metric files at most this late (and at every scrape)


@lru_cache(maxsize=2048)
def route_of(path: str) -> str:
    """A bounded label for a path: its URL pattern (`api/v1/offers/{provider}/...`), never the raw path."""
    if path in _GATEWAY_ROUTES:
        return path
    try:
        match = resolve(path)
    except Resolver404:
        return "unmatched"
    return "/" + (match.route or "").replace("<", "{").replace(">", "}")


@lru_cache(maxsize=4096)
def _child(metric, *labels: str):
    """A metric's child for these label values, kept: `labels()` costs a lock and validation per call."""
    return metric.labels(*labels)


class _Tallies:
    """This worker's requests since the last flush: counts, latency sums and bucket counts."""

    def __init__(self):
        self.requests: Tally[tuple[str, str, int]] = Tally()
        self.seconds: dict[str, list] = {}  # path -> [sum, count per bucket (the last: +Inf)]
        self.lookups: Tally[tuple[str, str]] = Tally()
        self.flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on


_tallies = _Tallies()


def observe_request(path: str, method: str, status: int, seconds: float) -> None:
    tallies = _tallies
    tallies.requests[path, method, status] += 1
    latency = tallies.seconds.get(path) or tallies.seconds.setdefault(path, [0.0, [0] * (len(LATENCY_BUCKETS) + 1)])
    latency[0] += seconds
    latency[1][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bucket whose bound is >= seconds
    _flush_soon(tallies)


def cache_lookup(tier: str) -> None:
    """One cached-endpoint request answered from `tier` (l2, l1 or origin): a hit there, misses above."""
    tallies = _tallies
    _flush_soon(tallies)
    for level in ("l2", "l1"):
        if level == tier:
            tallies.lookups[level, "hit"] += 1
            return
        tallies.lookups[level, "miss"] += 1


def _flush_soon(tallies: _Tallies) -> None:
    loop = asyncio.get_running_loop()
    if tallies.flush_on is not loop:
        tallies.flush_on = loop
        loop.call_later(FLUSH_SECONDS, flush)


def flush() -> None:
    """Write the tallies to the metrics (their files, in multiprocess mode) and start new ones."""
    global _tallies
    tallies, _tallies = _tallies, _Tallies()
    for (path, method, status), n in tallies.requests.items():
        _child(REQUESTS, route_of(path), method, str(status)).inc(n)
    for path, (total, buckets) in tallies.seconds.items():
        child = _child(LATENCY, route_of(path))
        # observe() once per request, batched: prometheus-client has no public form of it (its
        # version is pinned; test_gateway checks the exposed buckets)
        child._sum.inc(total)
        for i, n in enumerate(buckets):
            if n:
                child._buckets[i].inc(n)
    for (tier, result), n in tallies.lookups.items():
        _child(CACHE, tier, result).inc(n)


def websocket_connections() -> int:
    """Open WebSocket connections over every worker (the gauge they share, summed over live workers)."""
    if not MULTIPROCESS:
        from prometheus_client import REGISTRY

        return int(REGISTRY.get_sample_value(WEBSOCKETS._name) or 0)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return int(sum(s.value for m in registry.collect() if m.name == WEBSOCKETS._name for s in m.samples))


async def serve(send) -> None:
    from gateway import providers_metrics  # provider state: read at scrape time

    flush()  # this worker's tallies; the others' are at most FLUSH_SECONDS old
    registry = CollectorRegistry()
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry  # noqa: N811
        registry = _WithExtra(registry)
    registry.register(await providers_metrics.collector())
    body = await asyncio.to_thread(generate_latest, registry)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class _WithExtra(CollectorRegistry):
    """The default registry plus per-scrape collectors (single-process mode)."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def collect(self):
        yield from self.base.collect()
        yield from super().collect()

