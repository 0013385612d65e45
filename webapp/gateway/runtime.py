"""Per-worker runtime of the gateway: the Redis client, the limiter, the caches, start and stop.

Everything here is created lazily in the running event loop (uvicorn's worker loop, or a test's),
so the ASGI application also works where no lifespan events are sent.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gateway import keys, metrics, providers_metrics
from gateway.cache import TwoTierCache
from gateway.plans import Plan
from gateway.ratelimit import Limiter
from gpubroker import settings
from gpubroker_web import db

KEY_CACHE_SECONDS = 60.0  # a revoked key stops working at the next request anyway (key epoch)
KEY_CACHE_ENTRIES = 10_000  # keys PostgreSQL knows, per worker
UNKNOWN_KEY_ENTRIES = 1_000  # digests it did not know: a bound of their own, so they never push known keys out
ADDRESSES = 10_000  # addresses refused for sending too many unknown keys, remembered per worker


class Lookups(OrderedDict):
    """An LRU of what was looked up when: key -> (value, monotonic seconds), at most `size` entries."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def keep(self, key: str, value) -> None:
        self[key] = (value, time.monotonic())
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)  # the least recently used one, never the lot

    def recent(self, key: str, seconds: float) -> tuple | None:
        """(value, when) when `key` was kept in the last `seconds` (and marked used), else None."""
        found = self.get(key)
        if found is None or time.monotonic() - found[1] >= seconds:
            return None
        self.move_to_end(key)
        return found


class KeyDirectory:
    """API key digest -> client, cached in process; drops what it knows when the key epoch moves.

    Keys PostgreSQL knows and digests it did not are kept apart, each an LRU of its own: a flood of
    random keys only churns the second, and every known key stays recalled with no await. A flood
    from one address is stopped before PostgreSQL: unknown keys count against the address's free
    window (gateway.asgi), and once that is full the address's unseen keys are refused unlooked-up
    until it frees (`refuse`, `refused_for`).
    """

    def __init__(self):
        self.known = Lookups(KEY_CACHE_ENTRIES)
        self.unknown = Lookups(UNKNOWN_KEY_ENTRIES)
        self.refused: OrderedDict[str, float] = OrderedDict()  # address -> monotonic seconds it is refused until
        self.epoch: int | None = None

    def outdated(self) -> bool:
        """True when the last Redis round trip brought a key epoch newer than our cached lookups."""
        epoch = limiter().shared.key_epoch
        return epoch is not None and epoch != self.epoch

    def recall(self, key: str) -> keys.Client | None:
        """The key's client as looked up in the last minute at the current key epoch, with no await;
        None when it was not (nor for unknown or revoked keys: `lookup` answers those)."""
        if self.outdated():
            return None
        found = self.known.recent(keys.digest(key), KEY_CACHE_SECONDS)
        return found[0] if found else None

    async def lookup(self, key: str) -> keys.Client | None:
        if self.outdated():
            self.known.clear()
            self.unknown.clear()
            self.epoch = limiter().shared.key_epoch
        digest = keys.digest(key)
        if recent := self._recent(digest):
            return recent[0]
        try:
            row = await db.fetch_one("SELECT id, plan FROM api_keys WHERE digest = %s AND revoked_at IS NULL", (digest,))
        except db.DatabaseUnavailable:
            if found := self.known.get(digest) or self.unknown.get(digest):  # the last answer stands, however old
                return found[0]
            raise
        if row is None:
            self.unknown.keep(digest, None)
            return None
        client = keys.Client(f"key:{row['id']}", Plan(row["plan"]), row["id"])
        self.known.keep(digest, client)
        return client

    def _recent(self, digest: str) -> tuple | None:
        """What the last lookup of this digest found, when it was made in the last KEY_CACHE_SECONDS."""
        return self.known.recent(digest, KEY_CACHE_SECONDS) or self.unknown.recent(digest, KEY_CACHE_SECONDS)

    def refuse(self, address: str, seconds: float) -> None:
        """No lookups for `address`'s unseen keys for `seconds` (its window is full of unknown keys)."""
        self.refused[address] = time.monotonic() + seconds
        self.refused.move_to_end(address)
        if len(self.refused) > ADDRESSES:
            self.refused.popitem(last=False)

    def refused_for(self, address: str) -> float:
        """Seconds `address`'s unseen keys are still refused for (0: look them up)."""
        until = self.refused.get(address)
        if until is None or (left := until - time.monotonic()) <= 0:
            self.refused.pop(address, None)
            return 0.0
        return left


class _Loop:
    """The clients bound to one event loop (uvicorn's worker loop; tests may run several)."""

    def __init__(self):
        # A bounded pool that makes callers wait for a free connection (up to 2 s) rather than fail:
        # a burst of thousands of WebSocket clients must not open thousands of Redis connections.
        # One retry on a broken connection: after Redis restarts, each pooled connection fails once,
        # then reconnects; without the retry each of them would fail a request or a /readyz.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=32, timeout=2, socket_timeout=0.5, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self.limiter = Limiter(self.redis)
        self.cache = TwoTierCache(self.redis)


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = weakref.WeakKeyDictionary()
_keys = KeyDirectory()


_last: tuple[asyncio.AbstractEventLoop | None, _Loop | None] = (None, None)


def _here() -> _Loop:
    global _last
    loop = asyncio.get_running_loop()
    if _last[0] is loop:  # the common case, one loop per worker: no dictionary lookup
        return _last[1]
    if loop not in _loops:
        _loops[loop] = _Loop()
    _last = (loop, _loops[loop])
    return _last[1]


def reset() -> None:
    """Forget every client, cached answer and provider state (tests: after pointing settings at another Redis)."""
    global _keys, _last
    _loops.clear()
    providers_metrics.forget()
    _last = (None, None)
    _keys = KeyDirectory()


def redis() -> aioredis.Redis:
    return _here().redis


def limiter() -> Limiter:
    return _here().limiter


def response_cache() -> TwoTierCache:
    return _here().cache


def key_directory() -> KeyDirectory:
    return _keys


async def readiness() -> dict[str, bool]:
    async def postgres() -> bool:
        try:
            return await db.fetch_one("SELECT 1 AS ok") is not None
        except db.DatabaseUnavailable:
            return False

    async def redis_ok() -> bool:
        try:
            return bool(await redis().ping())
        except (RedisError, OSError):
            return False

    pg, rd = await asyncio.gather(postgres(), redis_ok())
    return {"postgres": pg, "redis": rd}


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _here()
            await db.pool()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            metrics.flush()  # the last second's tallies
            await db.close()
            await redis().aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
