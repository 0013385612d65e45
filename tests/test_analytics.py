"""The analytics API (webapp/analytics) through the whole ASGI application on the real PostgreSQL
test database: anomalies with filters, the GPU overview, and a GPU's 1-minute series. The rows are
the ones the Flink analytics job writes (tests/test_flink_analytics.py checks that it does)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from tests.webapp_fixtures import offer_row

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)


def anomaly(offer_id: str, observed_at: datetime, gpu="H100", provider="vastai", reason="zscore"):
    from analytics.models import Anomaly

    return Anomaly(event_id=uuid.uuid4(), provider=provider, offer_id=offer_id, gpu=gpu, region="Norway",
                   price_per_hour=Decimal("6.0"), price_per_gpu=Decimal("6.0"), mean=2.0, stddev=0.1, z=40.0,
                   reason=reason, old_price=None, observed_at=observed_at, detected_at=observed_at)  # fmt: skip


def window(start: datetime, low: str, avg: str, high: str, offers: int, gpu="H100", dimension="provider", value="vastai"):
    from analytics.models import GpuPriceAggregate

    return GpuPriceAggregate(gpu=gpu, dimension=dimension, value=value, window_start=start,
                             window_end=start + timedelta(minutes=1), min_price_per_gpu=Decimal(low),
                             avg_price_per_gpu=Decimal(avg), max_price_per_gpu=Decimal(high), offers=offers,
                             available=offers - 1)  # fmt: skip


@sync_to_async
def insert(*rows):
    for row in rows:
        row.save()


@pytest.fixture
async def analytics(api):
    await insert(
        anomaly("a", NOW - timedelta(hours=3)), anomaly("b", NOW - timedelta(hours=1), provider="lambda", reason="drop"),
        anomaly("c", NOW - timedelta(minutes=5), gpu="A100"),
        offer_row("h1", price="2.50"), offer_row("h2", price="2.00", provider="lambda"), offer_row("h3", price="3.00"),
        offer_row("h8", price="24.00", gpu_count=8), offer_row("gone", price="0.10", availability="unavailable"),
        window(NOW - timedelta(hours=24, minutes=30), "2.20", "2.30", "2.40", 3),  # the hour 24 h ago
        window(NOW - timedelta(hours=24, minutes=30), "2.50", "2.50", "2.50", 1, value="lambda"),
        window(NOW - timedelta(minutes=30), "2.50", "2.80", "3.00", 3),
        window(NOW - timedelta(minutes=30), "2.00", "2.00", "2.00", 1, value="lambda"),
        window(NOW - timedelta(minutes=30), "2.00", "2.60", "3.00", 4, dimension="continent", value="EU"),
        window(NOW - timedelta(minutes=10), "2.50", "2.75", "3.00", 2),
    )  # fmt: skip
    return api


async def offer_ids(client, **params) -> list[str]:
    response = await client.get("/api/v1/anomalies", params=params)
    assert response.status_code == 200, response.text
    return [i["offer_id"] for i in response.json()["items"]]


async def test_anomalies_newest_first_with_filters(analytics):
    assert await offer_ids(analytics) == ["c", "b", "a"]
    assert await offer_ids(analytics, gpu="nvidia h100 80gb") == ["b", "a"]  # any alias
    assert await offer_ids(analytics, provider="lambda") == ["b"]
    assert await offer_ids(analytics, since=(NOW - timedelta(hours=2)).isoformat(), limit=1) == ["c"]
    item = (await analytics.get("/api/v1/anomalies", params={"provider": "lambda"})).json()["items"][0]
    assert (item["reason"], item["price_per_gpu"], item["z"]) == ("drop", 6.0, 40.0)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [({"gpu": "H9000"}, 400, "unknown GPU model"), ({"limit": 0}, 422, "limit"), ({"since": "yesterday"}, 422, "since"), ({"since": "0.5"}, 422, "since"),
     ({"provider": "Robert'); DROP TABLE"}, 422, "provider")],
)  # fmt: skip
async def test_bad_anomaly_filters_say_what_is_wrong(analytics, params, status, says):
    response = await analytics.get("/api/v1/anomalies", params=params)
    assert response.status_code == status and says in response.json()["detail"]


async def test_gpus_list_cheapest_median_offers_and_the_24h_change(analytics):
    response = await analytics.get("/api/v1/gpus")
    assert response.status_code == 200, response.text
    [h100] = response.json()["items"]
    assert h100["offers"] == 4  # the unavailable offer is not counted
    assert h100["cheapest"] == {"provider": "lambda", "offer_id": "h2", "region": "Norway", "price_per_hour": 2.0,
                                "price_per_gpu": 2.0}  # fmt: skip
    assert h100["median_price_per_gpu"] == 2.75  # of 2.00, 2.50, 3.00, 3.00 per GPU
    assert (h100["price_per_gpu_24h_ago"], h100["change_24h_percent"]) == (2.2, -9.09)


async def test_gpu_stats_give_the_series_of_the_window(analytics):
    response = await analytics.get("/api/v1/gpus/h100/stats", params={"window": "1h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["gpu"], body["window"], body["by"]) == ("H100", "1h", "all")
    first, second = body["series"]  # the window 24 h ago is outside
    assert (first["min_price_per_gpu"], first["avg_price_per_gpu"], first["max_price_per_gpu"]) == (2.0, 2.6, 3.0)
    assert (first["offers"], first["available"], second["offers"]) == (4, 2, 2)
    by_provider = (await analytics.get("/api/v1/gpus/H100/stats", params={"window": "1h", "by": "provider"})).json()
    assert [(w["provider"], w["offers"]) for w in by_provider["series"]] == [("lambda", 1), ("vastai", 3), ("vastai", 2)]
    day = (await analytics.get("/api/v1/gpus/H100/stats", params={"window": "24h", "by": "continent"})).json()
    assert [(w["continent"], w["avg_price_per_gpu"]) for w in day["series"]] == [("EU", 2.6)]


@pytest.mark.parametrize(("path", "status"), [("/api/v1/gpus/H9000/stats", 400), ("/api/v1/gpus/H100/stats?window=2h", 422),
                                              ("/api/v1/gpus/H100/stats?by=region", 422)])  # fmt: skip
async def test_bad_stats_requests_get_a_message_not_a_500(analytics, path, status):
    response = await analytics.get(path)
    assert response.status_code == status and response.json()["detail"]
