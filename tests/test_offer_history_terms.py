"""The price history answer says how the offer's prices are bought and its GPUs connected (`GET
/api/v1/offers/{provider}/{offer_id}/history`), for offers landed by the real store (PostgreSQL test
database) and read through the whole ASGI application."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async

from gpubroker import store
from gpubroker.schema import Offer
from tests.webapp_fixtures import NOW


def offer(offer_id: str, price: str, **terms) -> Offer:
    return Offer(provider="lambda", offer_id=offer_id, instance_type="8x H100 SXM", gpu_model="H100", gpu_vendor="NVIDIA",
                 gpu_count=8, gpu_memory_gb=80, price_per_hour=Decimal(price), region="us-east-1", **terms, observed_at=NOW)  # fmt: skip


async def test_the_history_of_a_reserved_offer_says_its_term_and_interconnect(api, pg):
    reserved = {"pricing_type": "reserved", "commitment_months": 12, "interconnect": "infiniband"}
    for hours, price in ((0, "18.00"), (1, "17.20")):
        at = NOW + timedelta(hours=hours)
        await sync_to_async(store.land)(pg, "lambda", [offer("h8-1y", price, **reserved).model_copy(update={"observed_at": at}),
                                                       offer("h8", "24.00").model_copy(update={"observed_at": at})], at)  # fmt: skip
    history = (await api.get("/api/v1/offers/lambda/h8-1y/history")).json()
    assert {k: history[k] for k in reserved} == reserved
    assert [p["price_per_hour"] for p in history["items"]] == [18.0, 17.2]
    on_demand = (await api.get("/api/v1/offers/lambda/h8/history")).json()
    assert (on_demand["pricing_type"], on_demand["commitment_months"], on_demand["interconnect"]) == ("on_demand", None, None)
    assert [p["price_per_hour"] for p in on_demand["items"]] == [24.0]  # an unchanged price is one point
