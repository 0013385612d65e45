"""The two-tier response cache (L2 in process -> L1 real Redis -> compute): order, expiry, stampedes."""

from __future__ import annotations

import asyncio
import math
import random
import uuid

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cache import Entry, LocalTier, TwoTierCache, recompute_early
from tests.conftest import ISOLATED_REDIS

NEVER_EARLY = lambda: 0.0  # noqa: E731  ln(1 - 0) = 0: XFetch never fires early, so tests are exact


class Origin:
    """The thing behind the cache: counts computations, can be slow."""

    def __init__(self, ttl: float = 60.0, seconds: float = 0.0):
        self.ttl, self.seconds, self.calls = ttl, seconds, 0

    async def __call__(self) -> Entry:
        self.calls += 1
        if self.seconds:
            await asyncio.sleep(self.seconds)
        return Entry(200, ((b"content-type", b"application/json"),), b'{"n": %d}' % self.calls, None, 0.0, 0.0, self.ttl)


@pytest.fixture
async def l1(isolated_redis):
    client = aioredis.Redis.from_url(ISOLATED_REDIS)
    yield client
    await client.aclose()


def cache(l1, now, rand=NEVER_EARLY) -> TwoTierCache:
    return TwoTierCache(l1, LocalTier(), clock=lambda: now[0], rand=rand)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(in_l2=st.booleans(), in_l1=st.booleans(), version=st.integers(0, 2**31),
       other_version=st.none() | st.integers(0, 2**31), path=st.text(st.characters(exclude_categories=("Cs",)), max_size=30))
async def test_lookup_order_is_l2_then_l1_then_origin(l1, in_l2, in_l1, version, other_version, path):
    """**Feature: provider-api-gateway, Property 1: Cache Lookup Order and Fallback** — for any state of the
    two tiers, any key and any data version (the stored entry's, or another), a lookup answers from L2,
    else L1 (Redis), else falls back to the origin, computing only then; whatever answered is in L2 next."""
    now, key, origin = [1000.0], f"/k/{uuid.uuid4().hex}/{path}", Origin()
    writer = cache(l1, now)
    stored_version = version if other_version is None else other_version
    stale_version = stored_version != version
    if in_l1 or in_l2:
        await writer.get(key, stored_version, origin)  # fills L2 (of `writer`) and L1
    reader = writer if in_l2 else cache(l1, now)  # a fresh process has an empty L2
    if not in_l1 and (in_l1 or in_l2):
        await l1.delete(f"gpubroker:resp:v{stored_version}:{key}")
    calls_before = origin.calls
    entry, tier = await reader.get(key, version, origin)
    if stale_version or not (in_l1 or in_l2):
        expected = "origin"  # nothing stored for this data version
    else:
        expected = "l2" if in_l2 else "l1"
    assert tier == expected
    assert origin.calls == calls_before + (expected == "origin")
    assert entry.version == version or expected != "origin"
    second, tier2 = await reader.get(key, version, origin)  # whatever answered is now in L2
    assert tier2 == "l2" and second.body == entry.body


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ttl=st.integers(1, 300), later=st.floats(0, 400))
async def test_entries_expire_at_their_ttl_and_l2_keeps_them_at_most_30_s(l1, ttl, later):
    """**Feature: provider-api-gateway, Property 2: Cache TTL Expiration** — for any TTL and any later time,
    an entry is served until its TTL and never after (L2 keeps it at most 30 s of that)."""
    now, key, origin = [5000.0], f"/ttl/{uuid.uuid4().hex}", Origin(ttl=ttl)
    c = cache(l1, now)
    await c.get(key, 1, origin)
    now[0] += later
    _, tier = await c.get(key, 1, origin)
    if later >= ttl:
        assert tier == "origin"  # expired everywhere
    elif later >= 30:
        assert tier == "l1"  # gone from L2 after 30 s, still in Redis until its TTL
    else:
        assert tier == "l2"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 150), before_expiry=st.floats(0, 2), seed=st.integers(0, 2**32))
async def test_concurrent_requests_near_expiry_recompute_at_most_once(l1, n, before_expiry, seed):
    """**Feature: provider-api-gateway, Property 3: Cache Stampede Prevention** — for any number of
    concurrent requests (two processes) at any moment near expiry, the origin computes at most once."""
    rng = random.Random(seed)
    now, key = [10_000.0], f"/stampede/{uuid.uuid4().hex}"
    origin = Origin(ttl=60, seconds=0.02)
    first = cache(l1, now, rng.random)
    await first.get(key, 1, origin)  # computed once; delta ~ 20 ms
    now[0] += 60 - before_expiry  # near (or at) expiry: XFetch may fire
    second = cache(l1, now, rng.random)  # another process sharing the same L1
    calls = origin.calls
    await asyncio.gather(*((first if i % 2 else second).get(key, 1, origin) for i in range(n)))
    assert origin.calls - calls <= 1


async def test_concurrent_misses_make_one_computation(l1):
    now, origin = [1.0], Origin(seconds=0.05)
    a, b = cache(l1, now), cache(l1, now)
    results = await asyncio.gather(*((a if i % 3 else b).get("/cold", 7, origin) for i in range(100)))
    assert origin.calls == 1 and len({entry.body for entry, _ in results}) == 1


async def test_uncacheable_answers_are_returned_but_never_stored(l1):
    now, origin = [1.0], Origin(ttl=0)
    c = cache(l1, now)
    assert (await c.get("/nope", 1, origin))[1] == "origin"
    assert (await c.get("/nope", 1, origin))[1] == "origin" and origin.calls == 2


async def test_redis_down_l2_and_origin_still_answer():
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    now, origin = [1.0], Origin()
    c = TwoTierCache(dead, LocalTier(), clock=lambda: now[0], rand=NEVER_EARLY)
    assert (await c.get("/x", None, origin))[1] == "origin"  # version unknown while Redis is down
    assert (await c.get("/x", None, origin))[1] == "l2" and origin.calls == 1


def test_xfetch_probability_follows_the_paper():
    """P(early) = P(-delta * beta * ln(U) >= gap) = exp(-gap / (delta * beta))."""
    rng = random.Random(1)
    for gap, delta in ((0.1, 0.1), (1.0, 0.5), (0.01, 0.1)):
        hits = sum(recompute_early(100.0, delta, 100.0 - gap, 1.0, rng.random) for _ in range(20_000))
        assert abs(hits / 20_000 - math.exp(-gap / delta)) < 0.02
    assert recompute_early(100.0, 0.0, 100.0, 1.0, rng.random)  # expired: always


async def test_the_asker_that_started_a_computation_going_away_leaves_it_to_the_others(l1):
    """Single-flight: the first asker's task cancelled (its client hung up) must neither cancel the
    computation nor hand the askers waiting on it an error."""
    now, origin = [1.0], Origin(seconds=0.2)
    c = cache(l1, now)
    first = asyncio.ensure_future(c.get("/leaving", 3, origin))
    await asyncio.sleep(0.05)  # the computation is under way
    others = [asyncio.ensure_future(c.get("/leaving", 3, origin)) for _ in range(5)]
    await asyncio.sleep(0.05)
    first.cancel()
    answers = await asyncio.gather(*others)
    assert first.cancelled() and origin.calls == 1
    assert {(entry.status, entry.body, tier) for entry, tier in answers} == {(200, b'{"n": 1}', "origin")}
    assert (await c.get("/leaving", 3, origin))[1] == "l2"  # and it was stored for the next asker
