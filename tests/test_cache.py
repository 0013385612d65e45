"""Cache warming into real Redis (isolated database) from the real PostgreSQL test database."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import cache
from offers.models import Offer

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)


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
def test_warmed_queries_match_the_database_in_order(pg, isolated_redis, data):
    Offer.objects.all().delete()
    Offer.objects.bulk_create([make(i, *row) for i, row in enumerate(data)])
    cache.warm(pg, isolated_redis)
    live = [(i, *row) for i, row in enumerate(data) if row[4] != "unavailable"]
    for provider in {row[1] for row in data}:
        cached = cache.read(f"provider:{provider}", isolated_redis) or []
        prices = [o["price_per_hour"] for o in cached]
        assert prices == sorted(prices)  # cheapest first
        assert sorted(o["offer_id"] for o in cached) == sorted(f"o{i}" for i, _, p, *_ in live if p == provider)
    for gpu in {row[1] for row in live}:
        cheapest = cache.read(f"cheapest:{gpu}", isolated_redis)
        for region, offer in cheapest.items():
            best = min(float(price) for _, g, _, reg, price, _ in live if g == gpu and reg == region)
            assert offer["price_per_hour"] == best


def test_each_warm_is_a_new_version_switched_whole(pg, isolated_redis):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    first = cache.warm(pg, isolated_redis)
    Offer.objects.filter(offer_id="o1").update(price_per_hour=Decimal("1.5"))
    second = cache.warm(pg, isolated_redis)
    assert second == first + 1 and int(isolated_redis.get(cache.CURRENT)) == second
    assert cache.read("cheapest:H100", isolated_redis)["Norway"]["price_per_hour"] == 1.5
    old = isolated_redis.get(f"{cache.PREFIX}:v{first}:cheapest:H100")
    assert old is not None  # a reader still holding the old version finishes with whole data
    assert 0 < isolated_redis.ttl(f"{cache.PREFIX}:v{second}:cheapest:H100") <= cache.PRICING_TTL
    assert cache.PRICING_TTL < isolated_redis.ttl(f"{cache.PREFIX}:v{second}:static:gpus") <= cache.STATIC_TTL


def test_a_miss_is_none_and_the_api_falls_back_to_the_database(client, db, isolated_redis):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    assert cache.read("cheapest:H100", isolated_redis) is None
    body = client.get("/api/v1/gpus/h100/cheapest").json()
    assert (body["gpu"], body["source"], body["regions"]["Norway"]["price_per_hour"]) == ("H100", "database", 2.5)


def test_the_api_serves_the_warmed_value(client, pg, isolated_redis):
    Offer.objects.bulk_create([make(1, "H100", "vastai", "Norway", Decimal("2.5"))])
    cache.warm(pg, isolated_redis)
    body = client.get("/api/v1/gpus/H100/cheapest").json()
    assert body["source"] == "cache" and body["regions"]["Norway"]["offer_id"] == "o1"
    assert client.get("/api/v1/gpus/Voodoo/cheapest").status_code == 400
