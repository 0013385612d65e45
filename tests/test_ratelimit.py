"""Plan-tier rate limits: the sliding window in the real Redis against an independent model.

The model is written here from the seed's numbers (free 10, pro 100, enterprise 1000, unlimited
100000 requests per sliding 60 s); it copies nothing from the implementation.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import ratelimit
from gateway.plans import LIMITS, Plan
from gateway.ratelimit import KEY_PREFIX, LEASE_SECONDS, VERSION_KEY, Limiter, LocalWindows
from tests.conftest import ISOLATED_REDIS

SEED_LIMITS = {"free": 10, "pro": 100, "enterprise": 1000, "unlimited": 100_000}
SEED_WINDOW = 60.0


class SlidingWindowModel:
    """A request is admitted when fewer than `limit` admitted requests arrived in the last 60 s."""

    def __init__(self):
        self.admitted: dict[str, list[float]] = {}

    def hit(self, who: str, limit: int, t: float) -> tuple[bool, int]:
        recent = [s for s in self.admitted.get(who, []) if t - s < SEED_WINDOW]
        ok = len(recent) < limit
        if ok:
            recent.append(t)
        self.admitted[who] = recent
        return ok, limit - len(recent)


def test_plans_are_the_seeds():
    assert {plan.value: limit for plan, limit in LIMITS.items()} == SEED_LIMITS


@pytest.fixture
def redis_url(isolated_redis) -> str:
    return ISOLATED_REDIS


# Times on a half-second grid: the real time a run takes (milliseconds) cannot move a request across
# the 60 s boundary, so Redis (real clock + offset) and the model (grid time) must agree exactly.
steps = st.lists(
    st.tuples(st.integers(0, 50).map(lambda half_seconds: half_seconds / 2), st.sampled_from(["a", "b"]),
              st.sampled_from(["free", "free", "pro"])),
    min_size=1, max_size=60,
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
async def test_redis_sliding_window_matches_the_model(redis_url, steps):
    """**Feature: provider-api-gateway, Property 8: Sliding Window Rate Limiting** — for any sequence of
    requests and waits, the Redis window admits exactly what a 60 s sliding window admits (no reset on
    minute boundaries), with the same remaining count and retry time."""
    client = aioredis.Redis.from_url(redis_url)
    limiter, model, run, t = Limiter(client), SlidingWindowModel(), uuid.uuid4().hex, 0.0
    try:
        for advance, who, plan in steps:
            t += advance
            limiter.clock_offset_ms = int(t * 1000)
            decision = await limiter.hit(f"{run}:{who}:{plan}", SEED_LIMITS[plan])
            admitted, remaining = model.hit(f"{who}:{plan}", SEED_LIMITS[plan], t)
            assert (decision.admitted, decision.remaining) == (admitted, remaining)
            assert decision.shared and decision.limit == SEED_LIMITS[plan]
            if not admitted:  # the client may retry once the oldest request leaves the window
                oldest = model.admitted[f"{who}:{plan}"][0]
                assert abs(decision.reset_seconds - (oldest + SEED_WINDOW - t)) < 0.5
                assert decision.retry_after >= 1 and isinstance(decision.retry_after, int)
    finally:
        await client.aclose()


@settings(max_examples=120, deadline=None)
@given(steps=steps)
def test_local_fallback_window_matches_the_model(steps):
    now = [0.0]
    local, model = LocalWindows(clock=lambda: now[0]), SlidingWindowModel()
    for advance, who, plan in steps:
        now[0] += advance
        decision = local.hit(f"{who}:{plan}", SEED_LIMITS[plan])
        assert (decision.admitted, decision.remaining) == model.hit(f"{who}:{plan}", SEED_LIMITS[plan], now[0])
        assert not decision.shared


@pytest.mark.parametrize("plan", list(Plan))
async def test_each_plan_admits_exactly_its_limit_in_one_moment(redis_url, plan):
    client = aioredis.Redis.from_url(redis_url)
    limiter, who, limit = Limiter(client), f"burst:{uuid.uuid4().hex}", SEED_LIMITS[plan.value]
    decisions = []
    for chunk in range(0, limit + 5, 2000):  # as concurrent requests arrive: batched into few round trips
        decisions += await asyncio.gather(*(limiter.hit(who, LIMITS[plan]) for _ in range(min(2000, limit + 5 - chunk))))
    await client.aclose()
    assert sum(d.admitted for d in decisions) == limit
    assert [d.admitted for d in decisions[-5:]] == [False] * 5


def test_workers_share_one_window_atomically(redis_url):
    """Four 'workers' (threads, each its own event loop and Redis connection) hit one pro client at once."""
    who, results = f"shared:{uuid.uuid4().hex}", []
    start = threading.Barrier(4)

    def worker():
        async def run():
            client = aioredis.Redis.from_url(redis_url)
            limiter = Limiter(client)
            start.wait()
            out = await asyncio.gather(*(limiter.hit(who, SEED_LIMITS["pro"]) for _ in range(60)))
            await client.aclose()
            return out

        results.extend(asyncio.run(run()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 240 and sum(d.admitted for d in results) == SEED_LIMITS["pro"]


async def test_redis_unreachable_falls_back_to_a_per_worker_share_never_unlimited():
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nothing listens on port 1
    limiter = Limiter(client, workers=2)
    decisions = [await limiter.hit("ip:10.0.0.1", SEED_LIMITS["free"]) for _ in range(8)]
    assert [d.admitted for d in decisions] == [True] * 5 + [False] * 3  # 10 // 2 workers
    assert not any(d.shared for d in decisions) and limiter.shared.data_version is None


# Leases (enterprise: up to 10 slots a lease) over three workers, near a full window. Each step is one
# request from one worker, or a pause past the lease lifetime (leases run out; their unused slots are
# given back by the worker's next call).
lease_steps = st.lists(st.one_of(st.integers(0, 2), st.just("pause")), min_size=1, max_size=80)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(free=st.integers(0, 30), steps=lease_steps)
async def test_leases_never_admit_past_the_limit_and_every_logged_slot_is_accounted_for(redis_url, free, steps):
    client = aioredis.Redis.from_url(redis_url)
    who, limit = f"lease:{uuid.uuid4().hex}", SEED_LIMITS["enterprise"]
    seconds, micros = await client.time()
    await client.zadd(KEY_PREFIX + who, {f"earlier|{limit - free}": seconds * 1000 + micros // 1000})
    await client.set(KEY_PREFIX + who + ":slots", limit - free)
    workers, admitted = [counting(Limiter(client)) for _ in range(3)], 0

    def held() -> int:  # slots leased and not used yet
        return sum(lease.left for w in workers if (lease := w.leases.get(who)))

    try:
        for step in steps:
            if step == "pause":
                await asyncio.sleep(LEASE_SECONDS)
                continue
            asked_redis = workers[step].calls
            decision = await workers[step].hit(who, limit)
            asked_redis = workers[step].calls > asked_redis
            admitted += decision.admitted
            assert admitted <= free  # never past the limit
            # Redis logs exactly the earlier requests, the admitted ones and the slots leases hold
            logged = [int(member.rpartition(b"|")[2]) for member in await client.zrange(KEY_PREFIX + who, 0, -1)]
            assert sum(logged) == int(await client.get(KEY_PREFIX + who + ":slots")) == limit - free + admitted + held()
            own = workers[step].leases[who].left if who in workers[step].leases else 0
            if not decision.admitted:  # refused only when the window is full, held slots counted
                assert admitted + held() == free and decision.remaining == 0 and decision.retry_after >= 1
            elif asked_redis:  # remaining: what the window has free, plus what this worker's lease holds
                assert decision.remaining == free - admitted - held() + own
            else:  # from a lease: as the window stood when it was taken (others may have used some since)
                assert decision.remaining >= free - admitted - held() + own
    finally:
        await client.aclose()


def counting(limiter: Limiter) -> Limiter:
    """The limiter, counting its calls to Redis in `limiter.calls`."""
    script, limiter.calls = limiter.script, 0

    async def counted(**kwargs):
        limiter.calls += 1
        return await script(**kwargs)

    limiter.script = counted
    return limiter


async def test_a_busy_client_is_admitted_from_leases_with_few_round_trips(redis_url, monkeypatch):
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 5.0)  # no lease runs out on a slow machine
    client = aioredis.Redis.from_url(redis_url)
    limiter, who = counting(Limiter(client)), f"busy:{uuid.uuid4().hex}"
    decisions = [await limiter.hit(who, SEED_LIMITS["unlimited"]) for _ in range(2000)]
    await client.aclose()
    assert all(d.admitted for d in decisions) and limiter.calls < 40  # leases of 1, 2, 4 ... 1000 slots
    assert [d.remaining for d in decisions[:3]] == [99_999, 99_998, 99_997]


async def test_the_hot_path_takes_only_leased_slots_and_counts_them_like_hit(redis_url, monkeypatch):
    """`leased` (the gateway's no-await path) admits from a lease and nothing else: no lease, a used-up
    or expired one, or Redis down -> None, and the caller goes to `hit`."""
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 5.0)
    client = aioredis.Redis.from_url(redis_url)
    limiter, who = Limiter(client), f"hot:{uuid.uuid4().hex}"
    assert limiter.leased(who) is None  # nothing leased yet
    for _ in range(4):  # leases of 1, 2 (one used from it), then 4 slots: 3 of them left
        await limiter.hit(who, SEED_LIMITS["unlimited"])
    hot = [limiter.leased(who) for _ in range(4)]
    after = await limiter.hit(who, SEED_LIMITS["unlimited"])  # the lease is used up: a round trip
    limiter.redis_down_until = float("inf")
    down = limiter.leased(who)
    await client.aclose()
    assert [d.remaining for d in hot[:3]] == [99_995, 99_994, 99_993] and hot[3] is None
    assert all(d.admitted and d.shared for d in hot[:3]) and after.remaining == 99_992 and down is None


async def test_a_leased_client_sees_a_new_data_version_within_a_lease_lifetime(redis_url, monkeypatch):
    """The price of leases: requests admitted from one carry the data version of the call that took it."""
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 1.0)  # long enough for a slow machine
    client = aioredis.Redis.from_url(redis_url)
    limiter, who = Limiter(client), f"version:{uuid.uuid4().hex}"
    for _ in range(3):  # leases of 1, then 2 slots: the third request is admitted from the lease
        await limiter.hit(who, SEED_LIMITS["unlimited"])
    await limiter.hit(who, SEED_LIMITS["unlimited"])  # a lease of 4: 3 slots left
    before = limiter.shared.data_version
    await client.incr(VERSION_KEY)  # a landing
    await limiter.hit(who, SEED_LIMITS["unlimited"])
    stale = limiter.shared.data_version
    await asyncio.sleep(1.0)
    await limiter.hit(who, SEED_LIMITS["unlimited"])
    await client.aclose()
    assert stale == before and limiter.shared.data_version == before + 1


async def test_a_log_whose_sum_was_lost_or_written_before_leases_is_counted_afresh(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    limiter, who, limit = Limiter(client), f"afresh:{uuid.uuid4().hex}", SEED_LIMITS["pro"]
    seconds, micros = await client.time()
    now_ms = seconds * 1000 + micros // 1000
    await client.zadd(KEY_PREFIX + who, {f"before-leases:{i}": now_ms for i in range(60)} | {"lease|30": now_ms})
    first = await limiter.hit(who, limit)  # no sum beside the log: counted from it (a member without |n is 1)
    await client.delete(KEY_PREFIX + who)  # the log lost, its sum left: a sum alone counts nothing
    second = await limiter.hit(who, limit)
    await client.aclose()
    assert (first.admitted, first.remaining) == (True, limit - 91)
    assert (second.admitted, second.remaining) == (True, limit - 1)
