"""The gateway: an ASGI layer in front of Django (HTTP) and Channels (WebSocket).

Why a layer of its own: the hot path — who is asking, may they, is the answer cached — must not pay
for Django's request machinery (middleware chain, URL resolving, a thread hop per request signal).
Here it is a few dictionary lookups and at most one Redis round trip (the rate limit, which also
brings the data version and the key epoch; a busy client's requests are mostly admitted from a lease
of slots, with none: gateway.ratelimit). Only cache misses and non-cacheable requests reach Django.

- `/healthz` (liveness: constant JSON, no I/O), `/readyz` (PostgreSQL and Redis reachable),
  `/metrics` (Prometheus; the providers' state it reads is kept a few seconds) are answered here.
- `/api/v1/...`, `/graphql` (HTTP and WebSocket), `/ws/...`: the client is identified (API key, or the
  free tier by IP), counted against its plan's sliding window (429 + Retry-After when over), and every
  answer carries RateLimit headers. (Each further root field of a GraphQL operation counts too:
  webapp/graphql_api/limits.py.)
- `/` (the offers page) counts like an API request, with an HTML 429 when over, unless its first view
  (no query string) is served from the cache, which keeps it `PAGE_SECONDS`. `/dq/` is served from
  the cache, kept `DQ_SECONDS`: neither page is a way around the plans.
- A key PostgreSQL does not know is a 401 that counts against the caller's address (its free
  window); once that window is full, the address's unseen keys get 429 with no lookup. With
  PostgreSQL down, a key this worker has not seen gets 503 + Retry-After (see `refuse_websocket`).
- Public read endpoints are served through the two-tier cache (gateway.cache), with an `Age` header.
  A computation is its own: its first asker hanging up neither aborts it nor fails the others.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from feed import sse
from gateway import cache, keys, metrics, runtime
from gateway.plans import LIMITS, WINDOW_SECONDS, Plan
from gateway.ratelimit import Decision
from gpubroker_web import db

HEALTHZ = b'{"status":"ok"}'
JSON = [(b"content-type", b"application/json")]
HTML = [(b"content-type", b"text/html; charset=utf-8")]
# Public, read-only, identical for every client: the only responses the cache may share.
CACHEABLE = re.compile(r"^/api/v1/(offers|gpus|providers|anomalies|analytics)(/[^/]+)*/?$")
NOT_LIMITED = ("/api/v1/openapi.json", "/api/v1/docs")  # static documentation
STREAM = "/api/v1/stream"  # server-sent events (feed/sse.py)
GRAPHQL = "/graphql"  # queries over HTTP (webapp/graphql_api); its WebSocket side is one of the sockets below
# Cached answers go out gzipped to clients that accept it (browsers, curl --compressed, requests, httpx):
# an offers page travels ~10x smaller, compressed once per cache entry (Entry.gzipped). Only cached
# answers: they are public and the same for everyone, so compression cannot leak a secret (BREACH).
# Below this size it gains little.
GZIP_MIN_BYTES = 1024
# The human pages (webapp/web), the same for everyone: the gateway keeps their answers this long
# (keyed by the data version too), whatever the page says about caching.
PAGE = "/"  # the offers page; only its first view (no query string) is kept
PAGE_SECONDS = 10.0  # the page's script asks the API and follows the feed at once: its first paint may lag
DQ = "/dq/"  # data quality; it reads no query string, so every query string is the same answer
DQ_SECONDS = 5.0


async def respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*JSON, length, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def error_body(detail: str, **extra: Any) -> bytes:
    return orjson.dumps({"detail": detail, **extra})


class Refusal(NamedTuple):
    """A request not served: its status, what went wrong, when to retry (headers), extra JSON fields."""

    status: int
    detail: str
    headers: list[tuple[bytes, bytes]]
    extra: dict[str, Any]

    @property
    def reason(self) -> str:
        """The detail's first clause: short enough for a WebSocket close frame (<= 123 bytes)."""
        return self.detail.split(";")[0][:120]


UNAVAILABLE = Refusal(503, "the database is unavailable; retry shortly",
                      [(b"retry-after", str(db.RETRY_AFTER_SECONDS).encode())], {})  # fmt: skip


def unknown_key(decision: Decision) -> Refusal:
    return Refusal(401, "unknown or revoked API key; send a valid key in `Authorization: Bearer <key>`, or none "
                        "for the free tier (unknown keys count against your address's free plan)",
                   decision.headers(), {})  # fmt: skip


def over_limit(plan: Plan, decision: Decision) -> Refusal:
    metrics.RATE_LIMITED.labels(plan.value).inc()
    return Refusal(429, f"rate limit of the {plan.value} plan exceeded: {decision.limit} requests per "
                        f"{WINDOW_SECONDS} s; retry after {decision.retry_after} s",
                   [*decision.headers(), (b"retry-after", str(decision.retry_after).encode())],
                   {"plan": plan.value, "limit": decision.limit, "retry_after": decision.retry_after})  # fmt: skip


async def refuse(send, refusal: Refusal) -> None:
    await respond(send, refusal.status, error_body(refusal.detail, **refusal.extra), refusal.headers)


PAGE_TITLES = {401: "Unknown API key", 429: "Too many requests", 503: "Temporarily unavailable"}


async def refuse_page(send, refusal: Refusal) -> None:
    """The refusal as a page a person can read, with the same status and headers as the API's."""
    title = PAGE_TITLES[refusal.status]
    first = refusal.detail.split(";")[0]
    said = [first[:1].upper() + first[1:] + "."]
    if refusal.status == 429:
        said.append("Loading this page counts as a request of the plan, as an API request does.")
    said += [f"Try again in {int(v)} s." for k, v in refusal.headers if k == b"retry-after"]
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in said)
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · GPUBroker</title></head>'
            f'<body><main><h1>{title}</h1>{paragraphs}<p><a href="/">Back to the offers</a></p></main></body></html>')
    data = body.encode()
    length = (b"content-length", str(len(data)).encode())
    await send({"type": "http.response.start", "status": refusal.status, "headers": [*HTML, length, *refusal.headers]})
    await send({"type": "http.response.body", "body": data})


async def refuse_websocket(scope, receive, send, refusal: Refusal) -> None:
    """A WebSocket connect refused: with a real HTTP answer (status, Retry-After, JSON body) where the
    server can send one (uvicorn can), else closed with code 4000 + status (4401 unknown key, 4429
    over the limit, 4503 PostgreSQL unavailable) and the reason."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [*JSON, *refusal.headers]
        await send({"type": "websocket.http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": error_body(refusal.detail, **refusal.extra)})
    else:
        await send({"type": "websocket.close", "code": 4000 + refusal.status, "reason": refusal.reason})


def with_headers(send, extra: list[tuple[bytes, bytes]]):
    """`send` adding `extra` headers to the response start."""

    async def sending(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


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
            elif path.startswith("/api/v1/") and path not in NOT_LIMITED or path == GRAPHQL:
                await self.api(scope, receive, answered)
            elif path == PAGE:
                await self.page(scope, receive, answered)
            elif path == DQ and scope["method"] == "GET":
                await self.kept(scope, answered, DQ_SECONDS, [])
            else:
                await self.app(scope, receive, answered)
        finally:
            metrics.observe_request(path, scope["method"], answered.status, time.perf_counter() - started)

    async def readyz(self, send) -> None:
        checks = await runtime.readiness()
        ok = all(checks.values())
        await respond(send, 200 if ok else 503, orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks}),
                      [] if ok else [(b"retry-after", b"5")])  # fmt: skip

    async def admit(self, scope) -> tuple[keys.Client, Decision] | Refusal:
        """The asking client and its admission (a leased slot when this worker holds one), or why not.

        The common case costs no await: a key seen in the last minute, a slot of this worker's lease
        (ratelimit.Limiter.leased)."""
        limiter = runtime.limiter()
        client = self.known_client(scope) or await self.identify(scope)
        if isinstance(client, Refusal):
            return client
        decision = limiter.leased(client.identity) or await limiter.hit(client.identity, LIMITS[client.plan])
        if client.key_id is not None and runtime.key_directory().outdated():
            client = await self.identify(scope)  # a key was revoked since we last looked: look again
            if isinstance(client, Refusal):
                return client
        if not decision.admitted:
            return over_limit(client.plan, decision)
        return client, decision

    async def api(self, scope, receive, send: Answered) -> None:
        # The common case costs no await before the answer: `admit`'s, and an answer L2 holds
        # (cache.TwoTierCache.lookup).
        admitted = await self.admit(scope)
        if isinstance(admitted, Refusal):
            return await refuse(send, admitted)
        client, decision = admitted
        limit_headers = decision.headers()
        state = {"client": client, "decision": decision, "data_version": runtime.limiter().shared.data_version}
        if scope["path"] == STREAM:
            scope.setdefault("state", {})["gpubroker"] = state
            return await sse.stream(scope, receive, send, limit_headers)
        if scope["method"] == "GET" and cacheable(scope["path"]):
            return await self.cached(scope, receive, send, limit_headers, state)
        scope.setdefault("state", {})["gpubroker"] = state
        await self.app(scope, receive, with_headers(send, limit_headers))

    async def cached(self, scope, receive, send: Answered, limit_headers, state) -> None:
        key, version = cache_key(scope), state["data_version"]
        responses, tier = runtime.response_cache(), "l2"
        entry, held = responses.lookup(key, version)
        if entry is None:

            async def compute() -> cache.Entry:
                scope.setdefault("state", {})["gpubroker"] = state  # what the views read (offers.api)
                return await capture(self.app, scope)

            entry, tier = await responses.refresh(key, version, compute, held)
        await send_entry(scope, send, entry, tier, limit_headers)

    async def page(self, scope, receive, send: Answered) -> None:
        """The offers page: its first view from the cache costs nothing; any other load counts against
        the caller's plan like an API request (free by address, or the key the page was sent with)."""
        first_view = scope["method"] == "GET" and not scope.get("query_string")
        version = runtime.limiter().shared.data_version
        if first_view and (found := await runtime.response_cache().stored(PAGE, version)):
            return await send_entry(scope, send, *found, [])
        admitted = await self.admit(scope)
        if isinstance(admitted, Refusal):
            return await refuse_page(send, admitted)
        limit_headers = admitted[1].headers()
        if first_view:
            return await self.kept(scope, send, PAGE_SECONDS, limit_headers)
        await self.app(scope, receive, with_headers(send, limit_headers))

    async def kept(self, scope, send: Answered, seconds: float, limit_headers) -> None:
        """A human page's answer for its path alone, from the cache or computed once (by one asker for
        all, across workers) and kept `seconds` when it is a 200."""
        path, version = scope["path"], runtime.limiter().shared.data_version
        responses = runtime.response_cache()

        async def compute() -> cache.Entry:
            entry = await capture(self.app, {**scope, "query_string": b""})
            return replace(entry, ttl=seconds if entry.status == 200 else 0.0)

        found = await responses.stored(path, version) or await responses.refresh(path, version, compute, None)
        await send_entry(scope, send, *found, limit_headers)

    def known_client(self, scope) -> keys.Client | None:
        """The key's client when this worker looked it up lately (no await), else None."""
        key = keys.from_headers(scope["headers"])
        return None if key is None else runtime.key_directory().recall(key)

    async def identify(self, scope) -> keys.Client | Refusal:
        """The asking client, or why it is refused: a key PostgreSQL does not know (401, counted against
        the address), an address whose window unknown keys filled (429, no lookup), PostgreSQL down (503)."""
        key, address = keys.from_headers(scope["headers"]), client_address(scope)
        if key is None:
            return keys.Client(identity=f"ip:{address}", plan=Plan.FREE)
        directory = runtime.key_directory()
        if waiting := directory.refused_for(address):
            return over_limit(Plan.FREE, Decision(False, LIMITS[Plan.FREE], 0, waiting, shared=True))
        try:
            client = await directory.lookup(key)
        except db.DatabaseUnavailable:
            return UNAVAILABLE
        return client or await self.count_unknown_key(address)

    async def count_unknown_key(self, address: str) -> Refusal:
        """A 401, counted against the address's free window; a 429 once that is full, and no lookups
        of its unseen keys until it frees."""
        decision = await runtime.limiter().hit(f"ip:{address}", LIMITS[Plan.FREE])
        if decision.admitted:
            return unknown_key(decision)
        runtime.key_directory().refuse(address, decision.reset_seconds)
        return over_limit(Plan.FREE, decision)

    # --- WebSocket -------------------------------------------------------------------------------
    async def websocket(self, scope, receive, send) -> None:
        """A WebSocket connect counts as one request of the client's plan, like an SSE stream."""
        client = await self.identify(scope)
        if isinstance(client, Refusal):
            return await refuse_websocket(scope, receive, send, client)
        decision = await runtime.limiter().hit(client.identity, LIMITS[client.plan])
        if not decision.admitted:
            return await refuse_websocket(scope, receive, send, over_limit(client.plan, decision))
        scope.setdefault("state", {})["gpubroker"] = {"client": client, "decision": decision}
        await self.app(scope, receive, send)


def client_address(scope) -> str:
    """The caller's address: the peer's, or the forwarded client's when the peer is a trusted proxy
    (uvicorn's --forwarded-allow-ips rewrites `client`; see astro/README.md)."""
    return (scope.get("client") or ("unknown", 0))[0]


async def send_entry(scope, send: Answered, entry: cache.Entry, tier: str, limit_headers) -> None:
    """A cached answer, gzipped when the client accepts it, with its age and the tier it came from."""
    metrics.cache_lookup(tier)
    age = max(0, int(time.time() - entry.computed_at)) if entry.ttl else 0
    gzipped = len(entry.body) >= GZIP_MIN_BYTES and accepts_gzip(scope["headers"])
    send.status = entry.status
    await send.raw({"type": "http.response.start", "status": entry.status, "headers": [
        *(entry.gzipped_headers if gzipped else entry.plain_headers), *limit_headers,
        (b"age", str(age).encode()), (b"x-cache", tier.encode())]})  # fmt: skip
    await send.raw({"type": "http.response.body", "body": entry.gzipped if gzipped else entry.body})


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


async def capture(app, scope) -> cache.Entry:
    """Run a GET through the application and keep its response as a cache entry.

    The application hears an empty request body and then nothing from the client (`detached`): the
    answer is for everyone waiting on it, so the asker that started it hanging up must not abort it.
    It is stored only when the application marked it `Cache-Control: public, max-age=N` (N = ttl).
    """
    start: dict = {}
    chunks: list[bytes] = []

    async def keep(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, detached(), keep)
    headers = tuple((k.lower(), v) for k, v in start.get("headers", []))
    ttl = 0.0
    for name, value in headers:
        if name == b"cache-control" and b"public" in value:
            match = re.search(rb"max-age=(\d+)", value)
            ttl = float(match.group(1)) if match else 0.0
    kept = tuple((k, v) for k, v in headers if k not in (b"content-length", b"date", b"age"))
    return cache.Entry(start.get("status", 500), kept, b"".join(chunks), None, time.time(), 0.0, ttl)


def detached():
    """An ASGI `receive` for a GET with no client behind it: the empty body, then never a disconnect."""
    asked = False

    async def receive():
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await asyncio.get_running_loop().create_future()  # waits until the application stops listening

    return receive
