"""Kafka stopped during a sync: the events wait in the outbox and go out once Kafka is back, once each.

Stops and restarts the running stack's Kafka broker for real (`stack.sh stop kafka` / `up`).
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from gpubroker import settings
from gpubroker_provider.airflow_api import AirflowApi
from tests.conftest import kafka_tail, recording

pytestmark = pytest.mark.stack
STACK = Path(__file__).resolve().parent.parent / "astro" / "local" / "stack.sh"
SYNC = "gpubroker_data_sync"
OFFER = "18012345"


def stack(*args: str) -> None:
    subprocess.run(["bash", str(STACK), *args], check=True, capture_output=True, timeout=300)


def sync(api: AirflowApi) -> None:
    run_id = api.trigger(SYNC, {"providers": ["vastai"]})
    assert api.wait(SYNC, run_id, 300) == "success"


def pending() -> int:
    with psycopg.connect(settings.DATABASE_URL) as conn:
        return conn.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0]


def test_kafka_stopped_during_a_sync_loses_no_event(stack_replay):
    api = AirflowApi()
    sync(api)  # baseline: the recorded prices
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    row = next(r for r in body["offers"] if str(r["id"]) == OFFER)
    row["dph_total"] = new_price = round(row["dph_total"] * 0.8, 4)

    consumer = kafka_tail(settings.Topics.PRICE_UPDATES)  # positions taken before the outage stay valid
    stack("stop", "kafka")
    try:
        stack_replay.put("vastai", "bundles.json", body)
        sync(api)  # lands in PostgreSQL; its offer_observed event cannot be published
        assert pending() >= 1
    finally:
        stack("up", "--no-sync")  # Kafka back

    sync(api)  # the next run (or the health checks' publish step) sends what waited
    assert pending() == 0
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error() or message.key() != f"vastai:{OFFER}".encode():
            continue
        event = json.loads(message.value())  # offer_observed (flink/README.md): each landing observes the offer
        if event["price_per_hour"] == new_price and event["old_price"] != new_price:  # the observation of the change
            seen.append(event["event_id"])
            deadline = min(deadline, time.monotonic() + 5)  # listen a little longer for a duplicate
    consumer.close()
    assert len(seen) == 1  # published once Kafka was back, and only once
