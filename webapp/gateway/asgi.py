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


class Answered:
    """An ASGI `send` that remembers the status it answered (500 until a response starts)."""

    __slots__ = ("raw", "status")

    def __init__(self, send):
        self.raw, self.status = send, 500

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.raw(message)


@lru_cache(maxsize=4096)  # the same few paths arrive again and again
def cacheable(path: str) -> bool:
    return CACHEABLE.match(path) is not None


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
        answered = Answered(send)
        try:
            if path == "/readyz":
                await self.readyz(answered)
            elif path == "/metrics":
                await metrics.serve(answered)
            elif path.startswith("/api/v1/") and path not in NOT_LIMITED:
                await self.api(scope, receive, answered)
            else:
                await self.app(scope, receive, answered)
        finally:
            metrics.observe_request(path, scope["method"], answered.status, time.perf_counter() - started)

    async def readyz(self, send) -> None:
        checks = await runtime.readiness()
        ok = all(checks.values())
        await respond(send, 200 if ok else 503, orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks}),
                      [] if ok else [(b"retry-after", b"5")])  # fmt: skip

    async def api(self, scope, receive, send: Answered) -> None:
        # The common case costs no await before the answer: a key seen in the last minute, a slot of
        # this worker's lease (ratelimit.Limiter.leased), an answer L2 holds (cache.TwoTierCache.lookup).
        limiter = runtime.limiter()
        client = self.known_client(scope) or await self.identify(scope)
        if client is None:
            return await respond(send, 401, error_body("unknown or revoked API key; send a valid key in "
                                                       "`Authorization: Bearer <key>`, or none for the free tier"))  # fmt: skip
        decision = limiter.leased(client.identity) or await limiter.hit(client.identity, LIMITS[client.plan])
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
        state = {"client": client, "decision": decision, "data_version": limiter.shared.data_version}
        if scope["path"] == STREAM:
            scope.setdefault("state", {})["gpubroker"] = state
            return await sse.stream(scope, receive, send, limit_headers)
        if scope["method"] == "GET" and cacheable(scope["path"]):
            return await self.cached(scope, receive, send, limit_headers, state)

        async def send_with_limits(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limit_headers]}
            await send(message)

        scope.setdefault("state", {})["gpubroker"] = state
        await self.app(scope, receive, send_with_limits)

    async def cached(self, scope, receive, send: Answered, limit_headers, state) -> None:
        key, version = cache_key(scope), state["data_version"]
        responses, tier = runtime.response_cache(), "l2"
        entry, held = responses.lookup(key, version)
        if entry is None:

            async def compute() -> cache.Entry:
                scope.setdefault("state", {})["gpubroker"] = state  # what the views read (offers.api)
                return await capture(self.app, scope, receive)

            entry, tier = await responses.refresh(key, version, compute, held)
        metrics.cache_lookup(tier)
        age = max(0, int(time.time() - entry.computed_at)) if entry.ttl else 0
        gzipped = len(entry.body) >= GZIP_MIN_BYTES and accepts_gzip(scope["headers"])
        send.status = entry.status
        await send.raw({"type": "http.response.start", "status": entry.status, "headers": [
            *(entry.gzipped_headers if gzipped else entry.plain_headers), *limit_headers,
            (b"age", str(age).encode()), (b"x-cache", tier.encode())]})  # fmt: skip
        await send.raw({"type": "http.response.body", "body": entry.gzipped if gzipped else entry.body})

    def known_client(self, scope) -> keys.Client | None:
        """The key's client when this worker looked it up lately (no await), else None."""
        key = keys.from_headers(scope["headers"])
        return None if key is None else runtime.key_directory().recall(key)

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
