"""An alert rule end to end on the running stack: the rule is created through the webapp's API, a
price is lowered on the replay server, the data sync runs in Airflow; Flink's change reaches the
alert matcher (`manage.py match_alerts`, a stack service), whose request on gpubroker.webhooks the
delivery DAG sends to a local receiver, signed with the rule's own secret.

The receiver listens on loopback, allow-listed in the stack's database for the module, for the
test's API key only (an allow-list entry has one owner).
"""

from __future__ import annotations

import copy
import json
import random
import time

import httpx
import pytest

from gpubroker import webhooks
from gpubroker_provider.airflow_api import AirflowApi
from tests.conftest import recording, stack_logs
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.stack
WEB = "http://127.0.0.1:8000/api/v1"
DAG = "gpubroker_data_sync"
H100_OFFER = "18013001"  # vastai, 8x H100 SXM


@pytest.fixture(scope="module")
def receiver(stack_webhook_allowlist, stack_api_key):
    r = Receiver()
    stack_webhook_allowlist("127.0.0.1", stack_api_key)
    yield r
    r.server.should_exit = True


def current_price(key: str) -> float:
    items = httpx.get(f"{WEB}/offers", params={"gpu": "H100", "provider": "vastai", "per_page": 100},
                      headers={"Authorization": f"Bearer {key}"}).json()["items"]  # fmt: skip
    return next(i["price_per_hour"] for i in items if i["offer_id"] == H100_OFFER)


def test_a_lowered_price_reaches_the_rules_webhook_once_signed_with_its_secret(stack_replay, stack_api_key, receiver,
                                                                               record_property):  # fmt: skip
    headers = {"Authorization": f"Bearer {stack_api_key}"}
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    row = next(r for r in body["offers"] if str(r["id"]) == H100_OFFER)
    before = min(current_price(stack_api_key), row["dph_total"])  # the price the stack has now, or the recorded one
    row["dph_total"] = new = round(before * random.uniform(0.5, 0.9), 4)
    # only this drop can match: this offer's price is at most `new` only now, and it fell by at least 5%
    rule = httpx.post(f"{WEB}/alerts", headers=headers, json={
        "name": "e2e", "gpu": "H100 SXM", "providers": ["vastai"], "max_price": new, "drop_percent": 5,
        "webhook_url": receiver.url,
    })  # fmt: skip
    assert rule.status_code == 201, rule.text
    rule = rule.json()
    receiver.received.clear()
    try:
        stack_replay.put("vastai", "bundles.json", body)
        started = time.monotonic()
        api = AirflowApi()
        run_id = api.trigger(DAG, {"providers": ["vastai"]})
        assert api.wait(DAG, run_id, timeout=120) == "success", api.task_instances(DAG, run_id)
        while not receiver.received and time.monotonic() - started < 100:
            time.sleep(0.5)
        latency = time.monotonic() - started
        time.sleep(5)  # anything else would come now

        assert len(receiver.received) == 1, \
            f"{receiver.received}\n{stack_logs('alert-matcher', 'airflow-triggerer')}"
        [request] = receiver.received
        h = request["headers"]
        assert h["webhook-signature"] == webhooks.sign(rule["secret"], h["webhook-id"], int(h["webhook-timestamp"]),
                                                       request["body"])  # fmt: skip
        sent = json.loads(request["body"])
        event = sent["data"]["event"]
        assert (sent["type"], sent["data"]["alert"]["rule_id"]) == ("price_change", rule["id"])
        assert (event["provider"], event["offer_id"], event["gpu"], event["new_price"]) == ("vastai", H100_OFFER, "H100", new)
        assert h["webhook-id"] == webhooks.stable_id("alert", rule["id"], event["event_id"])

        [delivery] = httpx.get(f"{WEB}/alerts/{rule['id']}/deliveries", headers=headers).json()["items"]
        assert (delivery["status"], delivery["attempts"], delivery["response_code"], delivery["event_id"]) == (
            "delivered", 1, 200, event["event_id"])
        record_property("sync_to_alert_webhook_seconds", round(latency, 1))
        print(f"\n  e2e: price lowered -> sync -> Flink -> matcher -> delivery DAG -> receiver in {latency:.1f} s")
    finally:
        assert httpx.delete(f"{WEB}/alerts/{rule['id']}", headers=headers).status_code == 204
