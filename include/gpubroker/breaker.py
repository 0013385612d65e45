"""Per-provider circuit breakers and health weights, shared through Redis.

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

Read side: `snapshot_all(client)` returns a `Snapshot` per provider in one round trip (a read-only
script): state, monotonic failures/successes/rejections totals, weight (0..1: 0 while OPEN, else the
window's success rate, halved when the recent successful calls average above 2 s), opened_at (Unix
seconds, Redis clock) and latency figures (a cumulative histogram over every timed call, in seconds,
and the last 20 successful latencies) for `provider_request_latency_seconds`.

Why not a library: pybreaker (the kept one with Redis storage) trips on N consecutive failures and
closes on one success; it has no failure-rate window, no success count and no trial limit in
HALF_OPEN, and it keeps time with each process's clock. aiobreaker and circuitbreaker are
per-process only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import redis

from gpubroker import settings

__all__ = ["Breaker", "CircuitOpen", "Snapshot", "State", "Ticket", "snapshot_all"]

WINDOW = 20  # calls judged while CLOSED (the newest); also how many successful latencies are kept
MIN_CALLS = 10
FAILURE_RATE = 0.5
OPEN_SECONDS = 30.0
TRIALS = 3  # concurrent trial calls admitted while HALF_OPEN
HALF_OPEN_SUCCESSES = 3
TRIAL_LEASE_SECONDS = 600.0  # a trial that never reports back frees its slot after this
SLOW_SECONDS = 2.0  # a provider whose recent successful calls average above this gets half weight
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, histogram upper bounds

PREFIX = "gpubroker:circuit:"
REGISTRY = "gpubroker:circuits"


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(RuntimeError):
    """The provider's breaker refused the call (OPEN, or HALF_OPEN with every trial slot taken)."""


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
if latency then
  redis.call('HINCRBY', key, 'latency_count', 1)
  redis.call('HINCRBYFLOAT', key, 'latency_sum', latency)
  for _, bound in ipairs(BUCKETS) do
    if latency <= tonumber(bound) then redis.call('HINCRBY', key, 'latency_le:' .. bound, 1) end
  end
  if ok then
    local recent = {}
    for value in string.gmatch(redis.call('HGET', key, 'recent') or '', '%S+') do table.insert(recent, value) end
    table.insert(recent, ARGV[4])
    redis.call('HSET', key, 'recent', table.concat(recent, ' ', math.max(1, #recent - WINDOW + 1)))
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
    weight: float = 1.0
    opened_at: float | None = None  # Unix seconds (Redis clock) when the breaker last opened
    trials_in_flight: int = 0
    latency_count: int = 0  # timed calls (successful or not)
    latency_sum: float = 0.0  # seconds
    latency_buckets: tuple[tuple[float, int], ...] = tuple((b, 0) for b in LATENCY_BUCKETS)  # (le, calls)
    recent_latencies: tuple[float, ...] = ()  # the last successful calls, seconds, newest last

    @classmethod
    def parse(cls, entry: list) -> Snapshot:
        provider, state, trials, *flat = map(_text, entry)
        fields = dict(zip(flat[::2], flat[1::2]))
        state = State(state)
        window = fields.get("window", "")
        recent = tuple(float(v) for v in fields.get("recent", "").split())
        rate = window.count("1") / len(window) if window else 1.0
        slow = bool(recent) and sum(recent) / len(recent) > SLOW_SECONDS
        return cls(
            provider=provider,
            state=state,
            failures_total=int(fields.get("failures_total", 0)),
            successes_total=int(fields.get("successes_total", 0)),
            rejections_total=int(fields.get("rejections_total", 0)),
            weight=0.0 if state is State.OPEN else rate / 2 if slow else rate,
            opened_at=float(fields["opened_at"]) if "opened_at" in fields else None,
            trials_in_flight=int(trials),
            latency_count=int(fields.get("latency_count", 0)),
            latency_sum=float(fields.get("latency_sum", 0)),
            latency_buckets=tuple((b, int(fields.get(f"latency_le:{b:g}", 0))) for b in LATENCY_BUCKETS),
            recent_latencies=recent,
        )


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
        self.redis = client or redis.Redis.from_url(settings.REDIS_URL)
        self.clock_offset = clock_offset
        self.keys = [PREFIX + provider, f"{PREFIX}{provider}:trials", REGISTRY]
        self._admit = self.redis.register_script(_ADMIT)
        self._record = self.redis.register_script(_RECORD)

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
        self.redis.delete(*self.keys[:2])
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
