"""Sliding-window rate limits, shared by every worker through Redis, atomic, with a local fallback.

Each client has a log of the times its admitted requests arrived (a Redis sorted set); a request is
admitted when fewer than `limit` of them lie in the last 60 s, so the window slides with every
request instead of resetting on minute boundaries. Time comes from Redis `TIME`, so workers with
skewed clocks share one timeline. Refused requests are not logged (they do not extend a ban).

Micro-batching: a worker has at most one script call in flight; the requests that arrive meanwhile
go to Redis together in the next call (each still gets its own decision, applied in order,
atomically). Under load a call carries about as many requests as the worker has concurrent clients,
so the round trip's cost is shared; when idle, a request waits for at most one call ahead of it.
The same call returns the data version and the API-key epoch, read after the request arrived: a
request makes one Redis round trip and always sees the latest landing.

Why not the `limits` library (its Redis moving window is the same algorithm): every release that
supports redis-py 8 needs `packaging<26`, which the Airflow Celery provider's kombu forbids.

Redis down: each worker falls back to its own log with `limit // workers` (at least 1): never unlimited.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.plans import WINDOW_SECONDS

WINDOW_MS = WINDOW_SECONDS * 1000
VERSION_KEY = "gpubroker:cache:version"  # bumped by every landing (gpubroker.cache.bump_version)
EPOCH_KEY = "gpubroker:keys:epoch"  # bumped when a key is revoked
KEY_PREFIX = "gpubroker:ratelimit:"
REDIS_RETRY_SECONDS = 1.0  # after a Redis failure, use the local limiter this long before trying again

# KEYS: version, epoch, then one window per request. ARGV: window ms, a batch-unique member prefix,
# a clock offset in ms (0; tests move time with it, as Redis's clock cannot be set), then each
# window's limit. Returns version, epoch, then (admitted, used, ms until a slot frees) per request.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local window = tonumber(ARGV[1])
local out = {redis.call('GET', KEYS[1]) or '', redis.call('GET', KEYS[2]) or ''}
for i = 3, #KEYS do
  local key, limit = KEYS[i], tonumber(ARGV[i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
  local admitted = 0
  if used < limit then
    redis.call('ZADD', key, now, ARGV[2] .. ':' .. i)
    redis.call('PEXPIRE', key, window)
    used = used + 1
    admitted = 1
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local frees = window
  if oldest[2] then frees = tonumber(oldest[2]) + window - now end
  out[#out + 1] = admitted
  out[#out + 1] = used
  out[#out + 1] = frees
end
return out
"""


@dataclass(frozen=True)
class Decision:
    admitted: bool
    limit: int
    remaining: int
    reset_seconds: float  # until the oldest request in the window leaves it (a slot frees)
    shared: bool  # True: decided in Redis for every worker; False: this worker's fallback

    @property
    def retry_after(self) -> int:
        """Whole seconds (>= 1) until a refused client may succeed."""
        return max(1, math.ceil(self.reset_seconds))

    def headers(self) -> list[tuple[bytes, bytes]]:
        """IETF draft RateLimit headers (draft-ietf-httpapi-ratelimit-headers, delta-seconds)."""
        reset = str(max(0, math.ceil(self.reset_seconds))).encode()
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", reset),
            (b"ratelimit-policy", f"{self.limit};w={WINDOW_SECONDS}".encode()),
        ]


@dataclass(frozen=True)
class Shared:
    """What the round trip learnt besides the decisions (None when Redis did not answer)."""

    data_version: int | None
    key_epoch: int | None


class LocalWindows:
    """The same sliding log, in this process only (the fallback). Bounded: LRU over clients."""

    def __init__(self, max_clients: int = 10_000, clock=time.monotonic):
        self.logs: OrderedDict[str, deque[float]] = OrderedDict()
        self.max_clients = max_clients
        self.clock = clock

    def hit(self, identity: str, limit: int) -> Decision:
        now = self.clock()
        log = self.logs.pop(identity, None) or deque()
        while log and now - log[0] >= WINDOW_SECONDS:
            log.popleft()
        admitted = len(log) < limit
        if admitted:
            log.append(now)
        self.logs[identity] = log
        if len(self.logs) > self.max_clients:
            self.logs.popitem(last=False)
        frees = (log[0] + WINDOW_SECONDS - now) if log else WINDOW_SECONDS
        return Decision(admitted, limit, max(0, limit - len(log)), frees, shared=False)


class Limiter:
    def __init__(self, client: aioredis.Redis, workers: int | None = None, clock_offset_ms: int = 0):
        self.redis = client
        self.clock_offset_ms = clock_offset_ms  # tests only: Redis TIME cannot be set
        self.script = client.register_script(SCRIPT)
        self.workers = workers or int(os.environ.get("GPUBROKER_WEB_WORKERS", "1"))
        self.local = LocalWindows()
        self.redis_down_until = 0.0
        self.shared = Shared(None, None)
        self._batch: list[tuple[str, int, asyncio.Future]] = []
        self._flushing = False
        self._ids = itertools.count()
        self._member = f"{os.getpid()}-{time.time_ns()}"

    async def hit(self, identity: str, limit: int) -> Decision:
        """Count one request of `identity` against `limit` per window; say whether it may proceed."""
        if time.monotonic() < self.redis_down_until:
            return self.local.hit(identity, self._local_limit(limit))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._batch.append((identity, limit, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._start_flushing)
        return await future

    def _local_limit(self, limit: int) -> int:
        return max(1, limit // self.workers)

    def _start_flushing(self) -> None:
        asyncio.ensure_future(self._flush_while_waiting())

    async def _flush_while_waiting(self) -> None:
        """One call at a time, each taking every request that waits, until none waits."""
        try:
            while self._batch:
                batch, self._batch = self._batch, []
                await self._flush(batch)
        finally:
            self._flushing = False

    async def _flush(self, batch: list[tuple[str, int, asyncio.Future]]) -> None:
        keys = [VERSION_KEY, EPOCH_KEY, *(KEY_PREFIX + identity for identity, _, _ in batch)]
        args = [WINDOW_MS, f"{self._member}-{next(self._ids)}", self.clock_offset_ms, *(limit for _, limit, _ in batch)]
        try:
            out = await self.script(keys=keys, args=args)
        except (RedisError, OSError):
            self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            self.shared = Shared(None, None)
            for identity, limit, future in batch:
                if not future.done():
                    future.set_result(self.local.hit(identity, self._local_limit(limit)))
            return
        self.shared = Shared(_int(out[0]), _int(out[1]))
        for i, (_, limit, future) in enumerate(batch):
            admitted, used, frees = out[2 + 3 * i : 5 + 3 * i]
            if not future.done():
                future.set_result(Decision(bool(admitted), limit, max(0, limit - used), frees / 1000, shared=True))


def _int(raw: bytes | str) -> int:
    return int(raw) if raw not in (b"", "") else 0  # 0: never set
