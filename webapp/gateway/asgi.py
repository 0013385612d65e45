"""The gateway: an ASGI layer in front of Django (HTTP) and Channels (WebSocket).

Why a layer of its own: the hot path — who is asking, may they, is the answer cached — must not pay
for Django's request machinery (middleware chain, URL resolving, a thread hop per request signal).
Here it is a few dictionary lookups and at most one Redis round trip (the rate limit, which also
brings the data version and the key epoch; a busy client's requests are mostly admitted from a lease
of slots, with none: gateway.ratelimit). Only cache misses and non-cacheable requests reach Django.

- `/healthz` (liveness: constant JSON, no I/O), `/readyz` (PostgreSQL and Redis reachable),
  `/metrics` (Prometheus) are answered here.
- `/api/v1/...`, `/ws/...`: the client is identified (API key, or the free tier by IP), counted against
  its plan's sliding window (429 + Retry-After when over), and every answer carries RateLimit headers.
- Public read endpoints are served through the two-tier cache (gateway.cache), with an `Age` header.
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from typing import Any

import orjson

from feed import sse
from gateway import cache, keys, metrics, runtime
from gateway.plans import LIMITS, Plan

HEALTHZ = b'{"status":"ok"}'
JSON = [(b"content-type", b"application/json")]
# Public, read-only, identical for every client: the only responses the cache may share.
CACHEABLE = re.compile(r"^/api/v1/(offers|gpus|providers|anomalies)(/[^/]+)*/?$")
NOT_LIMITED = ("/api/v1/openapi.json", "/api/v1/docs")  # static documentation
STREAM = "/api/v1/stream"  # server-sent events (feed/sse.py)
# Cached answers go out gzipped to clients that accept it (browsers, curl --compressed, requests, httpx):
# an offers page travels ~10x smaller, compressed once per cache entry (Entry.gzipped). Only cached
# answers: they are public and the same for everyone, so compression cannot leak a secret (BREACH).
# Below this size it gains little.
GZIP_MIN_BYTES = 1024


async def respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*JSON, length, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def error_body(detail: str, **extra: Any) -> bytes:
    return orjson.dumps({"detail": detail, **extra})


class Gateway:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        elif kind == "lifespan":
            await runtime.lifespan(receive, send)
        else:
            await self.app(scope, receive, send)

    # --- HTTP ------------------------------------------------------------------------------------
    async def http(self, scope, receive, send) -> None:
        path = scope["path"]
        if path == "/healthz":
            return await respond(send, 200, HEALTHZ)
        started = time.perf_counter()
        status_box = [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        try:
            if path == "/readyz":
                await self.readyz(send_counted)
            elif path == "/metrics":
                await metrics.serve(send_counted)
            elif path.startswith("/api/v1/") and path not in NOT_LIMITED:
                await self.api(scope, receive, send_counted)
            else:
                await self.app(scope, receive, send_counted)
        finally:
            metrics.observe_request(path, scope["method"], status_box[0], time.perf_counter() - started)

    async def readyz(self, send) -> None:
        checks = await runtime.readiness()
        ok = all(checks.values())
        await respond(send, 200 if ok else 503, orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks}),
                      [] if ok else [(b"retry-after", b"5")])  # fmt: skip

    async def api(self, scope, receive, send) -> None:
        client = await self.identify(scope)
        if client is None:
            return await respond(send, 401, error_body("unknown or revoked API key; send a valid key in "
                                                       "`Authorization: Bearer <key>`, or none for the free tier"))  # fmt: skip
        decision = await runtime.limiter().hit(client.identity, LIMITS[client.plan])
        if client.key_id is not None and runtime.key_directory().outdated():
            client = await self.identify(scope)  # a key was revoked since we last looked: look again
            if client is None:
                return await respond(send, 401, error_body("unknown or revoked API key"))
        limit_headers = decision.headers()
        if not decision.admitted:
            metrics.RATE_LIMITED.labels(client.plan.value).inc()
            return await respond(send, 429, error_body(
                f"rate limit of the {client.plan.value} plan exceeded: {decision.limit} requests per "
                f"{60} s; retry after {decision.retry_after} s", plan=client.plan.value, limit=decision.limit,
                retry_after=decision.retry_after,
            ), [*limit_headers, (b"retry-after", str(decision.retry_after).encode())])  # fmt: skip
        scope.setdefault("state", {})["gpubroker"] = {"client": client, "decision": decision,
                                                      "data_version": runtime.data_version()}  # fmt: skip
        if scope["path"] == STREAM:
            return await sse.stream(scope, receive, send, limit_headers)
        if scope["method"] == "GET" and CACHEABLE.match(scope["path"]):
            return await self.cached(scope, receive, send, limit_headers)

        async def send_with_limits(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limit_headers]}
            await send(message)

        await self.app(scope, receive, send_with_limits)

    async def cached(self, scope, receive, send, limit_headers) -> None:
        key = cache_key(scope)

        async def compute() -> cache.Entry:
            return await capture(self.app, scope, receive)

        entry, tier = await runtime.response_cache().get(key, runtime.data_version(), compute)
        metrics.cache_lookup(tier)
        age = max(0, int(time.time() - entry.computed_at)) if entry.ttl else 0
        body, encoding = entry.body, []
        if len(body) >= GZIP_MIN_BYTES and accepts_gzip(scope["headers"]):
            body, encoding = entry.gzipped, [(b"content-encoding", b"gzip")]
        headers = [*entry.headers, *encoding, (b"vary", b"Accept-Encoding"), *limit_headers, (b"age", str(age).encode()),
                   (b"x-cache", tier.encode()), (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def identify(self, scope) -> keys.Client | None:
        """The asking client, or None for a key that is unknown or revoked."""
        key = keys.from_headers(scope["headers"])
        if key is None:
            host = (scope.get("client") or ("unknown", 0))[0]
            return keys.Client(identity=f"ip:{host}", plan=Plan.FREE)
        return await runtime.key_directory().lookup(key)

    # --- WebSocket -------------------------------------------------------------------------------
    async def websocket(self, scope, receive, send) -> None:
        """A WebSocket connect counts as one request of the client's plan, like an SSE stream."""
        client = await self.identify(scope)
        decision = None if client is None else await runtime.limiter().hit(client.identity, LIMITS[client.plan])
        if client is not None and decision.admitted:
            scope.setdefault("state", {})["gpubroker"] = {"client": client, "decision": decision}
            return await self.app(scope, receive, send)
        status = 401 if client is None else 429
        body = error_body("unknown or revoked API key" if client is None else "rate limit exceeded",
                          **({} if decision is None else {"retry_after": decision.retry_after}))  # fmt: skip
        if client is not None:
            metrics.RATE_LIMITED.labels(client.plan.value).inc()
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):  # refuse with a real HTTP answer
            headers = [*JSON] + ([] if decision is None else
                                 [*decision.headers(), (b"retry-after", str(decision.retry_after).encode())])  # fmt: skip
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 4000 + status, "reason": json.loads(body)["detail"]})


def accepts_gzip(headers) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 12.5.3): named with q > 0, or `*` with q > 0 and
    gzip not named. No header: no compression (the identity coding is always acceptable)."""
    weights: dict[str, float] = {}
    for name, value in headers:
        if name == b"accept-encoding":
            for coding in value.decode("latin-1").lower().split(","):
                token, *params = (part.strip() for part in coding.split(";"))
                weights[token] = next((_quality(p[2:]) for p in params if p.startswith("q=")), 1.0)
    for token in ("gzip", "x-gzip", "*"):
        if token in weights:
            return weights[token] > 0
    return False


def _quality(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0  # a malformed weight: not a yes


def cache_key(scope) -> str:
    """The request as a cache key: path plus its query parameters in a canonical order."""
    return _canonical(scope["path"], scope.get("query_string", b""))


@lru_cache(maxsize=4096)  # the same few queries arrive again and again
def _canonical(path: str, query_string: bytes) -> str:
    query = query_string.decode("latin-1")
    if not query:
        return path
    return path + "?" + "&".join(sorted(p for p in query.split("&") if p))


async def capture(app, scope, receive) -> cache.Entry:
    """Run the request through the application and keep its response as a cache entry.

    It is stored only when the application marked it `Cache-Control: public, max-age=N` (N = ttl).
    """
    start: dict = {}
    chunks: list[bytes] = []

    async def keep(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    headers = tuple((k.lower(), v) for k, v in start.get("headers", []))
    ttl = 0.0
    for name, value in headers:
        if name == b"cache-control" and b"public" in value:
            match = re.search(rb"max-age=(\d+)", value)
            ttl = float(match.group(1)) if match else 0.0
    kept = tuple((k, v) for k, v in headers if k not in (b"content-length", b"date", b"age"))
    return cache.Entry(start.get("status", 500), kept, b"".join(chunks), None, time.time(), 0.0, ttl)
