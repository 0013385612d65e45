"""Circuit breaker state machine: Hypothesis against an independent reference model, on real Redis."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gpubroker import breaker
from gpubroker import settings as gb_settings
from gpubroker.breaker import Breaker, CircuitOpen, State

REDIS = redis.Redis.from_url(gb_settings.REDIS_URL)


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Reference:
    """The rules as the issue states them, written independently of gpubroker.breaker."""

    def __init__(self):
        self.state, self.window, self.opened_at, self.probes = "closed", [], None, 0

    def tick(self, now):
        if self.state == "open" and now - self.opened_at >= 30:
            self.state, self.probes = "half_open", 0

    def call(self, ok, now):
        self.tick(now)
        if self.state == "open":
            return
        if self.state == "half_open":
            if not ok:
                self.state, self.opened_at = "open", now
            else:
                self.probes += 1
                if self.probes == 3:
                    self.state, self.window = "closed", []
            return
        self.window = (self.window + [ok])[-20:]
        if len(self.window) >= 10 and self.window.count(False) * 2 >= len(self.window):
            self.state, self.opened_at, self.window = "open", now, []


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = Clock()
        self.breaker = Breaker(f"test-{uuid.uuid4()}", REDIS, self.clock)
        self.model = Reference()

    @rule(ok=st.booleans())
    def call(self, ok):
        allowed = self.breaker.allows_call()
        self.model.tick(self.clock.now)
        assert allowed == (self.model.state != "open")  # no calls to the provider while OPEN
        if allowed:
            self.breaker.record(ok, latency=0.1)
            self.model.call(ok, self.clock.now)

    @rule(seconds=st.floats(0, 45))
    def wait(self, seconds):
        self.clock.now += seconds

    @invariant()
    def same_state_as_the_reference(self):
        self.model.tick(self.clock.now)
        assert self.breaker.state().state.value == self.model.state

    def teardown(self):
        self.breaker.reset()


TestBreakerStateMachine = BreakerMachine.TestCase
TestBreakerStateMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def fresh(clock=None) -> Breaker:
    return Breaker(f"test-{uuid.uuid4()}", REDIS, clock or Clock())


def test_opens_at_half_failures_over_ten_calls_and_refuses_calls():
    b = fresh()
    for ok in [True] * 5 + [False] * 4:
        b.record(ok)
    assert b.state().state is State.CLOSED  # 9 calls: not enough to judge
    b.record(False)
    assert b.state().state is State.OPEN
    with pytest.raises(CircuitOpen, match="circuit open"):
        with b.guard():
            raise AssertionError("the provider must not be called while OPEN")
    b.reset()


def test_half_open_after_30s_closes_after_three_successes():
    clock = Clock()
    b = fresh(clock)
    for _ in range(10):
        b.record(False)
    clock.now += 29.9
    assert not b.allows_call()
    clock.now += 0.1
    assert b.state().state is State.HALF_OPEN
    for expected in (State.HALF_OPEN, State.HALF_OPEN, State.CLOSED):
        with b.guard():
            pass
        assert b.state().state is expected
    b.reset()


def test_slow_provider_gets_half_weight():
    b = fresh()
    for _ in range(4):
        b.record(True, latency=2.5)
    assert b.weight() == 0.5
    fast = fresh()
    fast.record(True, latency=0.2)
    assert fast.weight() == 1.0
    b.reset(), fast.reset()


def test_concurrent_workers_lose_no_outcome():
    b = fresh()
    threads = [threading.Thread(target=lambda: [b.record(True) for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(b.state().outcomes) == min(20, breaker.WINDOW)  # 20 successes recorded, none lost
    b.reset()
