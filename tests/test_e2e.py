"""End to end on the running stack: replay vendor -> Airflow sync -> PostgreSQL -> Kafka -> Flink
-> Kafka -> bridge -> Redis channel layer -> WebSocket, and the REST API.

Needs `make up` (or `make test`, which starts the stack first).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
import websockets
from confluent_kafka import Producer

from gpubroker import settings
from gpubroker.schema import OfferObserved, PriceChange, SignificantPriceChange, derived_id
from gpubroker_provider.airflow_api import AirflowApi
from tests.conftest import kafka_tail, recording

pytestmark = pytest.mark.stack
WEB = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000/ws/providers/"
DAG = "gpubroker_data_sync"
H100_OFFER = "18013001"


def sync(api: AirflowApi) -> None:
    run_id = api.trigger(DAG, {"providers": ["vastai"]})
    assert api.wait(DAG, run_id, timeout=300) == "success", api.task_instances(DAG, run_id)


def api_price(offer_id: str, key: str) -> float:
    items = httpx.get(f"{WEB}/api/v1/offers", params={"gpu": "H100", "provider": "vastai"},
                      headers={"Authorization": f"Bearer {key}"}).json()["items"]  # fmt: skip
    return next(i["price_per_hour"] for i in items if i["offer_id"] == offer_id)


async def listen(channel: str, key: str):
    ws = await websockets.connect(WS, additional_headers={"Authorization": f"Bearer {key}"})
    assert json.loads(await ws.recv())["type"] == "connection_established"
    await ws.send(json.dumps({"type": "subscribe", "channels": [channel]}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def next_update(ws, offer_id: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return None
        if message["type"] == "price_update" and message["offer_id"] == offer_id:
            return message
    return None


async def test_a_price_change_reaches_subscribers_of_that_gpu_and_the_api(stack_replay, stack_api_key, record_property,
                                                                         capsys):  # fmt: skip
    api = AirflowApi()
    await asyncio.to_thread(sync, api)  # baseline: the recorded prices
    before = api_price(H100_OFFER, stack_api_key)

    body = copy.deepcopy(recording("vastai", "bundles.json"))
    row = next(r for r in body["offers"] if str(r["id"]) == H100_OFFER)
    row["dph_total"] = new = round(before * random.uniform(0.5, 0.95), 4)

    h100, rtx = await listen("gpu:H100", stack_api_key), await listen("gpu:RTX4090", stack_api_key)
    changes = kafka_tail(settings.Topics.PRICE_CHANGES)
    stack_replay.put("vastai", "bundles.json", body)
    changed_at = time.monotonic()
    sync_done = asyncio.create_task(asyncio.to_thread(sync, api))
    update = await next_update(h100, H100_OFFER, timeout=180)
    latency = time.monotonic() - changed_at
    await sync_done

    assert update is not None, "the H100 subscriber got no price_update"
    assert (update["gpu"], update["old_price"], update["new_price"]) == ("H100", before, new)
    assert update["change_percent"] == pytest.approx((new - before) / before * 100, abs=0.01)
    assert await next_update(rtx, H100_OFFER, timeout=2) is None  # another GPU's subscriber hears nothing
    assert api_price(H100_OFFER, stack_api_key) == new
    messages = [json.loads(m.value()) for m in changes.consume(1000, timeout=5) if not m.error()]
    changes.close()
    emitted = [(m["provider"], m["offer_id"]) for m in messages if m["type"] == "price_change" and m["provider"] == "vastai"]
    assert emitted == [("vastai", H100_OFFER)]  # exactly the changed offer, once
    await h100.close()
    await rtx.close()

    record_property("price_change_to_websocket_seconds", round(latency, 2))
    with capsys.disabled():
        print(f"\n  e2e: price change -> sync -> Kafka -> Flink -> WebSocket in {latency:.1f} s")


async def test_a_vendors_own_sync_brings_its_price_change_to_a_client_within_45_s_of_the_trigger(stack_replay, stack_api_key):
    """The per-vendor DAG on its cadence (triggered here): no publish task; the relay sends the events at the commit."""
    api, dag = AirflowApi(), "gpubroker_sync_vastai"
    await asyncio.to_thread(sync, api)  # baseline: the recorded prices
    before = api_price(H100_OFFER, stack_api_key)
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    row = next(r for r in body["offers"] if str(r["id"]) == H100_OFFER)
    row["dph_total"] = new = round(before * random.uniform(1.05, 1.5), 4)
    stack_replay.put("vastai", "bundles.json", body)

    client = await listen("provider:vastai", stack_api_key)
    triggered = time.monotonic()
    run_id = await asyncio.to_thread(api.trigger, dag)
    update = await next_update(client, H100_OFFER, timeout=45)
    received = time.monotonic()
    await client.close()

    assert update is not None, f"no price_update within 45 s of triggering {dag} ({api.task_instances(dag, run_id)})"
    assert (update["old_price"], update["new_price"]) == (before, new)
    landed_at = datetime.fromisoformat(update["landed_at"])  # the landing's commit time, stamped by the relay
    assert 0 < (datetime.now(timezone.utc) - landed_at).total_seconds() < received - triggered + 1
    assert await asyncio.to_thread(api.wait, dag, run_id, 120) == "success"
    assert [t["task_id"] for t in api.task_instances(dag, run_id) if t["state"] == "success"] == ["sync_provider"]


def test_flink_forwards_a_change_once_and_drops_a_repeat_of_the_same_observation():
    observed = OfferObserved(
        event_id=str(uuid.uuid4()), provider="test", offer_id=f"flink-{uuid.uuid4()}", gpu="A100", gpu_form_factor=None,
        gpu_count=1, region="Norway", country="NO", continent="EU", price_per_hour="1.6", price_per_gpu="1.6",
        spot_price=None, availability="available", available_count=1, old_price="2.0", old_availability="available",
        observed_at="2026-11-26T12:00:00Z",
    )  # fmt: skip
    consumer = kafka_tail(settings.Topics.PRICE_CHANGES)
    producer = Producer(settings.kafka_config())
    for _ in range(2):  # the same observation twice, as a re-sent outbox row would be
        producer.produce(settings.Topics.PRICE_UPDATES, key=observed.key, value=observed.model_dump_json())
    producer.flush(10)

    changes, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:  # after the first change, listen 5 s more for a (wrong) second one
        message = consumer.poll(0.5)
        if message is not None and not message.error() and message.key() == observed.key.encode():
            changes.append(json.loads(message.value()))
            deadline = min(deadline, time.monotonic() + 5)
    consumer.close()
    # one price_change, and beside it one significant_price_change (a change of 5% or more)
    assert sorted(c["type"] for c in changes) == ["price_change", "significant_price_change"]
    significant = SignificantPriceChange.model_validate(next(c for c in changes if c["type"] != "price_change"))
    changes = [PriceChange.model_validate(c) for c in changes if c["type"] == "price_change"]
    assert significant.event_id == derived_id(observed.event_id, "significant_price_change")
    assert (changes[0].old_price, changes[0].new_price, changes[0].direction) == (Decimal("2"), Decimal("1.6"), "down")
    assert changes[0].change_percent == pytest.approx(-20.0)
    assert changes[0].event_id == derived_id(observed.event_id, "price_change")
