"""Webhook delivery through the running Airflow: REST API conf, and Kafka messages via the triggerer.

The receiver listens on loopback, so the fixture allow-lists 127.0.0.1 in the stack's database for
the module (as an operator would), whoever started the stack.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from gpubroker import settings, store, webhooks
from gpubroker_provider.airflow_api import AirflowApi
from tests.conftest import stack_logs
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.stack
DAG = "gpubroker_webhook_delivery"
STATE = Path(os.environ.get("GPUBROKER_STATE", Path(__file__).resolve().parent.parent / ".stack"))


@pytest.fixture(scope="module")
def receiver(stack_webhook_allowlist):
    r = Receiver()
    stack_webhook_allowlist("127.0.0.1")
    yield r
    r.server.should_exit = True


def stack_secret() -> str:
    return (STATE / "airflow" / "webhook.secret").read_text().strip()


def verified(request: dict) -> bool:
    headers = request["headers"]
    expected = webhooks.sign(stack_secret(), headers["webhook-id"], int(headers["webhook-timestamp"]), request["body"])
    return headers["webhook-signature"] == expected


def test_rest_api_conf_delivers_a_signed_webhook_and_retries_a_500(receiver):
    receiver.statuses[:] = [500]
    receiver.received.clear()
    api = AirflowApi()
    run_id = api.trigger(DAG, {"webhook_url": receiver.url, "event_type": "price_change",
                               "payload": {"offer_id": "o1", "old_price": 2.0, "new_price": 1.5}})  # fmt: skip
    assert api.wait(DAG, run_id, timeout=300) == "success"
    assert len(receiver.received) == 2  # the 500, then the delivery
    assert all(verified(r) for r in receiver.received)
    assert len({r["headers"]["webhook-id"] for r in receiver.received}) == 1  # the retry kept its id
    assert json.loads(receiver.received[-1]["body"])["data"]["new_price"] == 1.5


def test_bad_conf_is_refused_with_a_clear_message(receiver):
    api = AirflowApi()
    with pytest.raises(RuntimeError, match="event_type|birthday"):
        api.trigger(DAG, {"webhook_url": receiver.url, "event_type": "birthday", "payload": {}})


def request_through_kafka(url: str, payload: dict | None = None) -> str:
    """A webhook request put on gpubroker.webhooks, as a producer would; its webhook id."""
    webhook_id = f"msg_{uuid.uuid4().hex[:20]}"
    request = {"webhook_id": webhook_id, "webhook_url": url, "event_type": "test", "payload": payload or {}}
    producer = Producer(settings.kafka_config())
    producer.produce(settings.Topics.WEBHOOKS, key=webhook_id, value=json.dumps(request))
    producer.flush(10)
    return webhook_id


def delivered(receiver: Receiver, webhook_id: str, within: float = 180) -> dict:
    """The receiver's request carrying `webhook_id`, once it arrives (fails after `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if got := [r for r in receiver.received if r["headers"]["webhook-id"] == webhook_id]:
            return got[0]
        time.sleep(1)
    pytest.fail(f"no delivery {within:.0f} s after the Kafka message\n{stack_logs('airflow-triggerer', 'airflow-scheduler')}")


def test_a_message_on_the_webhooks_topic_triggers_a_delivery_through_the_triggerer(receiver):
    receiver.received.clear()
    request = delivered(receiver, request_through_kafka(receiver.url, {"hello": 1}))
    assert verified(request) and json.loads(request["body"])["data"] == {"hello": 1}


def test_a_kafka_request_to_an_internal_address_is_refused_at_delivery_and_logged(receiver):
    """Whoever can write to gpubroker.webhooks cannot make Airflow call inside our network."""
    webhook_id = request_through_kafka("http://10.255.255.1/internal")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with store.connect() as conn:
            logged = conn.execute("SELECT delivered, error FROM webhook_delivery WHERE webhook_id = %s", (webhook_id,)).fetchall()
        if logged:
            assert logged == [(False, "refused: webhook host '10.255.255.1' is an internal address (private); not allow-listed")]
            return
        time.sleep(1)
    pytest.fail("no delivery attempt logged 180 s after the Kafka message\n" + stack_logs("airflow-triggerer"))
