"""Per-provider circuit breakers, health weights and call limits, shared through Redis.

Every Airflow worker and the webapp see the same breaker for a provider, so one vendor's outage
stops calls to it everywhere and never slows the others.

States (the seed's rules):
  CLOSED    -> OPEN       when at least 10 calls are in the window (the last 20) and >= 50% failed
  OPEN      -> HALF_OPEN  30 s after opening; while OPEN every call is refused
  HALF_OPEN -> CLOSED     after 3 successful trial calls
  HALF_OPEN -> OPEN       on any failed trial call
HALF_OPEN admits at most 3 trial calls at a time; callers beyond them are refused until a trial
ends (a trial that never reports back frees its slot after 600 s, the longest guarded task). The
outcome of a call admitted before the breaker's last transition is counted in the totals but does
not move the new state (it says nothing about the provider since then). Refused calls are counted.

How: each transition is ONE Lua script (`ADMIT` before a call, `RECORD` after it), loaded once and
run with EVALSHA, so concurrent workers cannot interleave; time is Redis `TIME`, read inside the
script, never a worker's clock. Keys, per provider: the hash `gpubroker:circuit:<provider>`
(state, opened_at, window, epoch, totals, latencies) and the sorted set `...:trials` (trial calls
in flight, scored by admission time); the set `gpubroker:circuits` names every provider with a breaker.

Weight (the gateway contract's rules, `provider_weight`): 0 while the provider is unhealthy (its
breaker OPEN, or its last 3 calls failed in a row), else the window's success rate x0.75 when its
vendor requests average above 1 s, x0.5 above 2 s, never below 0.1. `avg_latency` is that average:
the mean time the vendor took to answer its last 20 HTTP requests (`Breaker.request`, around each
request a sync or probe makes; a timeout or a refused connection is no answer, the breaker counts
it as a failed call). The weight orders the syncs (`gpubroker_provider.priority`).

Call limit: at most 50 of a provider's vendor requests are in flight at once, across every process
and machine (`Breaker.request`: the sorted set `...:calls`, scored by admission time; a request
that never reports back frees its slot after 120 s). One more is refused with `TooManyCalls`. With
Redis unreachable a request goes ahead uncounted (the CLI's; a sync's breaker needs Redis anyway).

Read side: `snapshot_all(client)` returns a `Snapshot` per provider in one round trip (a read-only
script): state, monotonic failures/successes/rejections totals, consecutive failures, weight,
avg_latency, opened_at (Unix seconds, Redis clock) and latency figures (a cumulative histogram over
every timed call, in seconds) for `provider_request_latency_seconds`.

Why not a library: pybreaker (the kept one with Redis storage) trips on N consecutive failures and
closes on one success; it has no failure-rate window, no success count and no trial limit in
HALF_OPEN, and it keeps time with each process's clock. aiobreaker and circuitbreaker are
per-process only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum

import redis

from gpubroker import settings

__all__ = ["Breaker", "CircuitOpen", "Snapshot", "State", "Ticket", "TooManyCalls", "provider_weight", "snapshot_all"]

WINDOW = 20  # calls judged while CLOSED (the newest); also how many request latencies are averaged
MIN_CALLS = 10
FAILURE_RATE = 0.5
OPEN_SECONDS = 30.0
TRIALS = 3  # concurrent trial calls admitted while HALF_OPEN
HALF_OPEN_SUCCESSES = 3
TRIAL_LEASE_SECONDS = 600.0  # a trial that never reports back frees its slot after this
SLOW_SECONDS = 2.0  # a provider whose requests average above this gets half weight
LATENCY_FACTORS = ((SLOW_SECONDS, 0.5), (1.0, 0.75))  # (average above, weight factor), the slowest first
WEIGHT_FLOOR = 0.1  # the least weight of a healthy provider
UNHEALTHY_AFTER = 3  # failed calls in a row that take a provider out of rotation (weight 0)
MAX_CALLS = 50  # vendor requests of one provider in flight at once, everywhere
CALL_LEASE_SECONDS = 120.0  # a request that never reports back frees its slot after this
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, histogram upper bounds

PREFIX = "gpubroker:circuit:"
REGISTRY = "gpubroker:circuits"
log = logging.getLogger(__name__)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(RuntimeError):
    """The provider's breaker refused the call (OPEN, or HALF_OPEN with every trial slot taken)."""


class TooManyCalls(RuntimeError):
    """MAX_CALLS requests to the provider are in flight already (in any process)."""


# --- the scripts: every rule lives here, once -------------------------------------------------
_PRELUDE = f"""
local MIN_CALLS, FAILURE_RATE, OPEN_SECONDS = {MIN_CALLS}, {FAILURE_RATE}, {OPEN_SECONDS}
local WINDOW, TRIALS, HALF_OPEN_SUCCESSES, LEASE = {WINDOW}, {TRIALS}, {HALF_OPEN_SUCCESSES}, {TRIAL_LEASE_SECONDS}
local BUCKETS = {{{", ".join(f"'{b:g}'" for b in LATENCY_BUCKETS)}}}

-- Redis's clock; `offset` is 0 in production (see Breaker.clock_offset)
local function clock(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(offset)
end

-- the state at time t: the stored state is closed or open; open turns half_open after OPEN_SECONDS
local function state_at(key, t)
  local state = redis.call('HGET', key, 'state') or 'closed'
  if state == 'open' and t - tonumber(redis.call('HGET', key, 'opened_at')) >= OPEN_SECONDS then
    return 'half_open'
  end
  return state
end
"""

# KEYS: hash, trials, registry; ARGV: offset, provider -> {admitted 0|1, epoch, trial token, state}
_ADMIT = (
    _PRELUDE
    + """
local key, trials = KEYS[1], KEYS[2]
local t = clock(ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
local state = state_at(key, t)
local epoch = redis.call('HGET', key, 'epoch') or '0'
if state == 'closed' then return {1, epoch, '', state} end
if state == 'half_open' then
  redis.call('ZREMRANGEBYSCORE', trials, '-inf', t - LEASE)
  if redis.call('ZCARD', trials) < TRIALS then
    local token = tostring(redis.call('HINCRBY', key, 'trial_seq', 1))
    redis.call('ZADD', trials, t, token)
    return {1, epoch, token, state}
  end
end
redis.call('HINCRBY', key, 'rejections_total', 1)
return {0, epoch, '', state}
"""
)

# KEYS: hash, trials, registry; ARGV: offset, provider, ok 1|0, latency seconds or '', epoch, token
# -> the state after the call
_RECORD = (
    _PRELUDE
    + """
local key, trials = KEYS[1], KEYS[2]
local t = clock(ARGV[1])
local ok, latency = ARGV[3] == '1', tonumber(ARGV[4])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('HINCRBY', key, ok and 'successes_total' or 'failures_total', 1)
if ok then redis.call('HSET', key, 'consecutive_failures', 0)
else redis.call('HINCRBY', key, 'consecutive_failures', 1) end
if latency then
  redis.call('HINCRBY', key, 'latency_count', 1)
  redis.call('HINCRBYFLOAT', key, 'latency_sum', latency)
  for _, bound in ipairs(BUCKETS) do
    if latency <= tonumber(bound) then redis.call('HINCRBY', key, 'latency_le:' .. bound, 1) end
  end
end

local function transition(state)  -- to open (now) or closed: a new epoch, an empty window, no trials
  redis.call('HINCRBY', key, 'epoch', 1)
  redis.call('HSET', key, 'state', state, 'window', '', 'half_open_successes', 0)
  if state == 'open' then redis.call('HSET', key, 'opened_at', t) end
  redis.call('DEL', trials)
  return state
end

local state = state_at(key, t)
if ARGV[5] ~= (redis.call('HGET', key, 'epoch') or '0') then return state end  -- admitted before a transition
if state == 'closed' then
  local window = string.sub((redis.call('HGET', key, 'window') or '') .. (ok and '1' or '0'), -WINDOW)
  local _, failures = string.gsub(window, '0', '')
  if #window >= MIN_CALLS and failures >= FAILURE_RATE * #window then return transition('open') end
  redis.call('HSET', key, 'window', window)
  return state
end
if state == 'half_open' then
  redis.call('ZREM', trials, ARGV[6])
  if not ok then return transition('open') end
  if redis.call('HINCRBY', key, 'half_open_successes', 1) >= HALF_OPEN_SUCCESSES then return transition('closed') end
end
return state
"""
)

# KEYS: calls, hash; ARGV: offset -> a token for the request, or '' when MAX_CALLS are in flight
_CALL = (
    _PRELUDE
    + f"""
local t = clock(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - {CALL_LEASE_SECONDS})
if redis.call('ZCARD', KEYS[1]) >= {MAX_CALLS} then return '' end
local token = tostring(redis.call('HINCRBY', KEYS[2], 'call_seq', 1))
redis.call('ZADD', KEYS[1], t, token)
return token
"""
)

# KEYS: calls, hash, registry; ARGV: provider, token, seconds the vendor took to answer or '' (no answer)
_CALLED = f"""
redis.call('ZREM', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  local recent = {{}}
  for value in string.gmatch(redis.call('HGET', KEYS[2], 'recent') or '', '%S+') do table.insert(recent, value) end
  table.insert(recent, ARGV[3])
  redis.call('HSET', KEYS[2], 'recent', table.concat(recent, ' ', math.max(1, #recent - {WINDOW} + 1)))
  redis.call('SADD', KEYS[3], ARGV[1])
end
"""

# KEYS: registry; ARGV: offset, providers... (none: every registered provider)
# -> {now, {provider, state, trials in flight, hash field, value, ...}, ...}
_READ = (
    "#!lua flags=no-writes\n"
    + _PRELUDE
    + f"""
local t = clock(ARGV[1])
local providers = {{}}
for i = 2, #ARGV do providers[#providers + 1] = ARGV[i] end
if #ARGV == 1 then providers = redis.call('SMEMBERS', KEYS[1]) end
local out = {{tostring(t)}}
for _, provider in ipairs(providers) do
  local key = '{PREFIX}' .. provider
  local entry = {{provider, state_at(key, t), redis.call('ZCOUNT', key .. ':trials', '(' .. (t - LEASE), '+inf')}}
  for _, item in ipairs(redis.call('HGETALL', key)) do entry[#entry + 1] = item end
  out[#out + 1] = entry
end
return out
"""
)


# --- the read side ---------------------------------------------------------------------------
def provider_weight(success_rate: float, avg_latency: float | None, healthy: bool) -> float:
    """The weight (0..1) of a provider: 0 while unhealthy, else its success rate times the factor of
    its average request latency (seconds; None: no request timed yet), never below WEIGHT_FLOOR."""
    if not healthy:
        return 0.0
    factor = next((f for above, f in LATENCY_FACTORS if avg_latency is not None and avg_latency > above), 1.0)
    return max(WEIGHT_FLOOR, success_rate * factor)


def _text(value: bytes | str | int) -> str:
    """A script's reply item as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Snapshot:
    """One provider's breaker as read at one instant of Redis's clock."""

    provider: str
    state: State = State.CLOSED
    failures_total: int = 0
    successes_total: int = 0
    rejections_total: int = 0
    consecutive_failures: int = 0  # failed calls since the last successful one
    weight: float = 1.0  # provider_weight
    opened_at: float | None = None  # Unix seconds (Redis clock) when the breaker last opened
    trials_in_flight: int = 0
    latency_count: int = 0  # timed calls (successful or not)
    latency_sum: float = 0.0  # seconds
    latency_buckets: tuple[tuple[float, int], ...] = tuple((b, 0) for b in LATENCY_BUCKETS)  # (le, calls)
    recent_latencies: tuple[float, ...] = ()  # how long the vendor took to answer its last requests, s, newest last

    @property
    def healthy(self) -> bool:
        """In rotation: the breaker is not OPEN and the last UNHEALTHY_AFTER calls did not all fail."""
        return self.state is not State.OPEN and self.consecutive_failures < UNHEALTHY_AFTER

    @property
    def avg_latency(self) -> float | None:
        """The moving average of the vendor's answer times (the last WINDOW requests), seconds."""
        return sum(self.recent_latencies) / len(self.recent_latencies) if self.recent_latencies else None

    @property
    def avg_latency_ms(self) -> int | None:
        return None if self.avg_latency is None else round(self.avg_latency * 1000)

    @classmethod
    def parse(cls, entry: list) -> Snapshot:
        provider, state, trials, *flat = map(_text, entry)
        fields = dict(zip(flat[::2], flat[1::2]))
        state = State(state)
        window = fields.get("window", "")
        recent = tuple(float(v) for v in fields.get("recent", "").split())
        rate = window.count("1") / len(window) if window else 1.0
        snapshot = cls(
            provider=provider,
            state=state,
            failures_total=int(fields.get("failures_total", 0)),
            successes_total=int(fields.get("successes_total", 0)),
            rejections_total=int(fields.get("rejections_total", 0)),
            consecutive_failures=int(fields.get("consecutive_failures", 0)),
            opened_at=float(fields["opened_at"]) if "opened_at" in fields else None,
            trials_in_flight=int(trials),
            latency_count=int(fields.get("latency_count", 0)),
            latency_sum=float(fields.get("latency_sum", 0)),
            latency_buckets=tuple((b, int(fields.get(f"latency_le:{b:g}", 0))) for b in LATENCY_BUCKETS),
            recent_latencies=recent,
        )
        return replace(snapshot, weight=provider_weight(rate, snapshot.avg_latency, snapshot.healthy))


def _read(client: redis.Redis, providers: Iterable[str] = (), clock_offset: float = 0.0) -> dict[str, Snapshot]:
    now, *entries = client.register_script(_READ)(keys=[REGISTRY], args=[clock_offset, *providers])
    return {snapshot.provider: snapshot for snapshot in map(Snapshot.parse, entries)}


def snapshot_all(client: redis.Redis, clock_offset: float = 0.0) -> dict[str, Snapshot]:
    """Every provider's breaker (those that ever saw a call), read in one round trip; read-only."""
    return _read(client, (), clock_offset)


# --- the write side --------------------------------------------------------------------------
@dataclass(frozen=True)
class Ticket:
    """An admitted call: the breaker epoch it was admitted in, and its trial slot (HALF_OPEN only)."""

    epoch: str
    trial: str = ""


class Breaker:
    """A provider's breaker in Redis.

    :param provider: the vendor slug.
    :param client: Redis client (default: `settings.REDIS_URL`).
    :param clock_offset: seconds added to Redis `TIME` inside the scripts. Always 0 in production;
        tests raise it to let the 30 s OPEN period pass without sleeping, while time still comes
        from Redis (the seam keeps the production path — one clock for every worker — unchanged).
    """

    def __init__(self, provider: str, client: redis.Redis | None = None, clock_offset: float = 0.0):
        self.provider = provider
        self.redis = client or _client(settings.REDIS_URL)
        self.clock_offset = clock_offset
        self.keys = [PREFIX + provider, f"{PREFIX}{provider}:trials", REGISTRY]
        self.calls = f"{PREFIX}{provider}:calls"
        self._admit = self.redis.register_script(_ADMIT)
        self._record = self.redis.register_script(_RECORD)
        self._call = self.redis.register_script(_CALL)
        self._called = self.redis.register_script(_CALLED)

    def snapshot(self) -> Snapshot:
        return _read(self.redis, [self.provider], self.clock_offset)[self.provider]

    def state(self) -> State:
        return self.snapshot().state

    def weight(self) -> float:
        return self.snapshot().weight

    def admit(self) -> Ticket:
        """Ask to make one call; raises CircuitOpen (and counts the rejection) when refused."""
        admitted, epoch, trial, state = map(_text, self._admit(keys=self.keys, args=[self.clock_offset, self.provider]))
        if admitted != "1":
            raise CircuitOpen(
                f"{self.provider}: circuit open after repeated failures; calls resume {OPEN_SECONDS:g} s after it opened"
                if state == State.OPEN
                else f"{self.provider}: circuit half-open and its {TRIALS} trial calls are in flight; try again shortly"
            )
        return Ticket(epoch, trial)

    def record(self, ticket: Ticket, success: bool, latency: float | None = None) -> State:
        """Report an admitted call's outcome (latency in seconds); returns the state after it."""
        args = [self.clock_offset, self.provider, int(success), "" if latency is None else repr(latency),
                ticket.epoch, ticket.trial]  # fmt: skip
        return State(_text(self._record(keys=self.keys, args=args)))

    def reset(self) -> None:
        self.redis.delete(*self.keys[:2], self.calls)
        self.redis.srem(REGISTRY, self.provider)

    @contextmanager
    def guard(self):
        """Run one provider call under the breaker: refused while OPEN, outcome and latency recorded."""
        ticket = self.admit()
        started = time.monotonic()
        try:
            yield
        except Exception:
            self.record(ticket, False, time.monotonic() - started)
            raise
        self.record(ticket, True, time.monotonic() - started)

    def call(self) -> str:
        """Take one of the provider's MAX_CALLS request slots (its token); TooManyCalls when none is free."""
        token = _text(self._call(keys=[self.calls, self.keys[0]], args=[self.clock_offset]))
        if not token:
            raise TooManyCalls(f"{MAX_CALLS} requests to {self.provider} are in flight already; try again shortly")
        return token

    def called(self, token: str, answered_in: float | None) -> None:
        """Free a request's slot; `answered_in`: seconds the vendor took to answer (None: it did not)."""
        args = [self.provider, token, "" if answered_in is None else repr(answered_in)]
        self._called(keys=[self.calls, self.keys[0], REGISTRY], args=args)

    @contextmanager
    def request(self) -> Iterator[None]:
        """One HTTP request to the vendor, in a slot (`call`); when the block ends normally (the vendor
        answered, whatever it said) the time it took joins the latencies the weight averages. Redis
        unreachable: the request goes ahead uncounted (a sync or probe cannot get here without Redis:
        its breaker admitted it; the CLI can)."""
        try:
            token = self.call()
        except redis.RedisError as error:
            log.warning("%s: request not counted, Redis unreachable: %s", self.provider, error)
            token = None
        if token is None:
            yield
            return
        started, answered_in = time.monotonic(), None
        try:
            yield
            answered_in = time.monotonic() - started
        finally:
            self.called(token, answered_in)


@functools.cache
def _client(url: str) -> redis.Redis:
    """One client (connection pool) per process and Redis URL: a request costs two round trips, no connection."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
