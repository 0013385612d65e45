"""Plan limits as clients meet them: generated request sequences through the whole ASGI application
(gateway, Django) with API keys of each plan in the PostgreSQL test database and the real Redis, time
moved by the limiter's clock offset (Redis TIME cannot be set). The model is the seed's: free 10, pro
100, enterprise 1000 requests per sliding 60 s window, counted per key (per address without one).
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_ratelimit import SEED_LIMITS, SEED_WINDOW, SlidingWindowModel
from tests.webapp_fixtures import make_key

PATH = "/api/v1/gpus"  # a cached answer: the limit is all a request costs


@pytest.fixture
async def clients(webapp, isolated_redis) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (plan, headers): a key of each plan, and no key (the free tier, by address)."""
    plans = ("free", "pro", "enterprise")
    made = await asyncio.gather(*(sync_to_async(make_key)(plan) for plan in plans))
    return {plan: (plan, {"Authorization": f"Bearer {key}"}) for plan, key in zip(plans, made)} | {"anonymous": ("free", {})}


async def fresh_windows(isolated_redis) -> None:
    """Every client's window empty and the clock back at the start (each example is a run of its own)."""
    from gateway import runtime

    for key in isolated_redis.scan_iter("gpubroker:ratelimit:*"):
        isolated_redis.delete(key)
    runtime.limiter().leases.clear()
    runtime.limiter().clock_offset_ms = 0


def advance(seconds: float) -> None:
    from gateway import runtime

    runtime.limiter().clock_offset_ms += int(seconds * 1000)


async def burst(webapp, headers: dict[str, str], n: int) -> list:
    """n requests of one client at the same moment (the gateway batches them into few Redis calls)."""
    return await asyncio.gather(*(webapp.get(PATH, headers=headers) for _ in range(n)))


# Waits on a half-second grid: the milliseconds a run takes cannot move a request across the window's edge.
waits = st.integers(0, 50).map(lambda half_seconds: half_seconds / 2)
# Bursts sized to each plan, so that a few of them reach its limit (enterprise: never, in so few requests).
bursts = st.one_of(st.tuples(st.sampled_from(["anonymous", "free"]), st.integers(1, 15)),
                   st.tuples(st.just("pro"), st.integers(1, 70)), st.tuples(st.just("enterprise"), st.integers(1, 30)))
steps = st.lists(st.tuples(bursts, waits), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
async def test_each_client_is_admitted_exactly_what_its_plans_window_allows(webapp, isolated_redis, clients, steps):
    """**Feature: provider-api-gateway, Property 6: Rate Limiting by Plan Tier** — for any interleaving of
    clients of every plan, bursts and waits, each client is admitted exactly what its own plan's sliding
    window allows (a key's plan, the free tier without one), told its plan's limit, and refused with 429."""
    await fresh_windows(isolated_redis)
    model = SlidingWindowModel()
    t = 0.0
    for (name, n), wait in steps:
        plan, headers = clients[name]
        t += wait
        advance(wait)
        answers = await burst(webapp, headers, n)
        admitted = [model.hit(name, SEED_LIMITS[plan], t)[0] for _ in range(n)]
        assert sorted(a.status_code for a in answers) == sorted(200 if ok else 429 for ok in admitted), (name, t)
        assert {a.headers["ratelimit-limit"] for a in answers} == {str(SEED_LIMITS[plan])}
        if plan != "enterprise":  # (an enterprise key is admitted from leases: its count is checked in test_ratelimit)
            left = SEED_LIMITS[plan] - len(model.admitted[name])
            assert min(int(a.headers["ratelimit-remaining"]) for a in answers) == left


limited_steps = st.lists(st.tuples(st.sampled_from(["anonymous", "free", "pro"]), st.integers(1, 40),
                                   st.integers(0, 80).map(lambda half_seconds: half_seconds / 2), st.booleans()),
                         min_size=1, max_size=6)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=limited_steps)
async def test_every_429_says_when_to_retry_and_the_plans_limits_and_retrying_then_succeeds(webapp, isolated_redis,
                                                                                           clients, steps):  # fmt: skip
    """**Feature: provider-api-gateway, Property 7: Rate Limit Response Format** — for any request sequence,
    every 429 carries Retry-After (whole seconds, 1..60), RateLimit-Limit/-Policy of the client's plan,
    RateLimit-Remaining 0 and a RateLimit-Reset that Retry-After rounds up to 1 at least, and a JSON body
    saying the same; a client that waits Retry-After seconds is admitted, and not 1.5 s sooner (the
    header rounds up a wait that real time, running beside the test's clock, shortens by milliseconds)."""
    await fresh_windows(isolated_redis)
    for name, n, wait, honour in steps:
        plan, headers = clients[name]
        limit = SEED_LIMITS[plan]
        advance(wait)
        refused = [a for a in await burst(webapp, headers, n) if a.status_code == 429]
        for answer in refused:
            retry_after, body = answer.headers["retry-after"], answer.json()
            assert retry_after.isdigit() and 1 <= int(retry_after) <= SEED_WINDOW
            assert (answer.headers["ratelimit-limit"], answer.headers["ratelimit-policy"]) == (str(limit), f"{limit};w=60")
            assert answer.headers["ratelimit-remaining"] == "0"
            assert int(retry_after) == max(1, int(answer.headers["ratelimit-reset"]))
            assert (body["plan"], body["limit"], body["retry_after"]) == (plan, limit, int(retry_after))
            assert f"retry after {retry_after} s" in body["detail"]
        if honour and refused:
            retry_after = int(refused[-1].headers["retry-after"])
            if retry_after >= 2:
                advance(retry_after - 1.5)
                assert (await webapp.get(PATH, headers=headers)).status_code == 429  # too early: still full
                advance(1.5)
            else:
                advance(retry_after)
            assert (await webapp.get(PATH, headers=headers)).status_code == 200
