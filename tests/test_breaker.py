"""Circuit breaker on the real Redis: a Hypothesis state machine against an independent reference
model (state, totals and the weight), the HALF_OPEN trial limit and the per-provider request limit
under concurrent processes, and the snapshot the webapp reads."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from gpubroker.breaker import Breaker, CircuitOpen, State, TooManyCalls, snapshot_all
from tests.conftest import ISOLATED_REDIS

# The seed's rules, stated here and never imported from gpubroker.breaker:
JUDGED_FROM = 10  # calls in the window before the breaker may open...
FAILED_SHARE = 0.5  # ...when at least this share of them failed
OPEN_FOR = 30  # seconds during which every call is refused
MAX_TRIALS = 3  # trial calls in flight at once while half-open
CLOSE_AFTER = 3  # successful trials that close it
# The gateway contract's weight rules (over the mean answer time of the vendor's recent requests):
FACTORS = [(2.0, 0.5), (1.0, 0.75)]  # averaging above 2 s: x0.5; above 1 s: x0.75
FLOOR = 0.1  # the least weight of a provider in rotation
OUT_AFTER = 3  # failed calls in a row that take a provider out of rotation (weight 0)
MAX_IN_FLIGHT = 50  # requests to one provider at once, in every process
# ...and our design choices, from the module docstring:
WINDOW = 20  # the newest calls judged while closed; also the answer times averaged
LEASE = 600  # seconds after which a trial that never reported back frees its slot
CALL_LEASE = 120  # ... and a request that never reported back


class Reference:
    """The breaker's rules, written independently of gpubroker.breaker. Time is whole seconds."""

    def __init__(self):
        self.now = 0
        self.phase = 0  # +1 at every transition; a call's outcome only counts in the phase it started in
        self.stored, self.opened_at = "closed", None
        self.window: list[bool] = []
        self.trial_successes = 0
        self.trials: dict[int, int] = {}  # trial call -> admitted at
        self.failures = self.successes = self.rejections = 0
        self.in_a_row = 0  # failed calls since the last success
        self.recent: list[float] = []  # the vendor's answer times, newest last
        self.next_call = 0

    def state(self) -> str:
        if self.stored == "open" and self.now - self.opened_at >= OPEN_FOR:
            return "half_open"
        return self.stored

    def admit(self) -> tuple[int, int] | None:
        """(phase, call) when the call may go ahead, None when refused."""
        self.next_call += 1
        if self.state() == "half_open":
            self.trials = {c: at for c, at in self.trials.items() if self.now - at < LEASE}
            if len(self.trials) < MAX_TRIALS:
                self.trials[self.next_call] = self.now
                return self.phase, self.next_call
        elif self.state() == "closed":
            return self.phase, self.next_call
        self.rejections += 1
        return None

    def finish(self, call: tuple[int, int], ok: bool, latency: float) -> None:
        phase, number = call
        if ok:
            self.successes += 1
        else:
            self.failures += 1
        self.in_a_row = 0 if ok else self.in_a_row + 1
        if phase != self.phase:
            return
        if self.state() == "closed":
            self.window = (self.window + [ok])[-WINDOW:]
            if len(self.window) >= JUDGED_FROM and self.window.count(False) >= FAILED_SHARE * len(self.window):
                self.move_to("open")
        elif self.state() == "half_open":
            self.trials.pop(number, None)
            if not ok:
                self.move_to("open")
            else:
                self.trial_successes += 1
                if self.trial_successes == CLOSE_AFTER:
                    self.move_to("closed")

    def move_to(self, state: str) -> None:
        self.phase += 1
        self.stored, self.window, self.trial_successes, self.trials = state, [], 0, {}
        if state == "open":
            self.opened_at = self.now

    def answered(self, seconds: float) -> None:
        self.recent = (self.recent + [seconds])[-WINDOW:]

    def weight(self) -> float:
        if self.state() == "open" or self.in_a_row >= OUT_AFTER:
            return 0.0
        rate = self.window.count(True) / len(self.window) if self.window else 1.0
        mean = sum(self.recent) / len(self.recent) if self.recent else 0.0
        return max(FLOOR, rate * next((f for above, f in FACTORS if mean > above), 1.0))


class BreakerMachine(RuleBasedStateMachine):
    """Calls start, finish (in any order, several in flight), the vendor answers requests in chosen
    times and time passes; the breaker in Redis must agree with the reference after every step.

    Time: the scripts read Redis TIME, which a test cannot set, so the breaker's `clock_offset`
    (0 in production) moves Redis time forward by the model's seconds. Waits are whole seconds and a
    run takes far less than a second of real time, so real time never tips a comparison the model
    makes at a whole second (29 s stays < 30 s; 30 s is >= 30 s on both sides)."""

    def __init__(self, client: redis.Redis):
        super().__init__()
        self.breaker = Breaker(f"test-{uuid.uuid4()}", client)
        self.model = Reference()
        self.in_flight: list[tuple] = []  # (ticket, model call)

    @rule()
    def start_call(self):
        call = self.model.admit()
        try:
            ticket = self.breaker.admit()
        except CircuitOpen:
            assert call is None, "refused a call the reference admits"
            return
        assert call is not None, f"admitted a call while the reference is {self.model.state()}"
        self.in_flight.append((ticket, call))

    @rule(n=st.integers(1, 10), ok=st.booleans(), latency=st.sampled_from([0.1, 3.0]))
    def run_calls(self, n, ok, latency):
        """n calls one after another, each finishing before the next starts (reaches OPEN in few steps)."""
        for _ in range(n):
            self.start_call()
            if self.in_flight:
                self.finish_call(-1, ok, latency)

    @precondition(lambda self: self.in_flight)
    @rule(which=st.integers(0, 100), ok=st.booleans(), latency=st.sampled_from([0.1, 3.0]))
    def finish_call(self, which, ok, latency):
        ticket, call = self.in_flight.pop(which % len(self.in_flight))
        self.model.finish(call, ok, latency)
        assert self.breaker.record(ticket, ok, latency).value == self.model.state()

    @rule(seconds=st.sampled_from([0.3, 1.0, 1.5, 2.0, 2.5, 6.0]), answered=st.booleans())
    def request(self, seconds, answered):
        """One vendor request in a slot: answered in `seconds`, or not at all (no answer time)."""
        self.breaker.called(self.breaker.call(), seconds if answered else None)
        if answered:
            self.model.answered(seconds)

    @rule(seconds=st.one_of(st.sampled_from([1, OPEN_FOR - 1, OPEN_FOR, LEASE - 1, LEASE]), st.integers(0, 45)))
    def wait(self, seconds):
        self.model.now += seconds
        self.breaker.clock_offset = self.model.now

    @invariant()
    def agrees_with_the_reference(self):
        snap = self.breaker.snapshot()
        assert snap.state.value == self.model.state()
        assert (snap.failures_total, snap.successes_total, snap.rejections_total) == (
            self.model.failures, self.model.successes, self.model.rejections)  # fmt: skip
        assert snap.weight == pytest.approx(self.model.weight())
        assert snap.healthy == (self.model.weight() > 0)
        assert snap.recent_latencies == tuple(self.model.recent)


def test_breaker_follows_the_reference_model(isolated_redis):
    """**Feature: provider-api-gateway, Property 4: Circuit Breaker State Machine** — for any sequence
    of calls (overlapping, finishing in any order), outcomes, answer times and waits, the breaker in
    Redis is in the reference's state, with its totals and weight (150 examples of up to 50 steps)."""
    run_state_machine_as_test(
        lambda: BreakerMachine(isolated_redis),
        settings=settings(max_examples=150, stateful_step_count=50, deadline=None),
    )


def opened(client: redis.Redis) -> Breaker:
    breaker = Breaker(f"test-{uuid.uuid4()}", client)
    for _ in range(JUDGED_FROM):
        breaker.record(breaker.admit(), False)
    assert breaker.state() is State.OPEN
    return breaker


def test_opens_at_half_failures_over_ten_calls_and_refuses_calls_counting_them(isolated_redis):
    breaker = Breaker("vastai", isolated_redis)
    for ok in [True] * 5 + [False] * 4:
        breaker.record(breaker.admit(), ok)
    assert breaker.state() is State.CLOSED  # 9 calls: not enough to judge
    with pytest.raises(ZeroDivisionError):
        with breaker.guard():
            1 / 0  # the failure is recorded and re-raised
    assert breaker.state() is State.OPEN
    for _ in range(2):
        with pytest.raises(CircuitOpen, match="vastai: circuit open"):
            with breaker.guard():
                raise AssertionError("the provider must not be called while OPEN")
    assert breaker.snapshot().rejections_total == 2


def test_half_open_after_30s_admits_three_trials_and_closes_after_three_successes(isolated_redis):
    breaker = opened(isolated_redis)
    breaker.clock_offset = OPEN_FOR - 1
    with pytest.raises(CircuitOpen):
        breaker.admit()
    breaker.clock_offset = OPEN_FOR
    assert breaker.state() is State.HALF_OPEN
    trials = [breaker.admit() for _ in range(MAX_TRIALS)]
    with pytest.raises(CircuitOpen, match="trial calls are in flight"):
        breaker.admit()
    assert [breaker.record(t, True, 0.2) for t in trials] == [State.HALF_OPEN, State.HALF_OPEN, State.CLOSED]


def test_a_failed_trial_reopens_and_late_outcomes_do_not_move_the_new_state(isolated_redis):
    breaker = Breaker(f"test-{uuid.uuid4()}", isolated_redis)
    slow_call = breaker.admit()  # admitted while CLOSED, reports after the breaker opened
    for _ in range(JUDGED_FROM):
        breaker.record(breaker.admit(), False)
    breaker.clock_offset = OPEN_FOR
    assert breaker.record(slow_call, False) is State.HALF_OPEN  # counted, but says nothing about now
    assert breaker.record(breaker.admit(), False) is State.OPEN  # a failed trial
    assert breaker.snapshot().failures_total == JUDGED_FROM + 2


def test_time_is_redis_time(isolated_redis):
    breaker = opened(isolated_redis)
    seconds, micros = isolated_redis.time()
    assert abs(breaker.snapshot().opened_at - (seconds + micros / 1e6)) < 1


def answered(breaker: Breaker, *seconds: float) -> Breaker:
    for s in seconds:
        breaker.called(breaker.call(), s)
    return breaker


@pytest.mark.parametrize(("seconds", "weight"), [((0.4, 0.6), 1.0), ((0.8, 1.2), 1.0), ((1.0, 1.2), 0.75),
                                                 ((1.9, 2.1), 0.75), ((2.0, 2.2), 0.5), ((6.0,), 0.5)])  # fmt: skip
def test_answers_averaging_over_1_s_cost_a_quarter_of_the_weight_over_2_s_half(isolated_redis, seconds, weight):
    breaker = answered(Breaker(f"test-{uuid.uuid4()}", isolated_redis), *seconds)
    snap = breaker.snapshot()
    assert (snap.weight, snap.avg_latency_ms) == (weight, round(1000 * sum(seconds) / len(seconds)))


def test_the_average_moves_with_the_last_20_answers_and_unanswered_requests_do_not_count(isolated_redis):
    breaker = answered(Breaker(f"test-{uuid.uuid4()}", isolated_redis), *[3.0] * WINDOW)
    assert breaker.weight() == 0.5
    breaker.called(breaker.call(), None)  # a timeout: the breaker's business, not an answer time
    assert breaker.snapshot().avg_latency_ms == 3000
    answered(breaker, *[0.2] * (WINDOW - 1))
    assert (breaker.weight(), breaker.snapshot().avg_latency_ms) == (1.0, round((3.0 + 19 * 0.2) / 20 * 1000))


def test_weight_is_the_success_rate_slowed_at_least_a_tenth_and_0_after_3_failures_in_a_row(isolated_redis):
    breaker = Breaker(f"test-{uuid.uuid4()}", isolated_redis)
    outcome = []
    for ok in [False, False, False, True]:
        breaker.record(breaker.admit(), ok)
        snap = breaker.snapshot()
        outcome.append((snap.state, snap.healthy, snap.weight))
    assert outcome == [
        (State.CLOSED, True, FLOOR),  # none of 1 succeeded: the floor
        (State.CLOSED, True, FLOOR),
        (State.CLOSED, False, 0.0),  # 3 in a row: out of rotation, though too few calls to open
        (State.CLOSED, True, 0.25),  # 1 of 4 succeeded
    ]
    assert answered(breaker, 1.5).weight() == 0.25 * 0.75
    assert (opened(isolated_redis).weight(), opened(isolated_redis).snapshot().healthy) == (0.0, False)


def test_snapshot_all_reads_every_provider_with_totals_and_latency_histogram(isolated_redis):
    lambda_, vastai = Breaker("lambda", isolated_redis), Breaker("vastai", isolated_redis)
    for ok, latency in [(True, 0.07), (True, 0.3), (False, 4.0)]:
        lambda_.record(lambda_.admit(), ok, latency)
    vastai.record(vastai.admit(), True)  # an untimed call counts, without a latency
    snaps = snapshot_all(isolated_redis)
    assert set(snaps) == {"lambda", "vastai"}
    lam = snaps["lambda"]
    assert (lam.state, lam.successes_total, lam.failures_total, lam.rejections_total) == (State.CLOSED, 2, 1, 0)
    assert (lam.latency_count, lam.latency_sum) == (3, pytest.approx(4.37))
    buckets = dict(lam.latency_buckets)
    assert (buckets[0.05], buckets[0.1], buckets[0.5], buckets[5.0], buckets[30.0]) == (0, 1, 2, 3, 3)  # cumulative
    assert lam.recent_latencies == () and lam.weight == pytest.approx(2 / 3)  # no answer time: those are requests'
    assert (snaps["vastai"].successes_total, snaps["vastai"].latency_count) == (1, 0)
    lambda_.reset()
    assert set(snapshot_all(isolated_redis)) == {"vastai"}


def _race(provider: str, offset: float, start, results) -> None:
    breaker = Breaker(provider, redis.Redis.from_url(ISOLATED_REDIS), clock_offset=offset)
    start.wait()
    try:
        breaker.admit()
        results.put(True)
    except CircuitOpen:
        results.put(False)


def test_half_open_admits_at_most_three_of_many_concurrent_processes(isolated_redis):
    breaker = opened(isolated_redis)
    callers = 16
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(callers), ctx.Queue()
    processes = [ctx.Process(target=_race, args=(breaker.provider, OPEN_FOR, start, results)) for _ in range(callers)]
    for p in processes:
        p.start()
    admitted = [results.get(timeout=30) for _ in processes]
    for p in processes:
        p.join(10)
    assert admitted.count(True) == MAX_TRIALS
    breaker.clock_offset = OPEN_FOR
    snap = breaker.snapshot()
    assert (snap.state, snap.trials_in_flight, snap.rejections_total) == (State.HALF_OPEN, MAX_TRIALS, callers - MAX_TRIALS)


def _take_a_request_slot(provider: str, start, results) -> None:
    breaker = Breaker(provider, redis.Redis.from_url(ISOLATED_REDIS))
    start.wait()
    try:
        results.put(breaker.call())
    except TooManyCalls:
        results.put(None)


def test_at_most_50_requests_to_a_provider_are_in_flight_across_processes(isolated_redis):
    provider, callers = f"test-{uuid.uuid4()}", MAX_IN_FLIGHT + 14
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(callers), ctx.Queue()
    processes = [ctx.Process(target=_take_a_request_slot, args=(provider, start, results)) for _ in range(callers)]
    for p in processes:
        p.start()
    tokens = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(10)
    held = [t for t in tokens if t]
    assert len(held) == MAX_IN_FLIGHT
    breaker, other = Breaker(provider, isolated_redis), Breaker(f"test-{uuid.uuid4()}", isolated_redis)
    with pytest.raises(TooManyCalls, match=f"{MAX_IN_FLIGHT} requests to test-.* are in flight"):
        breaker.call()
    other.called(other.call(), 0.1)  # another provider is not held up
    breaker.called(held.pop(), 0.2)  # one answered: its slot is free again
    breaker.called(breaker.call(), 0.2)
    breaker.clock_offset = CALL_LEASE  # the 49 others never report back: their slots free after the lease
    assert len({breaker.call() for _ in range(MAX_IN_FLIGHT)}) == MAX_IN_FLIGHT
