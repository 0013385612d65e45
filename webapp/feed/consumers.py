"""WebSocket `/ws/providers/` (and `/ws/providers/<provider>/`, subscribed to that provider at once).

The protocol is in feed/protocol.py. Each connection is a hub subscriber (feed/hub.py) with one
sender task that drains its queue to the socket. A session (subscriptions and the last event sent)
is kept in Redis for `SESSION_SECONDS`, so a client that reconnects — after a network blip, a
webapp worker restart or a Redis outage — sends `resume` and gets its subscriptions back plus every
event it missed that is still in the feed's buffer. Bad frames get an `error` frame, and so does a
request the database cannot answer (any error it raises: gpubroker_web.responses.refusal, as for the
REST API); the socket stays open. Browsers, which cannot set headers on a WebSocket, send their API
key as the subprotocol `bearer.<key>` next to `gpubroker` (the gateway reads it; we accept `gpubroker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import orjson
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from feed import protocol
from feed.hub import Interrupted, Subscriber, hub
from gateway import metrics, runtime
from gpubroker_web import responses
from gpubroker_web.responses import render
from offers import providers, queries

SESSION_SECONDS = 900
SESSION_PREFIX = "gpubroker:feed:session:"


class FeedConsumer(AsyncWebsocketConsumer):
    async def dispatch(self, message: dict) -> None:
        # Channels' own dispatch first closes stale Django database connections, a hop to a thread
        # for every message (the connect, each client frame, the disconnect). This consumer never uses
        # the ORM (its queries go through gpubroker_web.db, an async pool), so it goes straight on.
        await getattr(self, get_handler_name(message))(message)

    async def connect(self) -> None:
        self.session_id = uuid.uuid4().hex
        self.subscriber = Subscriber()
        self.sender: asyncio.Task | None = None
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="gpubroker" if "gpubroker" in offered else None)
        metrics.WEBSOCKETS.inc()
        self.hub = hub()
        self.subscriber.on_interrupt = self._interrupted
        await self.hub.join(self.subscriber)
        self.sender = asyncio.ensure_future(self._send_frames())
        initial = self.scope["url_route"]["kwargs"].get("provider")
        subscribed = []
        if initial:
            try:
                subscribed = [protocol.canonical(f"provider:{initial}", {})]
            except protocol.BadChannel as bad:
                await self._reply(protocol.error("bad_channel", str(bad)))
            self.hub.subscribe(self.subscriber, subscribed)
        await self._reply({
            "type": "connection_established", "session_id": self.session_id,
            "available_subscriptions": protocol.AVAILABLE_SUBSCRIPTIONS, "subscriptions": subscribed,
            "message": "subscribe to channels; send resume with your last session_id and event id to pick up "
                       "where you left off", "timestamp": protocol.now(),
        })  # fmt: skip
        if not self.hub.available:
            await self._reply(protocol.error("feed_unavailable", "the live feed is restarting; reconnect shortly"))

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "subscriber"):
            return
        metrics.WEBSOCKETS.dec()
        if self.sender:
            self.sender.cancel()
        await self._save_session()  # before leaving, which empties the subscriber's channels
        self.hub.leave(self.subscriber)

    # --- client frames -------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return await self._reply(protocol.error("binary_frame", "send JSON text frames, not binary"))
        if len(text_data) > protocol.MAX_FRAME_BYTES:
            return await self._reply(protocol.error("frame_too_large", f"frames are at most {protocol.MAX_FRAME_BYTES} bytes"))
        try:
            message = protocol.parse(text_data)
        except protocol.ProtocolError as bad:
            return await self._reply(protocol.error(bad.code, str(bad)))
        try:
            await getattr(self, f"on_{message.type}")(message)
        except responses.REFUSED as failure:
            answer = responses.refusal(failure)
            await self._reply(protocol.error("unavailable" if answer.status == 503 else "bad_query", answer.detail))

    async def on_subscribe(self, message: protocol.Subscribe) -> None:
        regions = await self.hub.known_regions()
        try:
            wanted = [protocol.canonical(c, regions) for c in message.channels]
        except protocol.BadChannel as bad:
            return await self._reply(protocol.error("bad_channel", str(bad)))
        if len(self.subscriber.channels | set(wanted)) > protocol.MAX_SUBSCRIPTIONS:
            return await self._reply(protocol.error("too_many_subscriptions",
                                                    f"at most {protocol.MAX_SUBSCRIPTIONS} subscriptions per connection"))  # fmt: skip
        self.hub.subscribe(self.subscriber, wanted)
        await self._save_session()
        await self._reply({"type": "subscribed", **_named(wanted), "subscriptions": sorted(self.subscriber.channels)})

    async def on_unsubscribe(self, message: protocol.Subscribe) -> None:
        regions = await self.hub.known_regions()
        asked = []
        for channel in message.channels:
            with contextlib.suppress(protocol.BadChannel):
                channel = protocol.canonical(channel, regions)
            asked.append(channel)
        dropped = [channel for channel in asked if channel in self.subscriber.channels]
        self.hub.unsubscribe(self.subscriber, dropped)
        await self._save_session()
        await self._reply({"type": "unsubscribed", **_named(asked, dropped), "subscriptions": sorted(self.subscriber.channels)})

    async def on_ping(self, message: protocol.Ping) -> None:
        now = protocol.now()
        await self._reply({"type": "pong", "timestamp": now if message.timestamp is None else message.timestamp,
                           "server_time": now})  # fmt: skip

    async def on_get_offers(self, message: protocol.GetOffers) -> None:
        filters = message.filters.model_dump(mode="json", exclude_none=True)
        await self._reply({"type": "offers_list", **await queries.offer_page(message.filters), "filters": filters})

    async def on_get_providers(self, message: protocol.GetProviders) -> None:
        await self._reply({"type": "providers_list", "providers": await providers.statuses(), "timestamp": protocol.now()})

    async def on_resume(self, message: protocol.Resume) -> None:
        saved = await self._load_session(message.session_id)
        if saved is None:
            return await self._reply(protocol.error("unknown_session", "that session expired or never existed; "
                                                                       "subscribe again"))  # fmt: skip
        regions = await self.hub.known_regions()
        channels = []
        for channel in saved["subscriptions"]:
            with contextlib.suppress(protocol.BadChannel):
                channels.append(protocol.canonical(channel, regions))
        self.session_id = message.session_id
        self.hub.subscribe(self.subscriber, channels)
        after = message.last_event_id or saved.get("last_event_id")

        def resumed(complete: bool) -> str:
            return render({"type": "resumed", "session_id": self.session_id, "subscriptions": sorted(self.subscriber.channels),
                           "replayed_from": after, "complete": complete}).decode()  # fmt: skip

        try:
            complete = await self.hub.replay(self.subscriber, after, resumed) if after else True
        except (RedisError, OSError):
            return await self._reply(protocol.error("feed_unavailable", "the feed's buffer cannot be read now; retry"))
        if not after:
            self.subscriber.offer(None, resumed(True))
        if not complete:
            await self._reply(protocol.error("events_lost", "the feed's buffer no longer holds every event you missed; "
                                                            "fetch the offers again"))  # fmt: skip

    # --- sending -------------------------------------------------------------------------------
    async def _reply(self, message: dict) -> None:
        """A direct answer, in the same queue as events, so the socket sees one ordered stream."""
        self.subscriber.offer(None, render(message).decode())

    def _interrupted(self, why: Interrupted) -> None:
        """The feed stopped for this socket. A client too slow to keep up leaves the hub at once (it
        costs nothing from now on) and is closed from here: its sender may be stuck writing to it."""
        if why.code == 4008:
            self.hub.leave(self.subscriber)
            if self.sender is not None:
                self.sender.cancel()
            asyncio.ensure_future(self._close_slow(why))

    async def _close_slow(self, why: Interrupted) -> None:
        # A client that reads nothing cannot take the close frame either: give up after a while;
        # the server's ping timeout ends the TCP connection, and only the transport's bounded
        # buffer (64 KiB) is held until then.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.close(code=why.code, reason=why.reason), timeout=5)

    async def _send_frames(self) -> None:
        try:
            while True:  # the hot path: straight to the ASGI server, not through Channels' send()
                _, frame = await self.subscriber.next_frame()
                await self.base_send({"type": "websocket.send", "text": frame})
        except Interrupted as stop:
            if stop.code == 1012:
                await self.send(text_data=orjson.dumps(protocol.error("feed_unavailable", stop.reason)).decode())
            await self.close(code=stop.code, reason=stop.reason)
        except (OSError, RuntimeError):  # the socket went away mid-send: disconnect() cleans up
            return

    # --- sessions ------------------------------------------------------------------------------
    async def _save_session(self) -> None:
        key = SESSION_PREFIX + self.session_id
        value = orjson.dumps({"subscriptions": sorted(self.subscriber.channels), "last_event_id": self.subscriber.last_event_id})
        with contextlib.suppress(RedisError, OSError):  # resuming is a convenience: the feed goes on without it
            await runtime.redis().set(key, value, ex=SESSION_SECONDS)

    async def _load_session(self, session_id: str) -> dict | None:
        try:
            raw = await runtime.redis().get(SESSION_PREFIX + session_id)
        except (RedisError, OSError):
            return None
        return orjson.loads(raw) if raw else None


def _named(asked: list[str], channels: list[str] | None = None) -> dict:
    """`channels` (those subscribed or dropped), and `channel` when one was asked (the contract's reply)."""
    return ({"channel": asked[0]} if len(asked) == 1 else {}) | {"channels": asked if channels is None else channels}
