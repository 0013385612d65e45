"""Prometheus metrics at `/metrics`: the API's own, and the providers' state kept by the pipeline.

Several uvicorn workers share one exposition through prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set and emptied by the local stack before the workers start). Provider
metrics are read at scrape time from where the pipeline keeps them (breakers and health in Redis,
landings in PostgreSQL), so they are the same whichever worker answers.
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache

from django.urls import Resolver404, resolve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter("gpubroker_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "gpubroker_http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)  # fmt: skip
CACHE = Counter("gpubroker_cache_lookups_total", "Response cache lookups by tier", ["tier", "result"])
RATE_LIMITED = Counter("gpubroker_rate_limited_requests_total", "Requests refused with 429, by plan", ["plan"])
WEBSOCKETS = Gauge("gpubroker_websocket_connections", "Open WebSocket connections",
                   multiprocess_mode="livesum")  # fmt: skip
SSE_STREAMS = Gauge("gpubroker_sse_streams", "Open server-sent event streams", multiprocess_mode="livesum")

_GATEWAY_ROUTES = {"/healthz", "/readyz", "/metrics"}


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


def observe_request(path: str, method: str, status: int, seconds: float) -> None:
    route = route_of(path)
    _child(REQUESTS, route, method, str(status)).inc()
    _child(LATENCY, route).observe(seconds)


def cache_lookup(tier: str) -> None:
    """One cached-endpoint request answered from `tier` (l2, l1 or origin): a hit there, misses above."""
    for level in ("l2", "l1"):
        if level == tier:
            _child(CACHE, level, "hit").inc()
            return
        _child(CACHE, level, "miss").inc()


async def serve(send) -> None:
    from gateway import providers_metrics  # provider state: read at scrape time

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

