"""Webhook signing, target checks and delivery against a real local HTTP receiver and real PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gpubroker import webhooks

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A local webhook endpoint: answers with the queued statuses (then 200) and keeps what it got."""

    def __init__(self):
        self.statuses: list[int] = []
        self.received: list[dict] = []
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/hook"

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append({"headers": dict(request.headers), "body": body})
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.should_exit = True


@pytest.fixture
def inbox(receiver, pg):
    """The receiver, allow-listed the way an operator would (a `webhook_allowlist` row)."""
    receiver.statuses.clear(), receiver.received.clear()
    pg.execute("INSERT INTO webhook_allowlist (host, note, added_at) VALUES ('127.0.0.1', 'test receiver', now())")
    return receiver


def test_signature_matches_the_standard_webhooks_reference_vector():
    body = b'{"test": 2432232314}'
    assert webhooks.sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                                 "http://[::1]/x", "http://192.168.0.10/x", "http://0.0.0.0/x"])  # fmt: skip
def test_internal_targets_are_refused_unless_allow_listed(url):
    with pytest.raises(webhooks.WebhookRefused, match="internal address"):
        webhooks.check_target(url, allowed=set())
    host = url.split("/")[2].strip("[]")
    webhooks.check_target(url, allowed={host})


def test_delivery_to_an_internal_host_is_refused_until_it_is_allow_listed(pg, receiver):
    hook = webhooks.Webhook("msg_inside", receiver.url, "test", {})
    with pytest.raises(webhooks.WebhookRefused, match="internal address"):
        webhooks.deliver(pg, hook, SECRET)
    pg.execute("INSERT INTO webhook_allowlist (host, note, added_at) VALUES ('127.0.0.1', '', now())")
    assert webhooks.deliver(pg, hook, SECRET)["status"] == 200


def test_public_targets_pass():
    webhooks.check_target("https://8.8.8.8/hook", allowed=set())


@pytest.mark.parametrize(
    "request_",
    [{"webhook_url": "ftp://x/y", "event_type": "test", "payload": {}},
     {"webhook_url": "https://example.com", "event_type": "birthday", "payload": {}},
     {"webhook_url": "https://example.com", "event_type": "test", "payload": [1]}],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_clear_message(request_):
    with pytest.raises(webhooks.WebhookRefused, match="must be"):
        webhooks.Webhook.from_request(request_, "msg_1")


def test_delivery_retries_a_500_signs_and_logs_every_attempt_once_per_id(pg, inbox):
    inbox.statuses[:] = [500]
    hook = webhooks.Webhook("msg_abc", inbox.url, "price_change", {"offer_id": "o1", "new_price": 1.5})
    result = webhooks.deliver(pg, hook, SECRET, backoff=0.05)
    assert result == {"webhook_id": "msg_abc", "status": 200, "attempts": 2}
    last = inbox.received[-1]
    timestamp = int(last["headers"]["webhook-timestamp"])
    assert last["headers"]["webhook-id"] == "msg_abc"
    assert last["headers"]["webhook-signature"] == webhooks.sign(SECRET, "msg_abc", timestamp, last["body"])
    assert json.loads(last["body"]) == {"type": "price_change", "timestamp": timestamp,
                                        "data": {"offer_id": "o1", "new_price": 1.5}}  # fmt: skip
    log = pg.execute("SELECT attempt, status_code, delivered FROM webhook_delivery ORDER BY id").fetchall()
    assert log == [(1, 500, False), (2, 200, True)]

    assert webhooks.deliver(pg, hook, SECRET)["status"] == "already delivered"
    assert len(inbox.received) == 2  # idempotent: not sent again


def test_a_4xx_is_final_and_repeated_failures_raise(pg, inbox):
    inbox.statuses[:] = [410]
    with pytest.raises(webhooks.DeliveryFailed, match="HTTP 410"):
        webhooks.deliver(pg, webhooks.Webhook("msg_gone", inbox.url, "test", {}), SECRET, backoff=0.05)
    inbox.statuses[:] = [503, 503, 503]
    with pytest.raises(webhooks.DeliveryFailed, match="after 3 attempts: HTTP 503"):
        webhooks.deliver(pg, webhooks.Webhook("msg_down", inbox.url, "test", {}), SECRET, attempts=3, backoff=0.05)


def test_kafka_messages_become_requests_or_are_skipped():
    def message(value, offset=7):
        return SimpleNamespace(value=lambda: value, topic=lambda: "gpubroker.webhooks", partition=lambda: 0,
                               offset=lambda: offset)  # fmt: skip

    good = webhooks.from_kafka_message(message(b'{"webhook_url": "https://example.com/h", "event_type": "test", "payload": {}}'))
    assert good["webhook_id"] == webhooks.stable_id("gpubroker.webhooks", 0, 7)
    assert webhooks.from_kafka_message(message(b"not json")) is None
    assert webhooks.from_kafka_message(message(b'{"event_type": "test"}')) is None
