"""Sliding-window rate limits, shared by every worker through Redis, atomic, with a local fallback.

Each client has a log of the times its admitted requests arrived (a Redis sorted set, see SCRIPT); a
request is admitted when fewer than `limit` of them lie in the last 60 s, so the window slides with every
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

Leases, for the plans allowing at least `LEASE_MIN_LIMIT` a window (enterprise, unlimited): a busy
client's requests would each still cost a share of a round trip, which is most of a cached answer's
price. So the call for such a client takes several slots at once (at most `limit // LEASE_SHARE`,
never more than the window has free), logged `LEASE_SECONDS` ahead of now, and this worker admits
the client's next requests from them without asking Redis, for at most `LEASE_SECONDS`. The window
stays exact in what it admits (a slot is one request; the slots a lease did not use are given back
in the call that takes the next one) and errs only strict: a leased slot leaves the window up to
`LEASE_SECONDS` late, and slots of a client that stopped stay counted until they age out. A lease's
size follows the client: doubled when used up in time, cut to what was used when it expired. What
it costs: requests admitted from a lease see the data version and key epoch of the call that took
it, so for such a client a landing or a revocation takes effect within `LEASE_SECONDS`.

Redis down: each worker falls back to its own log with `limit // workers` (at least 1): never unlimited.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.plans import WINDOW_SECONDS

WINDOW_MS = WINDOW_SECONDS * 1000
VERSION_KEY = "gpubroker:cache:version"  # bumped by every landing (gpubroker.cache.bump_version)
EPOCH_KEY = "gpubroker:keys:epoch"  # bumped when a key is revoked
KEY_PREFIX = "gpubroker:ratelimit:"
REDIS_RETRY_SECONDS = 1.0  # after a Redis failure, use the local limiter this long before trying again
LEASE_MIN_LIMIT = 1000  # plans allowing this many requests a window or more take slots ahead (leases)
LEASE_SHARE = 100  # a lease holds at most this fraction of the limit (1%)
LEASE_SECONDS = 0.05  # a lease's lifetime: the longest a leased request's view of Redis may be old

# The log of a client: a sorted set of `name|slots` members scored by time (a request is one slot, a
# lease several), and beside it the sum of their slots (`<key>:slots`), so a lease costs one member.
# KEYS: version, epoch, then per request its log and its sum. ARGV: window ms, a batch-unique member
# prefix, a clock offset in ms (0; tests move time with it, as Redis's clock cannot be set), the
# lease lifetime in ms, then 4 per request: its limit; the slots it wants (1: this request; more: a
# lease, logged a lease lifetime ahead); the member of the client's last lease on this worker ('' for
# none) and how many of its slots it did not use (given back first). Returns version, epoch, then
# (slots granted, used, ms until a slot frees) per request.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local window, lease = tonumber(ARGV[1]), tonumber(ARGV[4])
local out = {redis.call('GET', KEYS[1]) or '', redis.call('GET', KEYS[2]) or ''}
-- a member's slots (1: a request logged before leases, without a count)
local function slots(member) return tonumber(string.match(member, '|(%d+)$')) or 1 end
local function logged(log)
  local n = 0
  for _, member in ipairs(redis.call('ZRANGE', log, 0, -1)) do n = n + slots(member) end
  return n
end
for r = 0, #KEYS / 2 - 2 do
  local log, sum, a = KEYS[3 + 2 * r], KEYS[4 + 2 * r], 5 + 4 * r
  local limit, want, last, unused = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
  local used = tonumber(redis.call('GET', sum) or '-1')
  if redis.call('EXISTS', log) == 0 then used = 0 elseif used < 0 then used = logged(log) end  -- one was lost
  if last ~= '' and unused > 0 then
    local score = redis.call('ZSCORE', log, last)
    if score then
      redis.call('ZREM', log, last)
      local kept = slots(last) - unused
      if kept > 0 then redis.call('ZADD', log, score, (string.gsub(last, '|%d+$', '|' .. kept))) end
      used = used - unused
    end
  end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', log, '-inf', now - window)) do used = used - slots(member) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  used = math.max(0, used)
  local granted = math.max(0, math.min(want, limit - used))
  if granted > 0 then
    local stamp = now
    if want > 1 then stamp = now + lease end
    redis.call('ZADD', log, stamp, ARGV[2] .. ':' .. r .. '|' .. granted)
    used = used + granted
  end
  redis.call('SET', sum, used, 'PX', window + lease)
  redis.call('PEXPIRE', log, window + lease)
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local frees = window
  if oldest[2] then frees = tonumber(oldest[2]) + window - now end
  out[#out + 1] = granted
  out[#out + 1] = used
  out[#out + 1] = frees
end
return out
"""


class Decision(NamedTuple):  # a NamedTuple: made for every request, ~5x cheaper than a frozen dataclass
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
        limit, policy = _plan_headers(self.limit)
        reset = str(max(0, math.ceil(self.reset_seconds))).encode()
        return [limit, (b"ratelimit-remaining", str(self.remaining).encode()), (b"ratelimit-reset", reset), policy]


@lru_cache(maxsize=64)  # one per plan's limit (and per reduced limit of the Redis-down fallback)
def _plan_headers(limit: int) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return (b"ratelimit-limit", str(limit).encode()), (b"ratelimit-policy", f"{limit};w={WINDOW_SECONDS}".encode())


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


@dataclass
class Lease:
    """Slots of one client's shared window that this worker took ahead of its requests."""

    member: str  # its member in the client's log (`name|size`)
    size: int
    left: int  # slots not used yet: the last `left` of them
    limit: int
    used: int  # the window's count when the lease was taken, its own slots included
    reset_seconds: float
    expires: float  # monotonic seconds
    renewed: asyncio.Future | None = field(default=None, repr=False)  # set while the next one is taken

    def take(self) -> Decision | None:
        """A slot for one request, or None when the lease is used up or too old."""
        if not self.left or time.monotonic() >= self.expires:
            return None
        self.left -= 1
        return Decision(True, self.limit, self.limit - self.used + self.left, self.reset_seconds, shared=True)

    def next_size(self) -> int:
        """Doubled when it was used up in about its lifetime, else what it served (1 for a slow client)."""
        if not self.left and time.monotonic() < self.expires + LEASE_SECONDS:
            return self.size * 2
        return max(1, self.size - self.left)

    def unused(self) -> tuple[str, int]:
        """The slots to give back: the lease's member and how many ('' when none)."""
        return (self.member, self.left) if self.left else ("", 0)


class Limiter:
    def __init__(self, client: aioredis.Redis, workers: int | None = None, clock_offset_ms: int = 0):
        self.redis = client
        self.clock_offset_ms = clock_offset_ms  # tests only: Redis TIME cannot be set
        self.script = client.register_script(SCRIPT)
        self.workers = workers or int(os.environ.get("GPUBROKER_WEB_WORKERS", "1"))
        self.local = LocalWindows()
        self.redis_down_until = 0.0
        self.shared = Shared(None, None)
        self.leases: dict[str, Lease] = {}
        self._batch: list[tuple[str, int, int, Lease | None, asyncio.Future]] = []
        self._flushing = False
        self._ids = itertools.count()
        self._member = f"{os.getpid()}-{time.time_ns()}"

    def leased(self, identity: str) -> Decision | None:
        """A slot of this worker's lease for `identity`, with no await; None when it has none to give."""
        lease = self.leases.get(identity)
        if lease is None or time.monotonic() < self.redis_down_until:
            return None
        return lease.take()

    async def hit(self, identity: str, limit: int) -> Decision:
        """Count one request of `identity` against `limit` per window; say whether it may proceed."""
        if time.monotonic() < self.redis_down_until:
            return self.local.hit(identity, self._local_limit(limit))
        if limit < LEASE_MIN_LIMIT:
            return (await self._ask(identity, limit, 1, None))[0]
        while (lease := self.leases.get(identity)) is not None:
            if (decision := lease.take()) is not None:
                return decision
            if lease.renewed is None or lease.renewed.done():
                break
            # another request of this client is taking the next lease: share it (shielded: a waiter
            # cancelled must not cancel the others' wait)
            await asyncio.shield(lease.renewed)
        return await self._lease(identity, limit, lease)

    async def _lease(self, identity: str, limit: int, old: Lease | None) -> Decision:
        """Take a lease for this request and the client's next ones (giving back the old one's rest)."""
        renewed = asyncio.get_running_loop().create_future()
        if old is not None:
            old.renewed = renewed
        want = min(old.next_size() if old else 1, max(1, limit // LEASE_SHARE))
        asked_at = time.monotonic()  # Redis logs the slots after this: the lease must end before they do
        try:
            decision, member, granted = await self._ask(identity, limit, want, old)
            if old is not None:
                old.left = 0  # given back
            if granted:
                used = limit - decision.remaining + granted - 1  # in Redis: the lease's slots included
                self.leases[identity] = Lease(member, granted, granted - 1, limit, used, decision.reset_seconds,
                                              asked_at + LEASE_SECONDS)  # fmt: skip
            else:
                self.leases.pop(identity, None)
            if len(self.leases) > self.local.max_clients:
                self._forget_expired_leases()
            return decision
        finally:
            if not renewed.done():
                renewed.set_result(None)

    def _forget_expired_leases(self) -> None:
        now = time.monotonic()
        for identity, lease in list(self.leases.items()):
            if now >= lease.expires and (lease.renewed is None or lease.renewed.done()):
                del self.leases[identity]

    async def _ask(self, identity: str, limit: int, want: int, old: Lease | None) -> tuple[Decision, str, int]:
        """Ask Redis, in the next batch, for `want` slots (after giving back `old`'s unused ones): the
        decision for this request, and the granted slots' member in the log and their count (0 when
        refused, or when the local fallback decided)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._batch.append((identity, limit, want, old, future))
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

    async def _flush(self, batch: list[tuple[str, int, int, Lease | None, asyncio.Future]]) -> None:
        keys, prefix = [VERSION_KEY, EPOCH_KEY], f"{self._member}-{next(self._ids)}"
        args = [WINDOW_MS, prefix, self.clock_offset_ms, int(LEASE_SECONDS * 1000)]
        for identity, limit, want, old, _ in batch:
            keys += [KEY_PREFIX + identity, KEY_PREFIX + identity + ":slots"]
            args += [limit, want, *(old.unused() if old else ("", 0))]
        try:
            out = await self.script(keys=keys, args=args)
        except (RedisError, OSError):
            self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            self.shared = Shared(None, None)
            self.leases.clear()  # their slots leave the window by themselves: stricter for a minute, never looser
            for identity, limit, _, _, future in batch:
                if not future.done():
                    future.set_result((self.local.hit(identity, self._local_limit(limit)), "", 0))
            return
        self.shared = Shared(_int(out[0]), _int(out[1]))
        for i, (_, limit, _, _, future) in enumerate(batch):
            granted, used, frees = out[2 + 3 * i : 5 + 3 * i]
            remaining = limit - used + max(0, granted - 1)  # a lease's unused slots are the client's still
            if not future.done():
                decision = Decision(granted > 0, limit, max(0, remaining), frees / 1000, shared=True)
                future.set_result((decision, f"{prefix}:{i}|{granted}", granted))


def _int(raw: bytes | str) -> int:
    return int(raw) if raw not in (b"", "") else 0  # 0: never set
