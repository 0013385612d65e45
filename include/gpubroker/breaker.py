"""Per-provider circuit breakers and health weights, shared through Redis.

Every Airflow worker and the webapp see the same breaker for a provider, so one vendor's outage
stops calls to it everywhere and never slows the others.

States (the seed's properties 4, 5, 9, 11, 18):
  CLOSED    -> OPEN       when at least 10 of the last calls are recorded and >= 50% failed
  OPEN      -> HALF_OPEN  30 s after opening; while OPEN no call is allowed
  HALF_OPEN -> CLOSED     after 3 successes in a row
  HALF_OPEN -> OPEN       on any failure

Why not a library: pybreaker (the kept one with Redis storage) trips on N consecutive failures and
closes on one success; it has no failure-rate window and no success count for HALF_OPEN. The rules
above are a small pure state machine (`BreakerState`), persisted with a Redis optimistic
transaction so concurrent workers never lose an update.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

import redis

from gpubroker import settings

WINDOW = 20  # outcomes kept while CLOSED
MIN_CALLS = 10
FAILURE_RATE = 0.5
OPEN_SECONDS = 30.0
HALF_OPEN_SUCCESSES = 3
SLOW_SECONDS = 2.0  # a provider whose recent successful calls average above this gets half weight


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(RuntimeError):
    """The provider's breaker is open: the call was not made."""


@dataclass(frozen=True)
class BreakerState:
    """One provider's breaker: a pure value; transitions return a new state."""

    state: State = State.CLOSED
    outcomes: tuple[bool, ...] = ()  # recent call results, newest last (True = success)
    opened_at: float | None = None
    half_open_successes: int = 0
    latencies: tuple[float, ...] = field(default=())  # recent successful call latencies, seconds

    def at(self, now: float) -> BreakerState:
        """The state as of `now`: an OPEN breaker turns HALF_OPEN once its 30 s are over."""
        if self.state is State.OPEN and now - (self.opened_at or 0) >= OPEN_SECONDS:
            return replace(self, state=State.HALF_OPEN, half_open_successes=0)
        return self

    def allows_call(self, now: float) -> bool:
        return self.at(now).state is not State.OPEN

    def record(self, success: bool, now: float, latency: float | None = None) -> BreakerState:
        current = self.at(now)
        latencies = current.latencies
        if success and latency is not None:
            latencies = (*latencies, latency)[-WINDOW:]
        if current.state is State.OPEN:  # a call that raced the opening: keep the breaker open
            return replace(current, latencies=latencies)
        if current.state is State.HALF_OPEN:
            if not success:
                return BreakerState(State.OPEN, (), now, 0, latencies)
            if current.half_open_successes + 1 >= HALF_OPEN_SUCCESSES:
                return BreakerState(State.CLOSED, (), None, 0, latencies)
            return replace(current, half_open_successes=current.half_open_successes + 1, latencies=latencies)
        outcomes = (*current.outcomes, success)[-WINDOW:]
        failures = outcomes.count(False)
        if len(outcomes) >= MIN_CALLS and failures >= FAILURE_RATE * len(outcomes):
            return BreakerState(State.OPEN, (), now, 0, latencies)
        return replace(current, outcomes=outcomes, latencies=latencies)

    def weight(self, now: float) -> float:
        """Routing weight 0..1: 0 while OPEN, the recent success rate, halved when slow."""
        current = self.at(now)
        if current.state is State.OPEN:
            return 0.0
        rate = current.outcomes.count(True) / len(current.outcomes) if current.outcomes else 1.0
        slow = bool(current.latencies) and sum(current.latencies) / len(current.latencies) > SLOW_SECONDS
        return rate / 2 if slow else rate

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> BreakerState:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            State(data["state"]), tuple(data["outcomes"]), data["opened_at"],
            data["half_open_successes"], tuple(data["latencies"]),
        )  # fmt: skip


class Breaker:
    """A provider's breaker, persisted in Redis at `gpubroker:breaker:<provider>`."""

    def __init__(self, provider: str, client: redis.Redis | None = None, clock: Callable[[], float] = time.time):
        self.provider = provider
        self.key = f"gpubroker:breaker:{provider}"
        self.redis = client or redis.Redis.from_url(settings.REDIS_URL)
        self.clock = clock

    def state(self) -> BreakerState:
        return BreakerState.from_json(self.redis.get(self.key)).at(self.clock())

    def allows_call(self) -> bool:
        return self.state().allows_call(self.clock())

    def record(self, success: bool, latency: float | None = None) -> BreakerState:
        """Apply one outcome atomically (WATCH/MULTI: retried if another worker wrote meanwhile)."""

        def apply(pipe: redis.client.Pipeline) -> None:
            current = BreakerState.from_json(pipe.get(self.key))
            updated = current.record(success, self.clock(), latency)
            pipe.multi()
            pipe.set(self.key, updated.to_json())

        self.redis.transaction(apply, self.key)
        return self.state()

    def weight(self) -> float:
        return self.state().weight(self.clock())

    def reset(self) -> None:
        self.redis.delete(self.key)

    @contextmanager
    def guard(self):
        """Run one provider call under the breaker: refused while OPEN, outcome and latency recorded."""
        if not self.allows_call():
            raise CircuitOpen(f"{self.provider}: circuit open after repeated failures; retrying after {OPEN_SECONDS:g} s")
        started = time.monotonic()
        try:
            yield
        except Exception:
            self.record(False)
            raise
        self.record(True, time.monotonic() - started)
