"""GET /api/v1/offers on the real PostgreSQL test database."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offers.models import Offer

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
GPUS = ["H100", "A100", "RTX4090"]
PROVIDERS = ["vastai"]
REGIONS = ["Norway", "Texas, US", "Quebec, CA"]


def make(offer_id: str, gpu="H100", provider="vastai", region="Norway", price="1.00") -> Offer:
    return Offer(
        provider=provider, offer_id=offer_id, instance_type=f"1x {gpu}", gpu_model=gpu, gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal(price), region=region, availability="available",
        observed_at=NOW, first_seen=NOW, last_seen=NOW,
    )  # fmt: skip


@pytest.fixture
def offers(db):
    Offer.objects.bulk_create(
        [make("h1", price="2.50"), make("h2", price="1.75", region="Texas, US"), make("a1", "A100", price="1.10"),
         make("r1", "RTX4090", price="0.35", region="Quebec, CA"), make("r2", "RTX4090", price="0.40")]
    )  # fmt: skip


def get(client, **params):
    return client.get("/api/v1/offers", params)


def test_lists_cheapest_first_with_paging_fields(client, offers):
    body = get(client, per_page=2).json()
    assert [i["offer_id"] for i in body["items"]] == ["r1", "r2"]
    assert (body["total"], body["page"], body["per_page"], body["has_next"], body["warnings"]) == (5, 1, 2, True, [])
    last = get(client, per_page=2, page=3).json()
    assert ([i["offer_id"] for i in last["items"]], last["has_next"]) == (["h1"], False)


def test_filters_combine(client, offers):
    body = get(client, gpu="H100", region="texas, us", max_price="2").json()
    assert [i["offer_id"] for i in body["items"]] == ["h2"]
    assert body["items"][0]["price_per_hour"] == 1.75


def test_gpu_aliases_are_accepted_with_a_warning(client, offers):
    body = get(client, gpu="NVIDIA GeForce RTX 4090").json()
    assert {i["offer_id"] for i in body["items"]} == {"r1", "r2"}
    assert body["warnings"] == ["gpu 'NVIDIA GeForce RTX 4090' read as 'RTX4090'"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"gpu": "Voodoo 5"}, 400, "unknown GPU model"),
        ({"provider": "nosuchcloud"}, 400, "unknown provider"),
        ({"per_page": 0}, 422, "per_page"),
        ({"per_page": 501}, 422, "per_page"),
        ({"page": -1}, 422, "page"),
        ({"max_price": "-3"}, 422, "max_price"),
        ({"max_price": "cheap"}, 422, "max_price"),
    ],
)
def test_bad_parameters_get_a_4xx_with_a_message(client, offers, params, status, message):
    response = get(client, **params)
    assert response.status_code == status
    assert message in response.text


filters = st.fixed_dictionaries(
    {},
    optional={
        "gpu": st.sampled_from(GPUS),
        "region": st.sampled_from(REGIONS),
        "max_price": st.decimals(min_value=Decimal("0.1"), max_value=Decimal("5"), places=2),
    },
)
rows = st.lists(
    st.tuples(st.sampled_from(GPUS), st.sampled_from(REGIONS), st.decimals(Decimal("0.05"), Decimal("5"), places=2)),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows, query=filters, per_page=st.integers(1, 7))
def test_filter_and_paging_match_a_plain_python_filter(client, db, data, query, per_page):
    Offer.objects.all().delete()
    Offer.objects.bulk_create([make(f"o{i}", gpu, region=region, price=str(p)) for i, (gpu, region, p) in enumerate(data)])
    expected = sorted(
        (
            (Decimal(str(p)), f"o{i}")
            for i, (gpu, region, p) in enumerate(data)
            if gpu == query.get("gpu", gpu)
            and region == query.get("region", region)
            and ("max_price" not in query or p <= query["max_price"])
        )
    )
    seen, page = [], 1
    while True:
        body = get(client, per_page=per_page, page=page, **{k: str(v) for k, v in query.items()}).json()
        assert body["total"] == len(expected)
        seen += [i["offer_id"] for i in body["items"]]
        if not body["has_next"]:
            break
        page += 1
    assert seen == [offer_id for _, offer_id in expected]


def test_openapi_schema_is_served(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/offers" in schema["paths"]


def test_a_quarantined_provider_is_served_with_a_stale_warning(client, offers):
    from offers.models import ProviderStatus

    ProviderStatus.objects.create(provider="vastai", last_good_at=NOW, last_good_rows=5, stale=True,
                                  stale_reason="expect_column_values_to_be_unique(offer_id): 2 rows")  # fmt: skip
    body = get(client, provider="vastai").json()
    assert body["total"] == 5  # the last good data is still served
    assert body["warnings"] == [
        "vastai: latest batch quarantined, serving data last good at 2026-11-26 12:00 UTC "
        "(expect_column_values_to_be_unique(offer_id): 2 rows)"
    ]
