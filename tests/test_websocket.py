"""`/ws/providers/` through the real ASGI application and the real Redis channel layer."""

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from gpubroker_web.asgi import application
from offers.bridge import forward
from offers.channels import groups_for_update
from offers.models import Offer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_pool():
    """get_offers opens the request path's pool on the test's loop: close it before the DB is dropped."""
    yield
    from gpubroker_web import db

    await db.close()


async def connect() -> WebsocketCommunicator:
    client = WebsocketCommunicator(application, "/ws/providers/")
    connected, _ = await client.connect()
    assert connected
    hello = await client.receive_json_from()
    assert hello["type"] == "connection_established" and hello["client_id"]
    return client


def update(gpu="H100", provider="vastai", region="Norway") -> dict:
    return {
        "event_id": str(uuid.uuid4()), "provider": provider, "offer_id": "o1", "gpu": gpu, "region": region,
        "old_price": 2.0, "new_price": 1.5, "change_percent": -25.0, "timestamp": "2026-11-26T12:00:00Z",
        "detected_at": None,
    }  # fmt: skip


async def subscribe(client, *channels):
    await client.send_json_to({"type": "subscribe", "channels": list(channels)})
    return await client.receive_json_from()


async def test_ping_pong_and_unknown_types():
    client = await connect()
    await client.send_json_to({"type": "ping", "timestamp": 42})
    pong = await client.receive_json_from()
    assert (pong["type"], pong["echo"]) == ("pong", 42)
    await client.send_json_to({"type": "dance"})
    assert await client.receive_json_from() == {"type": "error", "message": "unknown message type 'dance'"}
    await client.send_json_to(["not", "an", "object"])
    assert (await client.receive_json_from())["type"] == "error"
    await client.disconnect()


async def test_subscribe_canonicalises_and_rejects_unknown_channels():
    client = await connect()
    reply = await subscribe(client, "gpu:rtx_4090", "provider:vastai", "region:Texas, US", "price_updates")
    assert reply["channels"] == ["gpu:RTX4090", "provider:vastai", "region:Texas, US", "price_updates"]
    bad = await subscribe(client, "gpu:Voodoo 5")
    assert bad["type"] == "error" and "Voodoo" in bad["message"]
    bad = await subscribe(client, "weather:today")
    assert bad["type"] == "error" and "unknown channel" in bad["message"]
    await client.send_json_to({"type": "unsubscribe", "channels": ["gpu:RTX 4090"]})
    left = await client.receive_json_from()
    assert (left["type"], left["channels"]) == ("unsubscribed", ["gpu:RTX4090"])
    await client.disconnect()


async def test_updates_reach_matching_subscribers_only_and_once():
    h100, rtx, everything = await connect(), await connect(), await connect()
    await subscribe(h100, "gpu:H100", "provider:vastai")  # two matching groups: still one delivery
    await subscribe(rtx, "gpu:RTX4090")
    await subscribe(everything, "price_updates")

    sent = update(gpu="H100")
    layer = get_channel_layer()
    for group in groups_for_update(sent):
        await layer.group_send(group, {"type": "price_update", "data": sent})

    assert await h100.receive_json_from(timeout=5) == {"type": "price_update", "data": sent}
    assert await everything.receive_json_from(timeout=5) == {"type": "price_update", "data": sent}
    assert await h100.receive_nothing(timeout=0.5)
    assert await rtx.receive_nothing(timeout=0.5)
    for client in (h100, rtx, everything):
        await client.disconnect()


async def test_get_offers_uses_the_same_search_as_the_api():
    now = datetime.now(timezone.utc)
    await Offer.objects.acreate(
        provider="vastai", offer_id="w1", instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA", gpu_count=1,
        gpu_memory_gb=80, price_per_hour=Decimal("2.5"), region="Norway", availability="available",
        observed_at=now, first_seen=now, last_seen=now,
    )  # fmt: skip
    client = await connect()
    await client.send_json_to({"type": "get_offers", "filters": {"gpu": "h100"}, "per_page": 5})
    reply = await client.receive_json_from(timeout=5)
    assert (reply["type"], reply["total"], reply["items"][0]["offer_id"]) == ("offers", 1, "w1")
    assert reply["warnings"] == ["gpu 'h100' read as 'H100'"]
    await client.send_json_to({"type": "get_offers", "per_page": 0})
    assert (await client.receive_json_from())["type"] == "error"
    await client.disconnect()


async def test_bridge_forward_reaches_a_subscriber_through_redis():
    client = await connect()
    await subscribe(client, "region:Quebec, CA")
    sent = update(gpu="RTX4090", region="Quebec, CA")
    await sync_to_async(forward)(sent)  # the bridge is synchronous: it runs in its own thread
    assert await client.receive_json_from(timeout=5) == {"type": "price_update", "data": sent}
    await client.disconnect()
