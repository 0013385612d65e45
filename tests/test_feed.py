"""The live feed: the WebSocket protocol, fan-out from the Redis stream, resume, SSE, robustness.

Through the whole ASGI application (gateway + Channels) on the test database and the tests' Redis
database; events enter the feed through the bridge's append (feed.bridge.Bridge), as in production.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx
import pytest
import tracemalloc
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from feed import bridge as feed_bridge
from feed import hub as feed_hub
from gpubroker import settings
from gpubroker.schema import PriceChange, ProviderEvent
from tests.conftest import ISOLATED_REDIS
from tests.webapp_fixtures import make_key, offer_row

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@dataclass
class KafkaRecord:
    """Stands in for confluent_kafka.Message (a C type tests cannot build): the same accessors."""

    topic_: str
    value_: bytes
    key_: bytes = b""
    offset_: int = 0
    headers_: list = field(default_factory=list)

    def topic(self):
        return self.topic_

    def value(self):
        return self.value_

    def key(self):
        return self.key_

    def partition(self):
        return 0

    def offset(self):
        return self.offset_

    def error(self):
        return None


def change(gpu="H100", provider="vastai", region="Norway", offer_id="o1", new="1.5") -> PriceChange:
    return PriceChange(
        event_id=str(uuid.uuid4()), provider=provider, offer_id=offer_id, gpu=gpu, gpu_form_factor=None, gpu_count=1,
        region=region, country=None, continent=None, old_price="2.0", new_price=new, price_per_gpu=new,
        change_percent=-25.0, direction="down", availability="available", observed_at=NOW, detected_at=NOW,
    )  # fmt: skip


def record(event) -> KafkaRecord:
    topic = settings.Topics.PROVIDER_EVENTS if isinstance(event, ProviderEvent) else settings.Topics.PRICE_CHANGES
    return KafkaRecord(topic, event.model_dump_json().encode())


@pytest.fixture
def feed(transactional_db, isolated_redis):
    """The bridge's append into the tests' Redis, and hubs that read it."""
    from gateway import runtime

    runtime.reset()
    feed_hub.reset()
    bridge = feed_bridge.Bridge(client=isolated_redis)

    @sync_to_async
    def publish(*events):
        return bridge.handle([record(e) for e in events])

    yield publish
    feed_hub.reset()


@pytest.fixture
async def key(transactional_db):
    return await sync_to_async(make_key)("unlimited")


@pytest.fixture(autouse=True)
async def _close_pool():
    yield
    from django.db import connections

    from gpubroker_web import db

    await db.close()
    await sync_to_async(connections.close_all)()


async def connect(key: str, path="/ws/providers/") -> tuple[WebsocketCommunicator, dict]:
    from gpubroker_web.asgi import application

    ws = WebsocketCommunicator(application, path, headers=[(b"authorization", f"Bearer {key}".encode())])
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "connection_established"
    return ws, hello


async def ask(ws, message: dict) -> dict:
    await ws.send_to(text_data=json.dumps(message))
    return await ws.receive_json_from(timeout=5)


async def next_event(ws, timeout=5.0) -> dict | None:
    """The next frame that is not a heartbeat, or None when none comes within `timeout`
    (asking without cancelling the application, which receive_json_from's timeout would do)."""
    while not await ws.receive_nothing(timeout=timeout):
        message = await ws.receive_json_from(timeout=1)
        if message["type"] != "heartbeat":
            return message
    return None


async def test_connection_established_carries_the_seed_fields(feed, key):
    ws, hello = await connect(key)
    assert hello["session_id"] and hello["message"] and hello["timestamp"]
    assert "price_updates" in hello["available_subscriptions"] and "health_status" in hello["available_subscriptions"]
    assert (await ask(ws, {"type": "ping", "timestamp": 7}))["type"] == "pong"
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", "invalid_json"), ("[1, 2]", "invalid_message"), ('{"type": "dance"}', "unknown_type"),
     ('{"type": "subscribe", "channels": "gpu:H100"}', "invalid_message"),
     ('{"type": "subscribe", "channels": ["gpu:Voodoo"]}', "bad_channel"),
     ('{"type": "subscribe", "channels": ["provider:nosuchcloud"]}', "bad_channel"),
     ('{"type": "subscribe", "channels": ["region:Atlantis"]}', "bad_channel"),
     ('{"type": "subscribe", "channels": ["weather"]}', "bad_channel"),
     ('{"type": "get_offers", "filters": {"max_price": "NaN"}}', "invalid_message"),
     ('{"type": "resume", "session_id": "nope"}', "unknown_session")],
)  # fmt: skip
async def test_bad_frames_get_an_error_and_the_socket_stays_open(feed, key, frame, code):
    ws, _ = await connect(key)
    await ws.send_to(text_data=frame)
    reply = await ws.receive_json_from(timeout=5)
    assert (reply["type"], reply["code"]) == ("error", code) and reply["message"]
    assert (await ask(ws, {"type": "ping"}))["type"] == "pong"  # still open
    await ws.disconnect()


async def test_binary_and_oversize_frames_get_an_error_too(feed, key):
    ws, _ = await connect(key)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=5))["code"] == "binary_frame"
    await ws.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert (await ws.receive_json_from(timeout=5))["code"] == "frame_too_large"
    assert (await ask(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)  # fmt: skip
TYPES = ["subscribe", "unsubscribe", "ping", "get_providers", "resume", "dance", ""]
frames = st.one_of(
    st.text(min_size=1, max_size=300).map(lambda t: ("text", t)),  # (the test client cannot send empty frames)
    st.binary(min_size=1, max_size=300).map(lambda b: ("bytes", b)),
    st.builds(lambda kind, body: ("text", json.dumps({"type": kind, **body})), st.sampled_from(TYPES),
              st.dictionaries(st.sampled_from(["channels", "session_id", "last_event_id", "timestamp", "x"]), json_values, max_size=3)),
    st.builds(lambda n: ("text", json.dumps({"type": "subscribe", "channels": ["gpu:H100"] * n})), st.integers(0, 200)),
    st.just(("text", "x" * 70_000)),
)  # fmt: skip


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(frames, min_size=1, max_size=8))
async def test_any_frames_get_one_answer_each_and_the_socket_stays_open(feed, key, sent):
    ws, _ = await connect(key)
    for kind, frame in sent:
        await ws.send_to(**{f"{kind}_data": frame})
    await ws.send_to(text_data=json.dumps({"type": "ping", "timestamp": "the end"}))
    replies = []
    while (reply := await ws.receive_json_from(timeout=5)).get("echo") != "the end":
        replies.append(reply)
    assert len(replies) == len(sent), replies  # one answer per frame: an error or the protocol's reply
    assert all(r["type"] != "error" or (r["code"] and r["message"]) for r in replies)
    await ws.disconnect()


async def test_a_flood_of_subscribes_keeps_memory_flat(feed, key):
    ws, _ = await connect(key)
    flood = [{"type": "subscribe", "channels": ["gpu:H100", "provider:vastai"]}, {"type": "unsubscribe", "channels": ["gpu:H100"]},
             {"type": "subscribe", "channels": ["region:nowhere"]}]  # fmt: skip

    async def round_of(n: int) -> None:
        for i in range(n):
            await ws.send_to(text_data=json.dumps(flood[i % 3]))
            await ws.receive_json_from(timeout=5)

    await round_of(300)  # warm: caches, the channel index, the regions list
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    await round_of(3000)
    grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 256 * 1024, f"{grown} bytes kept after 3,000 frames"
    assert (await ask(ws, {"type": "ping"}))["type"] == "pong"
    await ws.disconnect()


async def test_subscriptions_are_capped_per_socket(feed, key):
    ws, _ = await connect(key)
    gpus = ["H100", "A100", "H200", "B200", "L40S", "L4", "A10", "V100", "RTX4090", "RTX3090"]
    channels = [f"gpu:{g}" for g in gpus] + [f"provider:{p}" for p in ("vastai", "lambda", "runpod", "aws", "gcp")]
    channels += ["price_updates", "availability", "health_status"] * 20
    reply = await ask(ws, {"type": "subscribe", "channels": channels[:64]})
    assert reply["type"] == "subscribed"
    assert (await ask(ws, {"type": "subscribe", "channels": [f"gpu:{g}" for g in ("MI300X", "A40")] * 40}))["code"] == "invalid_message"
    await ws.disconnect()


async def test_events_reach_matching_subscribers_once_and_nobody_else(feed, key):
    await sync_to_async(offer_row("x", region="Quebec, CA").save)()
    h100, _ = await connect(key)
    everything, _ = await connect(key)
    other, _ = await connect(key)
    assert (await ask(h100, {"type": "subscribe", "channels": ["gpu:h100", "provider:vastai", "region:quebec, ca"]}))[
        "channels"] == ["gpu:H100", "provider:vastai", "region:Quebec, CA"]
    await ask(everything, {"type": "subscribe", "channels": ["price_updates"]})
    await ask(other, {"type": "subscribe", "channels": ["gpu:RTX 4090"]})
    sent = change(region="Quebec, CA")
    assert await feed(sent) == 1
    got = await next_event(h100)
    assert (got["type"], got["data"]["event_id"], got["data"]["new_price"]) == ("price_update", sent.event_id, 1.5)
    assert got["id"]  # its position, for resuming
    assert await next_event(h100, timeout=0.5) is None  # three matching channels, one delivery
    assert (await next_event(everything))["data"]["event_id"] == sent.event_id
    assert await next_event(other, timeout=0.5) is None
    assert await feed(sent) == 0  # the same event again (a replay upstream) is not appended twice
    for ws in (h100, everything, other):
        await ws.disconnect()


async def test_the_provider_route_starts_subscribed_and_health_updates_flow(feed, key):
    ws, hello = await connect(key, "/ws/providers/lambda/")
    assert hello["subscriptions"] == ["provider:lambda"]
    health, _ = await connect(key)
    await ask(health, {"type": "subscribe", "channels": ["health_status"]})
    await feed(ProviderEvent(type="health_update", provider="lambda", status="down", reason="timeout", timestamp=NOW))
    for socket in (ws, health):
        got = await next_event(socket)
        assert (got["type"], got["data"]["provider"], got["data"]["status"]) == ("health_update", "lambda", "down")
        await socket.disconnect()


async def test_get_offers_and_get_providers_answer_like_the_rest_api(feed, key):
    await sync_to_async(offer_row("w1", price="2.5").save)()
    ws, _ = await connect(key)
    offers = await ask(ws, {"type": "get_offers", "filters": {"gpu": "h100"}, "per_page": 5})
    assert (offers["type"], offers["total"], offers["items"][0]["offer_id"]) == ("offers_list", 1, "w1")
    assert offers["warnings"] == ["gpu 'h100' read as 'H100'"]
    providers = await ask(ws, {"type": "get_providers"})
    assert providers["type"] == "providers_list" and {p["slug"] for p in providers["items"]} >= {"vastai", "lambda"}
    await ws.disconnect()


async def test_resume_restores_subscriptions_and_replays_what_was_missed(feed, key):
    ws, hello = await connect(key)
    await ask(ws, {"type": "subscribe", "channels": ["gpu:H100"]})
    first = change(offer_id="a")
    await feed(first)
    seen = await next_event(ws)
    await ws.disconnect()
    missed = [change(offer_id=f"m{i}") for i in range(3)]
    await feed(*missed, change(gpu="A100", offer_id="not-mine"))
    again, _ = await connect(key)
    resumed = await ask(again, {"type": "resume", "session_id": hello["session_id"], "last_event_id": seen["id"]})
    assert (resumed["type"], resumed["subscriptions"], resumed["complete"]) == ("resumed", ["gpu:H100"], True)
    replayed = [await next_event(again) for _ in missed]
    assert [m["data"]["offer_id"] for m in replayed] == ["m0", "m1", "m2"]
    assert await next_event(again, timeout=0.5) is None  # nothing twice, nothing of A100
    live = change(offer_id="after")
    await feed(live)
    assert (await next_event(again))["data"]["offer_id"] == "after"
    await again.disconnect()


async def test_idle_sockets_get_heartbeats(feed, key, monkeypatch):
    monkeypatch.setattr(feed_hub, "HEARTBEAT_SECONDS", 0.5)
    ws, _ = await connect(key)
    message = await ws.receive_json_from(timeout=5)
    assert message["type"] == "heartbeat"
    await ws.disconnect()


async def test_a_consumer_that_stops_reading_is_cut_off_and_costs_nothing_more(feed, key, live_webapp):
    """A client that stops reading (a raw socket: handshake, subscribe, then never read) while events
    flood in: past its bounded buffer the server stops queueing for it and drops it from the hub."""
    import base64
    import os
    import socket
    import struct

    def masked_text(payload: bytes) -> bytes:  # a client frame, as RFC 6455 wants it (masked)
        mask = os.urandom(4)
        head = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else bytes([0x81, 0xFE]) + struct.pack("!H", len(payload))
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    host, port = live_webapp.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /ws/providers/ HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
                 f"Authorization: Bearer {key}\r\n\r\n".encode())  # fmt: skip
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    sock.sendall(masked_text(json.dumps({"type": "subscribe", "channels": ["price_updates"]}).encode()))
    await asyncio.sleep(0.5)
    members = lambda: sum(len(h.subscribers) for h in feed_hub._hubs.values())  # noqa: E731
    assert members() == 1
    flood = [change(offer_id=f"flood{i}", new=str(1 + i / 100000)) for i in range(15_000)]
    for chunk in range(0, len(flood), 500):
        await feed(*flood[chunk : chunk + 500])
    await asyncio.sleep(2)
    assert members() == 0  # cut off: the hub holds nothing for it any more
    assert len(feed_hub._hubs) == 1
    sock.close()


async def test_sse_streams_events_with_ids_and_resumes_from_last_event_id(feed, key, live_webapp):
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live_webapp, headers=headers, timeout=10) as client:
        assert (await client.get("/api/v1/stream", params={"channels": "gpu:Voodoo"})).status_code == 400
        async with client.stream("GET", "/api/v1/stream", params={"channels": "gpu:H100,price_updates"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["ratelimit-limit"] == "100000"
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith(": subscribed to gpu:H100, price_updates")
            first = change(offer_id="s1")
            await feed(first)
            event = await read_sse_event(lines)
        assert event["event"] == "price_update" and json.loads(event["data"])["data"]["event_id"] == first.event_id
        await feed(change(offer_id="s2"), change(offer_id="s3"))
        async with client.stream("GET", "/api/v1/stream", params={"channels": "gpu:H100"},
                                 headers={"Last-Event-ID": event["id"]}) as response:  # fmt: skip
            lines = response.aiter_lines()
            resumed = [await read_sse_event(lines), await read_sse_event(lines)]
        assert [json.loads(e["data"])["data"]["offer_id"] for e in resumed] == ["s2", "s3"]


async def read_sse_event(lines) -> dict:
    event: dict = {}
    async for line in lines:
        if not line:
            if "data" in event:
                return event
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        event[name] = value
    raise AssertionError("the stream ended")


def test_poison_goes_to_the_dead_letter_topic_and_the_rest_flows(isolated_redis):
    from tests.conftest import kafka_tail

    letters = kafka_tail(settings.Topics.DEAD_LETTER)
    bridge = feed_bridge.Bridge(client=isolated_redis)
    good = change(offer_id="good")
    poison = KafkaRecord(settings.Topics.PRICE_CHANGES, b'{"type": "price_change", "new_price": "free"}', b"k", 42)
    assert bridge.handle([poison, record(good), KafkaRecord(settings.Topics.ANOMALIES, b"\xff not json", b"k", 43)]) == 1
    dead = [m for m in letters.consume(10, timeout=10) if not m.error()]
    letters.close()
    assert [m.value() for m in dead] == [poison.value(), b"\xff not json"]
    headers = dict(dead[0].headers())
    assert headers["source.topic"] == settings.Topics.PRICE_CHANGES.encode() and headers["source.offset"] == b"42"
    assert b"new_price" in headers["reason"] or b"price_change" in headers["reason"]
    entries = isolated_redis.xrange(feed_hub.STREAM)
    assert [json.loads(fields[b"data"])["offer_id"] for _, fields in entries] == ["good"]
    assert ISOLATED_REDIS  # the tests' database, not the stack's feed
