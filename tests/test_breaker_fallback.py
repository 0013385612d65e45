"""Open circuit breakers, as the pipeline and the API meet them: a sync refused before it calls the
vendor, and the last landed data still served, with warnings, never a 5xx. Real PostgreSQL (the test
database), the real Redis (the tests' database) and the whole ASGI application.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import health, store
from gpubroker import settings as gpubroker_settings
from gpubroker.breaker import PREFIX, REGISTRY, Breaker, CircuitOpen, State
from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from tests.test_api import expected_ids, offer_specs, queries
from tests.webapp_fixtures import landed, offer_row

T0 = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
OPEN = "circuit breaker open, its data is not being refreshed"


def open_breaker(client, provider: str, successes: int, failures: int, opened_in: float = 0.0) -> Breaker:
    """The provider's breaker after `successes` then `failures` calls (enough to open it: the calls
    stop when it opens), opened `opened_in` seconds from now on Redis's clock."""
    breaker = Breaker(provider, client, clock_offset=opened_in)
    for ok in [True] * successes + [False] * failures:
        if breaker.state() is State.OPEN:
            break
        breaker.record(breaker.admit(), ok)
    assert breaker.state() is State.OPEN
    return breaker


def listing(provider: str, prices: list[Decimal], at: datetime) -> list[Offer]:
    return [Offer(provider=provider, offer_id=f"o{n}", instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                  gpu_count=1, gpu_memory_gb=80, price_per_hour=price, region="Norway", observed_at=at)
            for n, price in enumerate(prices)]  # fmt: skip


@st.composite
def opening_calls(draw) -> tuple[int, int]:
    """(successes, failures) that open a breaker: at least 10 calls, at least half of them failed last."""
    successes = draw(st.integers(0, 10))
    return successes, draw(st.integers(max(10 - successes, successes), 10))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(["vastai", "lambda", "runpod"]), calls=opening_calls(),
       prices=st.lists(st.decimals(Decimal("0.05"), Decimal("40"), places=2), min_size=1, max_size=6))  # fmt: skip
async def test_an_open_breaker_refuses_the_sync_before_the_vendor_and_the_last_landed_offers_are_served(
        api, pg, pg_url, isolated_redis, monkeypatch, provider, calls, prices):  # fmt: skip
    """**Feature: provider-api-gateway, Property 5: Circuit Breaker Cached Fallback** — for any provider
    whose breaker opened (any calls that open it), a sync is refused (CircuitOpen, counted as a rejection)
    without a request to the vendor, and the API answers with the offers last landed, unchanged, and a
    warning that the provider's data is not being refreshed."""
    from gpubroker_provider import sync

    monkeypatch.setattr(gpubroker_settings, "DATABASE_URL", pg_url)
    isolated_redis.delete(*isolated_redis.scan_iter(f"{PREFIX}*"), REGISTRY)  # each example: a fresh breaker
    pg.execute("DELETE FROM offers")
    store.land(pg, provider, listing(provider, prices, T0), T0)
    await landed(isolated_redis)
    before = open_breaker(isolated_redis, provider, *calls).snapshot()

    with pytest.raises(CircuitOpen, match=f"{provider}: circuit open"):
        sync.sync_provider(provider)
    after = Breaker(provider, isolated_redis).snapshot()
    assert after.rejections_total == before.rejections_total + 1 and after.state is State.OPEN
    assert after.recent_latencies == before.recent_latencies  # no request was sent to the vendor
    landed_rows = pg.execute("SELECT offer_id, price_per_hour FROM offers WHERE provider = %s ORDER BY offer_id",
                             (provider,)).fetchall()  # fmt: skip
    assert landed_rows == [(f"o{n}", price) for n, price in enumerate(prices)]  # as landed: untouched

    answer = await api.get("/api/v1/offers", params={"provider": provider, "per_page": 10})
    assert answer.status_code == 200
    body = answer.json()
    assert sorted((i["offer_id"], Decimal(str(i["price_per_hour"]))) for i in body["items"]) == sorted(landed_rows)
    assert f"{provider}: {OPEN}" in body["warnings"]


@pytest.fixture
async def everything_down(isolated_redis):
    """Every vendor's breaker open (for the next hour of Redis's clock) and every health check saying down."""
    for provider in VENDORS:
        open_breaker(isolated_redis, provider, 0, 10, opened_in=3600)
        isolated_redis.hset(health.CURRENT, provider, json.dumps({
            "status": "down", "latency_ms": 5000, "weight": 0.0, "checked_at": T0.isoformat(), "error": "timeout"}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=offer_specs.filter(bool), query=queries, per_page=st.integers(1, 7))
async def test_with_every_provider_unhealthy_the_api_still_answers_the_last_landed_data_with_warnings(
        api, isolated_redis, everything_down, specs, query, per_page):  # fmt: skip
    """**Feature: provider-api-gateway, Property 10: All Providers Unhealthy Fallback** — with every
    provider's breaker open and every health check down, any search still answers (200, never a 5xx) with
    exactly the offers last landed that match it, and warns, for each provider it covers, that its health
    check says down and its breaker is open; the provider list says so too."""
    from offers.models import Offer as OfferRow

    specs = [s | {"id": f"o{i:02d}"} for i, s in enumerate(specs)]
    rows = [offer_row(s["id"], s["gpu"], s["provider"], s["region"], str(s["price"]), gpu_count=s["gpu_count"],
                      gpu_memory_gb=s["gpu_memory_gb"], availability=s["availability"],
                      spot_price=s["price"] / 2 if s["spot"] else None, interconnect=s["interconnect"],
                      pricing_type=s["pricing"][0], commitment_months=s["pricing"][1]) for s in specs]  # fmt: skip
    await sync_to_async(lambda: (OfferRow.objects.all().delete(), OfferRow.objects.bulk_create(rows)))()
    await landed(isolated_redis)
    params = {k: (v if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()}
    covered = set(query.get("provider", VENDORS))
    warned = {f"{p}: health check says down" for p in covered} | {f"{p}: {OPEN}" for p in covered}
    seen, page = [], 1
    while True:
        answer = await api.get("/api/v1/offers", params={**params, "per_page": per_page, "page": page})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert warned <= set(body["warnings"])
        seen += [i["offer_id"] for i in body["items"]]
        if not body["has_next"]:
            break
        page += 1
    assert seen == expected_ids(specs, query)
    statuses = (await api.get("/api/v1/providers")).json()["items"]
    assert {(p["breaker_state"], p["health"], p["weight"]) for p in statuses} == {("open", "down", 0.0)}
