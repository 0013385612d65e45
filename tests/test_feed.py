"""The live feed: the WebSocket protocol, fan-out from the Redis stream, resume, SSE, robustness.

Through the whole ASGI application (gateway + Channels) on the test database and the tests' Redis
database; events enter the feed through the bridge's append (feed.bridge.Bridge), as in production.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

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
from gpubroker.schema import (Anomaly, AvailabilityChange, HealthScore, PriceChange, ProviderEvent, SignificantPriceChange,
                              health_score_id)  # fmt: skip
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
    topic = {ProviderEvent: settings.Topics.PROVIDER_EVENTS, HealthScore: settings.Topics.HEALTH_SCORES,
             Anomaly: settings.Topics.ANOMALIES}.get(type(event), settings.Topics.PRICE_CHANGES)  # fmt: skip
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
    pong = await ask(ws, {"type": "ping", "timestamp": 7})
    assert (pong["type"], pong["timestamp"]) == ("pong", 7) and pong["server_time"]  # the client's timestamp echoed
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
    while ((reply := await ws.receive_json_from(timeout=5))["type"], reply.get("timestamp")) != ("pong", "the end"):
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
    assert (got["type"], got["event_id"], got["new_price"]) == ("price_update", sent.event_id, 1.5)
    assert got["id"]  # its position, for resuming
    assert await next_event(h100, timeout=0.5) is None  # three matching channels, one delivery
    assert (await next_event(everything))["event_id"] == sent.event_id
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
        assert (got["type"], got["provider"], got["status"], got["event_type"]) == ("health_update", "lambda", "down", "health_update")
        assert (got["healthy"], got["reason"], got["timestamp"]) == (False, "timeout", "2026-11-26T12:00:00Z")
        await socket.disconnect()


async def test_get_offers_and_get_providers_answer_like_the_rest_api(feed, key):
    await sync_to_async(offer_row("w1", price="2.5").save)()
    await sync_to_async(offer_row("w2", price="3.5", gpu="A100").save)()
    ws, _ = await connect(key)
    offers = await ask(ws, {"type": "get_offers", "filters": {"gpu": "h100"}, "per_page": 5})
    assert (offers["type"], offers["total"], offers["items"][0]["offer_id"]) == ("offers_list", 1, "w1")
    assert offers["warnings"] == ["gpu 'h100' read as 'H100'"]
    assert offers["filters"] == {"gpu": "h100", "sort": "price", "page": 1, "per_page": 5}  # as read
    paged = await ask(ws, {"type": "get_offers", "filters": {"page": 2, "per_page": 1}})  # the contract's paging
    assert (paged["total"], [o["offer_id"] for o in paged["items"]], paged["page"], paged["per_page"]) == (2, ["w2"], 2, 1)
    assert (paged["filters"]["page"], paged["filters"]["per_page"]) == (2, 1)
    providers = await ask(ws, {"type": "get_providers"})
    assert providers["type"] == "providers_list" and {p["slug"] for p in providers["providers"]} >= {"vastai", "lambda"}
    assert all({"name", "healthy", "weight", "avg_latency_ms"} <= p.keys() for p in providers["providers"])
    assert all(p["healthy"] is True and p["weight"] == 1.0 for p in providers["providers"])  # no failures recorded
    await ws.disconnect()


async def test_subscribed_and_unsubscribed_name_the_channel_and_channels(feed, key):
    ws, _ = await connect(key)
    one = await ask(ws, {"type": "subscribe", "channel": "gpu:h100"})
    assert (one["type"], one["channel"], one["channels"], one["subscriptions"]) == ("subscribed", "gpu:H100", ["gpu:H100"], ["gpu:H100"])
    several = await ask(ws, {"type": "subscribe", "channels": ["price_updates", "provider:vastai"]})
    assert "channel" not in several and several["channels"] == ["price_updates", "provider:vastai"]
    dropped = await ask(ws, {"type": "unsubscribe", "channel": "gpu:H100"})
    assert (dropped["type"], dropped["channel"], dropped["channels"]) == ("unsubscribed", "gpu:H100", ["gpu:H100"])
    assert dropped["subscriptions"] == ["price_updates", "provider:vastai"]
    never = await ask(ws, {"type": "unsubscribe", "channel": "gpu:A100"})  # not subscribed: named, nothing dropped
    assert (never["channel"], never["channels"]) == ("gpu:A100", [])
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
    assert [m["offer_id"] for m in replayed] == ["m0", "m1", "m2"]
    assert await next_event(again, timeout=0.5) is None  # nothing twice, nothing of A100
    live = change(offer_id="after")
    await feed(live)
    assert (await next_event(again))["offer_id"] == "after"
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
        assert event["event"] == "price_update" and json.loads(event["data"])["event_id"] == first.event_id
        await feed(change(offer_id="s2"), change(offer_id="s3"))
        async with client.stream("GET", "/api/v1/stream", params={"channels": "gpu:H100"},
                                 headers={"Last-Event-ID": event["id"]}) as response:  # fmt: skip
            lines = response.aiter_lines()
            resumed = [await read_sse_event(lines), await read_sse_event(lines)]
        assert [json.loads(e["data"])["offer_id"] for e in resumed] == ["s2", "s3"]
    assert json.loads(resumed[0]["data"])["id"] == resumed[0]["id"]  # the WebSocket's frame, its position in `id` too


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
    assert [json.loads(fields[b"body"])["offer_id"] for _, fields in entries] == ["good"]
    assert ISOLATED_REDIS  # the tests' database, not the stack's feed


# --- fan-out costs (bench/push.py measures them under load) ---------------------------------------------
async def test_an_event_is_encoded_once_and_the_same_frame_goes_to_every_subscriber(feed, isolated_redis):
    hub = feed_hub.hub()
    crowd = [feed_hub.Subscriber() for _ in range(60)]
    for i, subscriber in enumerate(crowd):
        hub.subscribe(subscriber, [["gpu:H100"], ["price_updates"], ["gpu:H100", "price_updates"]][i % 3])
    hub.subscribe(bystander := feed_hub.Subscriber(), ["gpu:A100"])
    await feed(change(offer_id="once"))
    stream_id, fields = isolated_redis.xrange(feed_hub.STREAM)[-1]
    assert hub.dispatch(stream_id.decode(), fields) == 60  # two matching channels: still one frame each
    frames = [frame for subscriber in crowd for _, frame in subscriber.frames]
    assert len(frames) == 60 and all(frame is frames[0] for frame in frames)  # one object: built once
    assert json.loads(frames[0])["offer_id"] == "once" and not bystander.frames


async def test_an_event_the_stream_holds_twice_reaches_each_client_once_live_and_on_resume(feed, key, isolated_redis):
    ws, hello = await connect(key)
    await ask(ws, {"type": "subscribe", "channels": ["gpu:H100"]})
    await feed(change(offer_id="before"))
    mark = await next_event(ws)
    twice = change(offer_id="twice")
    await feed(twice)
    isolated_redis.delete(f"gpubroker:feed:seen:{twice.event_id}")  # the bridge forgot it (its day passed)
    assert await feed(twice) == 1  # so the stream holds it at two positions
    await feed(change(offer_id="after"))
    assert [(await next_event(ws))["offer_id"] for _ in range(2)] == ["twice", "after"]
    assert await next_event(ws, timeout=0.5) is None
    await ws.disconnect()
    again, _ = await connect(key)
    assert (await ask(again, {"type": "resume", "session_id": hello["session_id"], "last_event_id": mark["id"]}))["type"] == "resumed"
    assert [(await next_event(again))["offer_id"] for _ in range(2)] == ["twice", "after"]
    assert await next_event(again, timeout=0.5) is None
    await again.disconnect()


async def test_concurrent_subscribers_share_one_read_of_the_regions(feed):
    await sync_to_async(offer_row("r", region="Quebec, CA").save)()
    answers = await asyncio.gather(*(feed_hub.hub().known_regions() for _ in range(50)))
    assert answers[0] == {"quebec, ca": "Quebec, CA"}
    assert all(answer is answers[0] for answer in answers)  # each read makes a new dict: there was one


async def test_a_worker_gives_memory_back_once_a_crowd_has_left_and_not_before(feed, monkeypatch):
    monkeypatch.setattr(feed_hub, "RELEASE_SECONDS", 0.3)
    hub = feed_hub.hub()
    crowd = [feed_hub.Subscriber() for _ in range(2 * feed_hub.RELEASE_PEAK)]
    for subscriber in crowd:
        await hub.join(subscriber)
        hub.subscribe(subscriber, ["gpu:H100"])
    for subscriber in crowd[: feed_hub.RELEASE_PEAK - 1]:
        hub.leave(subscriber)
    await asyncio.sleep(0.5)
    assert (hub.release, hub.peak) == (None, len(crowd))  # fewer than half left: nothing to give back
    for subscriber in crowd[feed_hub.RELEASE_PEAK - 1 : -10]:
        hub.leave(subscriber)
        await asyncio.sleep(0.01)  # a crowd leaves over a while: the release waits for the quiet
    assert hub.release is not None and hub.peak == len(crowd)
    await asyncio.sleep(0.6)
    assert (hub.release, hub.peak, len(hub.subscribers)) == (None, 10, 10)  # released; the next crowd counts from here
    assert not hub.by_channel["gpu:H100"] - set(crowd[-10:])


def test_release_memory_returns_the_free_pages_malloc_keeps():
    import psutil

    process = psutil.Process()
    chunks = [bytes(4096) for _ in range(25_000)]  # ~100 MiB from malloc (objects over 512 bytes skip pymalloc)
    survivors = chunks[::25]  # one chunk in 25 stays: the heap cannot shrink from its top
    del chunks
    held = process.memory_info().rss
    feed_hub.release_memory()
    assert held - process.memory_info().rss > 64 * 2**20, "malloc_trim gave back less than 64 MiB of ~96 MiB freed"
    assert len(survivors) == 1000


def health_score(provider: str, score: float) -> HealthScore:
    end = NOW.replace(minute=15)
    return HealthScore(event_id=health_score_id(provider, end), provider=provider, score=score, calls=16, failures=1,
                       latency_ms=200, last_landed_at=NOW, window_start=NOW, window_end=end, detected_at=end)  # fmt: skip


async def test_health_scores_reach_health_and_provider_subscribers_as_health_updates_once(feed, key):
    route, _ = await connect(key, "/ws/providers/lambda/")
    health, _ = await connect(key)
    other, _ = await connect(key)
    await ask(health, {"type": "subscribe", "channels": ["health_status"]})
    await ask(other, {"type": "subscribe", "channels": ["provider:vastai", "price_updates"]})
    scored = health_score("lambda", 0.6465)
    assert await feed(scored) == 1
    for socket in (route, health):
        got = await next_event(socket)
        assert (got["type"], got["event_type"], got["provider"], got["score"]) == ("health_update", "health_score", "lambda", 0.6465)
        assert (got["healthy"], got["timestamp"], got["reason"]) == (True, "2026-11-26T12:15:00Z", "health score 0.6465: 1 of 16 calls failed")
        assert got["event_id"] == scored.event_id and await next_event(socket, timeout=0.5) is None
    assert await next_event(other, timeout=0.5) is None
    assert await feed(scored) == 0  # the same window again (a Flink replay) is not appended twice
    for socket in (route, health, other):
        await socket.disconnect()


async def test_a_significant_price_change_is_its_own_frame_beside_the_price_update(feed, key):
    gpu, _ = await connect(key)
    availability, _ = await connect(key)
    await ask(gpu, {"type": "subscribe", "channels": ["gpu:H100", "price_updates"]})
    await ask(availability, {"type": "subscribe", "channels": ["availability"]})
    moved = change(new="1.0")  # -50%
    significant = SignificantPriceChange(**moved.model_dump(exclude={"type", "event_id"}), event_id=str(uuid.uuid4()))
    assert await feed(moved, significant) == 2
    frames = [await next_event(gpu), await next_event(gpu)]
    assert [(f["type"], f["event_id"]) for f in frames] == [("price_update", moved.event_id),
                                                            ("significant_price_change", significant.event_id)]  # fmt: skip
    assert frames[1]["event_type"] == "significant_price_change" and frames[1]["new_price"] == 1.0
    assert await next_event(gpu, timeout=0.5) is None and await next_event(availability, timeout=0.5) is None
    for socket in (gpu, availability):
        await socket.disconnect()


async def test_an_entry_the_stream_kept_from_before_flat_frames_goes_out_flat(feed, key, isolated_redis):
    """An entry appended by an earlier bridge (the event's JSON as `data`) is sent in today's shape."""
    ws, _ = await connect(key)
    await ask(ws, {"type": "subscribe", "channel": "gpu:H100"})
    old = change(offer_id="old")
    isolated_redis.xadd(feed_hub.STREAM, {"kind": "price_update", "event_id": old.event_id, "channels": "gpu:H100",
                                          "data": old.model_dump_json()})  # fmt: skip
    got = await next_event(ws)
    assert (got["type"], got["offer_id"], got["event_type"], got["timestamp"]) == ("price_update", "old", "price_change", "2026-11-26T12:00:00Z")
    await ws.disconnect()


# --- Property 16 ----------------------------------------------------------------------------------------
PROVIDERS, GPUS, REGIONS = ("vastai", "lambda", "runpod"), ("H100", "A100", "RTX4090"), ("Norway", "Quebec, CA")
CHANNELS = ["price_updates", "availability", "health_status", *(f"provider:{p}" for p in PROVIDERS),
            *(f"gpu:{g}" for g in GPUS), *(f"region:{r}" for r in REGIONS)]  # fmt: skip
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99"), places=2)


@st.composite
def feed_events(draw):
    """Any event the feed carries, about a few providers, GPUs and regions."""
    provider, at, event_id = draw(st.sampled_from(PROVIDERS)), NOW + timedelta(seconds=draw(st.integers(0, 86400))), str(uuid.uuid4())
    offer = dict(event_id=event_id, provider=provider, offer_id=draw(st.sampled_from(["a", "b"])), gpu=draw(st.sampled_from(GPUS)),
                 region=draw(st.sampled_from(REGIONS)), observed_at=at, detected_at=at)  # fmt: skip
    old, new = draw(prices), draw(prices)
    kind = draw(st.sampled_from(["price", "significant", "availability", "anomaly", "health", "score"]))
    if kind in ("price", "significant"):
        return (PriceChange if kind == "price" else SignificantPriceChange)(
            **offer, gpu_form_factor=None, gpu_count=1, country=None, continent=None, old_price=old, new_price=new,
            price_per_gpu=new, change_percent=float((new - old) / old * 100), direction="up" if new > old else "down",
            availability="available")  # fmt: skip
    if kind == "availability":
        return AvailabilityChange(**offer, country=None, continent=None, old_availability=None, price_per_hour=new,
                                  availability=draw(st.sampled_from(["available", "limited", "unavailable"])), available_count=None)  # fmt: skip
    if kind == "anomaly":
        return Anomaly(**offer, gpu_form_factor=None, price_per_hour=new, price_per_gpu=new, mean=None, stddev=None, z=None,
                       reason="drop", old_price=old)  # fmt: skip
    if kind == "health":
        return ProviderEvent(event_id=event_id, type=draw(st.sampled_from(["health_update", "quarantine"])), provider=provider,
                             status=draw(st.sampled_from(["healthy", "degraded", "down", "stale"])), reason=draw(st.text(max_size=20)),
                             timestamp=at)  # fmt: skip
    calls = draw(st.integers(1, 20))
    return HealthScore(event_id=event_id, provider=provider, score=draw(st.sampled_from([0, 0.1, 0.5, 1])), calls=calls,
                       failures=draw(st.integers(0, calls)), latency_ms=None, last_landed_at=None, window_start=at,
                       window_end=at, detected_at=at)  # fmt: skip


def expected_frame(event) -> tuple[str, set[str], dict]:
    """The frame type an event goes out as, the channels it reaches, and the contract's top-level fields."""
    if isinstance(event, ProviderEvent | HealthScore):
        healthy = event.status in ("healthy", "degraded") if isinstance(event, ProviderEvent) else event.score > 0
        at = event.timestamp if isinstance(event, ProviderEvent) else event.detected_at
        fields = {"provider": event.provider, "healthy": healthy, "timestamp": at}
        return "health_update", {"health_status", f"provider:{event.provider}"}, fields | (
            {"reason": event.reason} if isinstance(event, ProviderEvent) else {})
    offer = {"provider": event.provider, "offer_id": event.offer_id, "timestamp": event.detected_at}
    reaches = {f"provider:{event.provider}", f"gpu:{event.gpu}", f"region:{event.region}"}
    if isinstance(event, PriceChange):
        prices = {"old_price": float(event.old_price), "new_price": float(event.new_price), "change_percent": event.change_percent}
        kind = "significant_price_change" if isinstance(event, SignificantPriceChange) else "price_update"
        return kind, reaches | {"price_updates"}, offer | prices
    if isinstance(event, AvailabilityChange):
        return "availability_update", reaches | {"availability"}, offer | {"availability": event.availability}
    return "anomaly_alert", reaches | {"price_updates"}, offer


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(feed_events(), min_size=1, max_size=10), twice=st.sets(st.integers(0, 9), max_size=3),
       subscriptions=st.lists(st.sets(st.sampled_from(CHANNELS), min_size=1, max_size=4), min_size=1, max_size=4))
async def test_subscribers_get_exactly_their_channels_events_once_in_order_with_the_contracts_fields(
        feed, isolated_redis, events, twice, subscriptions):  # fmt: skip
    """**Feature: provider-api-gateway, Property 16: WebSocket Real-Time Updates**

    For any events entering the feed — some sent again upstream, some the stream holds twice — and any
    subscriptions, each subscriber gets exactly the events of its channels, each once, in feed order,
    every frame flat: `type`, `id` (its position) and the contract's fields at top level. Through the
    bridge's append to the Redis stream and this worker's hub: the frames each socket's sender sends."""
    hub = feed_hub.hub()
    witness = feed_hub.Subscriber()  # every event reaches one of these three: the witness sees the feed's end
    subscribers = [(feed_hub.Subscriber(), channels) for channels in subscriptions]
    for subscriber, channels in [(witness, {"price_updates", "availability", "health_status"}), *subscribers]:
        await hub.join(subscriber)
        hub.subscribe(subscriber, channels)
    last = ProviderEvent(type="health_update", provider="aws", status="healthy", timestamp=NOW)  # the end, once the others are in
    try:
        assert await feed(*events, events[0]) == len(events)  # the repeat upstream is not appended
        for again in sorted(i for i in twice if i < len(events)):  # the bridge forgot these: the stream holds them twice
            isolated_redis.delete(f"gpubroker:feed:seen:{events[again].event_id}")
            assert await feed(events[again]) == 1
        await feed(last)
        while (await asyncio.wait_for(witness.next_frame(), 10))[1].find(last.event_id) < 0:
            pass  # every entry before `last` has been handed out
        for subscriber, channels in subscribers:
            frames = []
            while subscriber.frames:
                at, frame = await subscriber.next_frame()
                frames.append((at, json.loads(frame)))
            mine = [e for e in (*events, last) if expected_frame(e)[1] & channels]
            assert [(f["type"], f["event_id"]) for _, f in frames] == [(expected_frame(e)[0], e.event_id) for e in mine]
            assert [at for at, _ in frames] == sorted({at for at, _ in frames})  # feed order, each position once
            for (at, frame), event in zip(frames, mine):
                assert frame["id"] == f"{at[0]}-{at[1]}"
                contract = expected_frame(event)[2]
                assert {name: frame[name] for name in contract} | {"timestamp": datetime.fromisoformat(frame["timestamp"])} == contract
                assert frame["type"] != "health_update" or isinstance(frame["reason"], str)
    finally:
        for subscriber, _ in [(witness, None), *subscribers]:
            hub.leave(subscriber)
