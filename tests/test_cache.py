"""Cache warming into real Redis (isolated database) from the real PostgreSQL test database."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import cache
from gpubroker import settings as gb_settings
from offers.models import Offer

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
TEST_REDIS = "redis://127.0.0.1:6379/14"


@pytest.fixture
def r(monkeypatch):
    client = redis.Redis.from_url(TEST_REDIS)
    client.flushdb()
    monkeypatch.setattr(gb_settings, "REDIS_URL", TEST_REDIS)
    yield client
    client.flushdb()


def make(i, gpu, provider, region, price, availability="available"):
    return Offer(
        provider=provider, offer_id=f"o{i}", instance_type=f"1x {gpu}", gpu_model=gpu, gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=price, region=region, availability=availability,
        observed_at=NOW, first_seen=NOW, last_seen=NOW,
    )  # fmt: skip


rows = st.lists(
    st.tuples(
        st.sampled_from(["H100", "A100", "RTX4090"]), st.sampled_from(["vastai", "lambda"]),
        st.sampled_from(["Norway", "Texas, US"]), st.decimals(Decimal("0.10"), Decimal("9.99"), places=2),
        st.sampled_from(["available", "unavailable", "unknown"]),
    ),  # fmt: skip
    min_size=1,
    max_size=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_warmed_queries_match_the_database_in_order(pg, r, data):
    Offer.objects.all().delete()
    Offer.objects.bulk_create([make(i, *row) for i, row in enumerate(data)])
    cache.warm(pg, r)
    live = [(i, *row) for i, row in enumerate(data) if row[4] != "unavailable"]
    for provider in {row[1] for row in data}:
        cached = cache.read(f"provider:{provider}", r) or []
        prices = [o["price_per_hour"] for o in cached]
        assert prices == sorted(prices)  # cheapest first
        assert sorted(o["offer_id"] for o in cached) == sorted(f"o{i}" for i, _, p, *_ in live if p == provider)
    for gpu in {row[1] for row in live}:
        cheapest = cache.read(f"cheapest:{gpu}", r)
        for region, offer in cheapest.items():
            best = min(float(price) for _, g, _, reg, price, _ in live if g == gpu and reg == region)
            assert offer["price_per_hour"] == best


def test_each_warm_is_a_new_version_switched_whole(pg, r):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    first = cache.warm(pg, r)
    Offer.objects.filter(offer_id="o1").update(price_per_hour=Decimal("1.5"))
    second = cache.warm(pg, r)
    assert second == first + 1 and int(r.get(cache.CURRENT)) == second
    assert cache.read("cheapest:H100", r)["Norway"]["price_per_hour"] == 1.5
    old = r.get(f"{cache.PREFIX}:v{first}:cheapest:H100")
    assert old is not None  # a reader still holding the old version finishes with whole data
    assert 0 < r.ttl(f"{cache.PREFIX}:v{second}:cheapest:H100") <= cache.PRICING_TTL
    assert cache.PRICING_TTL < r.ttl(f"{cache.PREFIX}:v{second}:static:gpus") <= cache.STATIC_TTL


def test_a_miss_is_none_and_the_api_falls_back_to_the_database(client, db, r):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    assert cache.read("cheapest:H100", r) is None
    body = client.get("/api/v1/gpus/h100/cheapest").json()
    assert (body["gpu"], body["source"], body["regions"]["Norway"]["price_per_hour"]) == ("H100", "database", 2.5)


def test_the_api_serves_the_warmed_value(client, pg, r):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    cache.warm(pg, r)
    body = client.get("/api/v1/gpus/H100/cheapest").json()
    assert body["source"] == "cache" and body["regions"]["Norway"]["offer_id"] == "o1"
    assert client.get("/api/v1/gpus/Voodoo/cheapest").status_code == 400
