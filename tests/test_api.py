"""The offers API through the whole ASGI application (gateway, Django, async SQL) on the real
PostgreSQL test database and Redis: filters, sorts, paging, point in time, history, provider status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webapp_fixtures import NOW, landed, offer_row


@sync_to_async
def insert(*rows):
    from offers.models import Offer

    Offer.objects.bulk_create(rows)


@pytest.fixture
async def offers(api):
    await insert(
        offer_row("h1", price="2.50"), offer_row("h2", price="1.75", region="Texas, US", country="US", continent="NA"),
        offer_row("a1", "A100", price="1.10", gpu_memory_gb=40),
        offer_row("r1", "RTX4090", price="0.35", region="Quebec, CA", gpu_memory_gb=24, country="CA", continent="NA"),
        offer_row("r2", "RTX4090", price="0.40", gpu_memory_gb=24),
        offer_row("h8", price="16.00", gpu_count=8, provider="lambda", region="us-east-1", spot_price=Decimal("9.5"),
                  gpu_form_factor="SXM", vcpus=208, ram_gb=1800, country="US", continent="NA"),
    )  # fmt: skip
    return api


async def ids(client, **params) -> list[str]:
    response = await client.get("/api/v1/offers", params=params)
    assert response.status_code == 200, response.text
    return [i["offer_id"] for i in response.json()["items"]]


async def test_lists_cheapest_first_with_paging_fields(offers):
    body = (await offers.get("/api/v1/offers", params={"per_page": 2})).json()
    assert [i["offer_id"] for i in body["items"]] == ["r1", "r2"]
    assert (body["total"], body["page"], body["per_page"], body["has_next"], body["warnings"]) == (6, 1, 2, True, [])
    last = (await offers.get("/api/v1/offers", params={"per_page": 2, "page": 3})).json()
    assert ([i["offer_id"] for i in last["items"]], last["has_next"]) == (["h1", "h8"], False)
    past = (await offers.get("/api/v1/offers", params={"per_page": 2, "page": 4})).json()
    assert (past["items"], past["total"], past["has_next"]) == ([], 6, False)


async def test_items_carry_price_per_gpu_and_data_age(offers):
    body = (await offers.get("/api/v1/offers", params={"provider": "lambda"})).json()
    item = body["items"][0]
    assert (item["price_per_hour"], item["price_per_gpu"], item["spot_price"]) == (16.0, 2.0, 9.5)
    assert item["data_age_seconds"] >= int((datetime.now(timezone.utc) - NOW).total_seconds()) - 1
    assert item["inferred"] == [] and body["generated_at"].endswith("Z")


async def test_filters_combine(offers):
    assert await ids(offers, gpu="H100", region="texas, us", max_price="2") == ["h2"]
    assert await ids(offers, continent="NA", sort="-price") == ["h8", "h2", "r1"]
    assert await ids(offers, provider=["vastai", "lambda"], min_gpu_count=2) == ["h8"]
    assert await ids(offers, provider=["lambda", "vastai"], max_gpu_count=1, gpu_vendor="NVIDIA", country="CA") == ["r1"]
    assert await ids(offers, max_price_per_gpu="2", min_gpu_memory_gb=80) == ["h2", "h8"]
    assert await ids(offers, spot="true") == ["h8"]
    assert await ids(offers, form_factor="SXM", min_vcpus=100, min_ram_gb=1000) == ["h8"]
    assert await ids(offers, availability="unavailable") == []


async def test_sorts(offers):
    assert await ids(offers, sort="price_per_gpu") == ["r1", "r2", "a1", "h2", "h8", "h1"]
    assert await ids(offers, sort="price_per_gb_vram") == ["r1", "r2", "h2", "h8", "a1", "h1"]
    assert await ids(offers, sort="-gpu_memory") == ["h8", "h1", "h2", "a1", "r1", "r2"]  # ties: provider, id


async def test_gpu_aliases_are_accepted_with_a_warning(offers):
    body = (await offers.get("/api/v1/offers", params={"gpu": "NVIDIA GeForce RTX 4090"})).json()
    assert {i["offer_id"] for i in body["items"]} == {"r1", "r2"}
    assert body["warnings"] == ["gpu 'NVIDIA GeForce RTX 4090' read as 'RTX4090'"]
    sxm = (await offers.get("/api/v1/offers", params={"gpu": "H100 SXM"})).json()
    assert [i["offer_id"] for i in sxm["items"]] == ["h8"]  # the form factor in the name filters too


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"gpu": "Voodoo 5"}, 400, "unknown GPU model"),
        ({"provider": "nosuchcloud"}, 422, "provider"),
        ({"provider": ["vastai", "nosuchcloud"]}, 422, "provider"),
        ({"gpu_vendor": "3dfx"}, 422, "gpu_vendor"),
        ({"country": "ZZ"}, 422, "country"),
        ({"continent": "XX"}, 422, "continent"),
        ({"min_gpu_count": 4, "max_gpu_count": 2}, 400, "above max_gpu_count"),
        ({"page": 21, "per_page": 500}, 400, "passes the last reachable result"),
        ({"page": "100000000000000000000"}, 422, "page"),
        ({"per_page": 0}, 422, "per_page"),
        ({"per_page": 501}, 422, "per_page"),
        ({"page": -1}, 422, "page"),
        ({"max_price": "-3"}, 422, "max_price"),
        ({"max_price": "NaN"}, 422, "max_price"),
        ({"max_price": "Infinity"}, 422, "max_price"),
        ({"max_price": "1e400"}, 422, "max_price"),
        ({"max_price": "cheap"}, 422, "max_price"),
        ({"min_gpu_memory_gb": "nan"}, 422, "min_gpu_memory_gb"),
        ({"min_ram_gb": "-inf"}, 422, "min_ram_gb"),
        ({"min_vcpus": "9" * 40}, 422, "min_vcpus"),
        ({"sort": "colour"}, 422, "sort"),
        ({"availability": "maybe"}, 422, "availability"),
        ({"at": "yesterday"}, 422, "at"),
        ({"at": "2026-11-26T12:00:00"}, 422, "timezone"),
        ({"at": "0.5"}, 422, "ISO 8601"),
    ],
)
async def test_bad_parameters_get_a_4xx_that_says_what_is_wrong(offers, params, status, message):
    response = await offers.get("/api/v1/offers", params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


async def test_point_in_time_shows_prices_as_they_stood(offers):
    from offers.models import Offer, PriceHistory

    @sync_to_async
    def history():
        Offer.objects.filter(offer_id="h1").update(first_seen=NOW - timedelta(days=2))
        PriceHistory.objects.bulk_create([
            PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal("3.00"), observed_at=NOW - timedelta(days=2)),
            PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal("1.20"), observed_at=NOW - timedelta(days=1)),
            PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal("2.50"), observed_at=NOW),
        ])  # fmt: skip

    await history()
    at = lambda t: {"gpu": "H100", "at": t.isoformat()}  # noqa: E731
    two_days = (await offers.get("/api/v1/offers", params=at(NOW - timedelta(hours=36)))).json()
    assert [(i["offer_id"], i["price_per_hour"]) for i in two_days["items"]] == [("h1", 3.0)]  # only h1 existed
    one_day = (await offers.get("/api/v1/offers", params=at(NOW - timedelta(hours=1)))).json()
    assert [(i["offer_id"], i["price_per_hour"]) for i in one_day["items"]] == [("h1", 1.2)]
    assert one_day["at"].startswith((NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H"))

    full = (await offers.get("/api/v1/offers/vastai/h1/history")).json()
    assert [p["price_per_hour"] for p in full["items"]] == [3.0, 1.2, 2.5]
    window = await offers.get("/api/v1/offers/vastai/h1/history",
                              params={"since": (NOW - timedelta(hours=30)).isoformat(), "until": NOW.isoformat()})  # fmt: skip
    assert [p["price_per_hour"] for p in window.json()["items"]] == [1.2, 2.5]
    inverted = await offers.get("/api/v1/offers/vastai/h1/history", params={"since": NOW.isoformat(),
                                                                             "until": (NOW - timedelta(days=1)).isoformat()})  # fmt: skip
    assert (inverted.status_code, inverted.json()["items"]) == (200, [])


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/offers/vastai/nope/history", {}, 404),
        ("/api/v1/offers/nosuchcloud/h1/history", {}, 404),
        ("/api/v1/offers/vastai/h1/history", {"since": "2026-11-27T00:00:00"}, 422),
        ("/api/v1/offers/vastai/h1/history", {"until": "0.5"}, 422),
        ("/api/v1/offers/vastai/h1/history", {"since": "soon"}, 422),
    ],
)
async def test_history_refuses_what_it_cannot_answer(offers, path, params, status):
    response = await offers.get(path, params=params)
    assert response.status_code == status and response.json()["detail"]


async def test_cheapest_per_region(offers):
    body = (await offers.get("/api/v1/gpus/h100/cheapest")).json()
    assert body["gpu"] == "H100"
    assert {r: o["offer_id"] for r, o in body["regions"].items()} == {"Norway": "h1", "Texas, US": "h2", "us-east-1": "h8"}
    assert (await offers.get("/api/v1/gpus/voodoo/cheapest")).status_code == 404


async def test_a_quarantined_provider_is_served_with_a_stale_warning(offers):
    from offers.models import ProviderStatus

    await sync_to_async(ProviderStatus.objects.create)(
        provider="vastai", last_good_at=NOW, last_good_rows=5, stale=True,
        stale_reason="expect_column_values_to_be_unique(offer_id): 2 rows",
    )  # fmt: skip
    body = (await offers.get("/api/v1/offers", params={"provider": "vastai"})).json()
    assert body["total"] == 5  # the last good data is still served
    assert body["warnings"] == [
        "vastai: latest batch quarantined, serving data last good at 2026-11-26 12:00 UTC "
        "(expect_column_values_to_be_unique(offer_id): 2 rows)"
    ]
    other = (await offers.get("/api/v1/offers", params={"provider": "lambda"})).json()
    assert other["warnings"] == []  # only the providers in the answer are reported


async def test_unhealthy_providers_and_open_breakers_are_warned_about(offers, isolated_redis):
    import json

    isolated_redis.hset("gpubroker:health", "lambda", json.dumps({"status": "down", "latency_ms": 5000,
                        "weight": 0.0, "checked_at": NOW.isoformat(), "error": "timeout"}))  # fmt: skip
    body = (await offers.get("/api/v1/offers", params={"gpu": "H100"})).json()
    assert "lambda: health check says down" in body["warnings"]
    providers = (await offers.get("/api/v1/providers")).json()["items"]
    lam = next(p for p in providers if p["slug"] == "lambda")
    assert (lam["health"], lam["latency_ms"], lam["offer_count"], lam["breaker_state"]) == ("down", 5000, 1, "closed")


async def test_provider_status_lists_every_vendor(offers):
    from gpubroker_provider.vendors import VENDORS
    from offers.models import ProviderStatus, Quarantine

    @sync_to_async
    def landings():
        ProviderStatus.objects.create(provider="vastai", last_good_at=NOW, last_good_rows=5, stale=False)
        Quarantine.objects.create(provider="vastai", reason="row count dropped", failures=[], sample_rows=[], rows=1,
                                  raw_ref="r", offers_ref="o")  # fmt: skip

    await landings()
    body = (await offers.get("/api/v1/providers")).json()
    assert [p["slug"] for p in body["items"]] == sorted(VENDORS)
    vast = next(p for p in body["items"] if p["slug"] == "vastai")
    assert (vast["name"], vast["source"], vast["offer_count"], vast["stale"]) == ("Vast.ai", "api", 5, False)
    assert vast["last_good_sync"].startswith("2026-11-26T12:00") and vast["last_quarantine_reason"] == "row count dropped"
    assert body["vault"] is None  # no health check has run


async def test_provider_status_shows_the_vault_health_the_checks_recorded(offers, isolated_redis):
    from gpubroker import health

    checked = {"status": "sealed", "latency_ms": 4, "checked_at": "2026-12-03T01:00:00+00:00", "error": "HTTP 503"}
    health.record_vault(checked, isolated_redis)
    vault = (await offers.get("/api/v1/providers")).json()["vault"]
    assert (vault["status"], vault["latency_ms"], vault["error"]) == ("sealed", 4, "HTTP 503")


async def test_no_data_at_all_is_a_503_with_retry_after(api):
    response = await api.get("/api/v1/offers")
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert "first sync" in response.json()["detail"]


# --- filter correctness, as a property --------------------------------------------------------
GPUS, REGIONS, PROVIDERS = ["H100", "A100", "RTX4090"], ["Norway", "Texas, US", "Quebec, CA"], ["vastai", "lambda", "runpod"]
offer_specs = st.lists(
    st.fixed_dictionaries({
        "gpu": st.sampled_from(GPUS), "region": st.sampled_from(REGIONS), "provider": st.sampled_from(PROVIDERS),
        "price": st.decimals(Decimal("0.05"), Decimal("40"), places=2), "gpu_count": st.sampled_from([1, 2, 4, 8]),
        "gpu_memory_gb": st.sampled_from([24.0, 40.0, 80.0]), "availability": st.sampled_from(["available", "unavailable"]),
        "spot": st.booleans(), "interconnect": st.sampled_from([None, "nvlink", "infiniband", "pcie"]),
        "pricing": st.sampled_from([("on_demand", None), ("spot", None), ("reserved", 12), ("reserved", 36)]),
    }),
    max_size=20,
)  # fmt: skip
queries = st.fixed_dictionaries({}, optional={
    "gpu": st.sampled_from(GPUS), "region": st.sampled_from(REGIONS), "provider": st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=2),
    "max_price": st.decimals(Decimal("0.1"), Decimal("40"), places=2), "max_price_per_gpu": st.decimals(Decimal("0.1"), Decimal("10"), places=2),
    "min_gpu_count": st.sampled_from([1, 2, 4]), "max_gpu_count": st.sampled_from([4, 8]),
    "min_gpu_memory_gb": st.sampled_from([0, 30, 60]), "availability": st.sampled_from(["available", "unavailable"]),
    "spot": st.booleans(), "sort": st.sampled_from(["price", "-price", "price_per_gpu", "-price_per_gpu", "gpu_memory"]),
    "interconnect": st.lists(st.sampled_from(["nvlink", "infiniband", "pcie", "roce"]), min_size=1, max_size=2),
    "pricing_type": st.lists(st.sampled_from(["on_demand", "spot", "reserved"]), min_size=1, max_size=2),
    "max_commitment_months": st.sampled_from([0, 12, 36]),
})  # fmt: skip
SORT_KEY = {
    "price": lambda s: s["price"], "price_per_gpu": lambda s: s["price"] / s["gpu_count"],
    "gpu_memory": lambda s: Decimal(str(s["gpu_memory_gb"])),
}


def expected_ids(specs: list[dict], q: dict) -> list[str]:
    """The answer written independently in Python: filter, then sort with (provider, offer_id) ties."""
    def keep(s):
        return (s["gpu"] == q.get("gpu", s["gpu"]) and s["region"] == q.get("region", s["region"])
                and s["provider"] in q.get("provider", [s["provider"]])
                and s["price"] <= q.get("max_price", s["price"]) and s["price"] <= q.get("max_price_per_gpu", Decimal(10**9)) * s["gpu_count"]
                and q.get("min_gpu_count", 0) <= s["gpu_count"] <= q.get("max_gpu_count", 16)
                and s["gpu_memory_gb"] >= q.get("min_gpu_memory_gb", 0)
                and s["availability"] == q.get("availability", s["availability"])
                and s["spot"] == q.get("spot", s["spot"])
                and (s["interconnect"] in q["interconnect"] if "interconnect" in q else True)
                and s["pricing"][0] in q.get("pricing_type", [s["pricing"][0]])
                and (s["pricing"][1] or 0) <= q.get("max_commitment_months", 120))  # fmt: skip

    sort = q.get("sort", "price")
    key = SORT_KEY[sort.lstrip("-")]
    matched = [s for s in specs if keep(s)]
    matched.sort(key=lambda s: (s["provider"], s["id"]))  # ties: provider, offer_id (stable sort keeps it)
    matched.sort(key=key, reverse=sort.startswith("-"))
    return [s["id"] for s in matched]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=offer_specs, query=queries, per_page=st.integers(1, 7))
async def test_filter_sort_and_paging_match_a_plain_python_model(api, isolated_redis, specs, query, per_page):
    """**Feature: provider-api-gateway, Property 13: Filter Correctness** — for any catalogue and any
    combination of filters, sort and page size, the pages together are exactly the offers a plain Python
    model keeps, in its order, and `total` counts them."""
    from offers.models import Offer

    specs = [s | {"id": f"o{i:02d}"} for i, s in enumerate(specs)]
    rows = [offer_row(s["id"], s["gpu"], s["provider"], s["region"], str(s["price"]), gpu_count=s["gpu_count"],
                      gpu_memory_gb=s["gpu_memory_gb"], availability=s["availability"],
                      spot_price=s["price"] / 2 if s["spot"] else None, interconnect=s["interconnect"],
                      pricing_type=s["pricing"][0], commitment_months=s["pricing"][1]) for s in specs]  # fmt: skip
    await sync_to_async(lambda: (Offer.objects.all().delete(), Offer.objects.bulk_create(rows)))()
    await landed(isolated_redis)  # cached answers of the old data retire
    params = {k: (v if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()}
    seen, page = [], 1
    while True:
        response = await api.get("/api/v1/offers", params={**params, "per_page": per_page, "page": page})
        body = response.json()
        if response.status_code == 503:  # no offers at all
            assert not specs
            break
        assert body["total"] == len(expected_ids(specs, query))
        seen += [i["offer_id"] for i in body["items"]]
        if not body["has_next"]:
            break
        page += 1
    assert seen == expected_ids(specs, query)


async def test_openapi_lists_every_status_the_api_returns(webapp):
    schema = (await webapp.get("/api/v1/openapi.json")).json()
    offers = schema["paths"]["/api/v1/offers"]["get"]["responses"]
    assert {"200", "400", "401", "422", "429", "503"} <= set(offers)


async def test_items_carry_a_stable_id_their_currency_and_the_tags_the_vendor_stated(api, pg, isolated_redis):
    """`id` is `provider:offer_id`, the same whichever sync landed the offer; prices are in USD; `tags` are
    what the latest sync's listing stated (sorted, each once)."""
    from gpubroker import store
    from gpubroker.schema import Offer

    def listed(price: str, at: datetime, tags: tuple[str, ...]) -> Offer:
        return Offer(provider="runpod", offer_id="NVIDIA H100 80GB HBM3:secure", instance_type="1x H100 SXM",
                     gpu_model="H100", gpu_vendor="NVIDIA", gpu_count=1, gpu_memory_gb=80, price_per_hour=price,
                     region="global", tags=tags, observed_at=at)  # fmt: skip

    seen = []
    for price, at, tags in (("2.69", NOW, ("soc2", "secure-cloud", "soc2", "iso27001")), ("2.49", NOW + timedelta(hours=1), ())):
        store.land(pg, "runpod", [listed(price, at, tags)], at)
        await landed(isolated_redis)
        [item] = (await api.get("/api/v1/offers", params={"provider": "runpod"})).json()["items"]
        seen.append((item["id"], item["currency"], item["price_per_hour"], item["tags"]))
    assert seen == [("runpod:NVIDIA H100 80GB HBM3:secure", "USD", 2.69, ["iso27001", "secure-cloud", "soc2"]),
                    ("runpod:NVIDIA H100 80GB HBM3:secure", "USD", 2.49, [])]  # fmt: skip
