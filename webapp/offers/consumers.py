"""WebSocket `/ws/providers/`: live price updates by subscription.

Client -> server: {"type": "subscribe"|"unsubscribe", "channels": [...]} (or "channel": "..."),
{"type": "ping"}, {"type": "get_offers", "filters": {gpu, provider, region, max_price}, "page", "per_page"}.
Server -> client: connection_established, subscribed, unsubscribed, pong, offers, price_update, error.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import datetime, timezone

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from pydantic import ValidationError

from gpubroker import search
from gpubroker_web import db
from gpubroker_web.responses import render
from offers import channels, queries

SEEN_EVENTS = 1024  # an update reaches a client once even when several of its groups match


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ProviderFeedConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.client_id = str(uuid.uuid4())
        self.subscriptions: set[str] = set()
        self.seen: OrderedDict[str, None] = OrderedDict()
        await self.accept()
        await self.send_json(
            {
                "type": "connection_established",
                "client_id": self.client_id,
                "channels": [channels.ALL_UPDATES, *(f"{k}:<{k}>" for k in channels.KINDS)],
                "timestamp": _now(),
            }
        )

    async def disconnect(self, code: int) -> None:
        for channel in getattr(self, "subscriptions", ()):
            await self.channel_layer.group_discard(channels.group_name(channel), self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        handler = {
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "ping": self.on_ping,
            "get_offers": self.on_get_offers,
        }.get(content.get("type") if isinstance(content, dict) else None)
        if handler is None:
            await self.error(f"unknown message type {content.get('type') if isinstance(content, dict) else content!r}")
            return
        await handler(content)

    async def error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})

    def _requested(self, content: dict) -> list[str] | None:
        requested = content.get("channels", [content["channel"]] if "channel" in content else [])
        if not isinstance(requested, list) or not requested or not all(isinstance(c, str) for c in requested):
            return None
        return requested

    async def on_subscribe(self, content: dict) -> None:
        requested = self._requested(content)
        if requested is None:
            await self.error('subscribe needs "channels": ["price_updates", "gpu:H100", ...]')
            return
        try:
            wanted = [channels.canonical(c) for c in requested]
        except channels.BadChannel as error:
            await self.error(str(error))
            return
        for channel in wanted:
            await self.channel_layer.group_add(channels.group_name(channel), self.channel_name)
            self.subscriptions.add(channel)
        await self.send_json({"type": "subscribed", "channels": wanted, "subscriptions": sorted(self.subscriptions)})

    async def on_unsubscribe(self, content: dict) -> None:
        requested = self._requested(content)
        if requested is None:
            await self.error('unsubscribe needs "channels": [...]')
            return
        dropped = []
        for channel in requested:
            try:
                channel = channels.canonical(channel)
            except channels.BadChannel:
                continue
            if channel in self.subscriptions:
                self.subscriptions.discard(channel)
                await self.channel_layer.group_discard(channels.group_name(channel), self.channel_name)
                dropped.append(channel)
        await self.send_json({"type": "unsubscribed", "channels": dropped, "subscriptions": sorted(self.subscriptions)})

    async def on_ping(self, content: dict) -> None:
        await self.send_json({"type": "pong", "timestamp": _now(), "echo": content.get("timestamp")})

    async def on_get_offers(self, content: dict) -> None:
        paging = {k: content[k] for k in ("page", "per_page") if k in content}
        try:
            query = search.OfferQuery.model_validate({**(content.get("filters") or {}), **paging})
            result = await queries.offer_page(query)
        except ValidationError as invalid:
            await self.error("get_offers: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors()))
            return
        except (search.BadQuery, queries.NoData, db.DatabaseUnavailable) as refused:
            await self.error(str(refused))
            return
        await self.send(text_data=render({"type": "offers", **result}).decode())

    async def price_update(self, event: dict) -> None:
        """Group message from the Kafka bridge."""
        data = event["data"]
        if data["event_id"] in self.seen:
            return
        self.seen[data["event_id"]] = None
        if len(self.seen) > SEEN_EVENTS:
            self.seen.popitem(last=False)
        await self.send_json({"type": "price_update", "data": data})
