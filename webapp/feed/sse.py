"""`GET /api/v1/stream?channels=...`: the live feed as server-sent events (text/event-stream).

The same events as the WebSocket (feed/protocol.py), each with `id:` (its feed position) and
`event:` (its type); `data:` is the WebSocket frame. A client that reconnects with `Last-Event-ID`
(EventSource does it by itself) gets what it missed from the feed's buffer first. A comment line
every `HEARTBEAT_SECONDS` keeps proxies from closing an idle stream. Served by the gateway after
the client's key and plan limit were checked: a stream counts as one request, like a WebSocket.
OpenAPI cannot describe an endless event stream, so it is documented here and in the README.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs

import orjson

from feed import protocol
from feed.hub import Interrupted, Subscriber, hub
from gateway import metrics

HEARTBEAT_SECONDS = 15.0
_POSITION = re.compile(r"^\d+-\d+$")


async def stream(scope, receive, send, extra_headers: list[tuple[bytes, bytes]]) -> None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    requested = [c for value in query.get("channels", []) for c in value.split(",") if c.strip()]
    feed = hub()
    try:
        if not requested:
            raise protocol.BadChannel(f"give ?channels=..., one or more of {', '.join(protocol.AVAILABLE_SUBSCRIPTIONS)}")
        if len(requested) > protocol.MAX_SUBSCRIPTIONS:
            raise protocol.BadChannel(f"at most {protocol.MAX_SUBSCRIPTIONS} channels per stream")
        regions = await feed.known_regions()
        channels = [protocol.canonical(c.strip(), regions) for c in requested]
    except protocol.BadChannel as bad:
        body = orjson.dumps({"detail": str(bad)})
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        return
    headers = dict(scope["headers"])
    last = (headers.get(b"last-event-id", b"").decode("latin-1") or (query.get("last_event_id") or [""])[0]).strip()
    subscriber = Subscriber()
    await feed.join(subscriber)
    feed.subscribe(subscriber, channels)
    metrics.SSE_STREAMS.inc()
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        complete = await feed.replay(subscriber, last) if _POSITION.match(last) else True
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"), *extra_headers]})  # fmt: skip
        opening = f": subscribed to {', '.join(channels)}\nretry: 3000\n\n"
        if not complete:
            opening += "event: error\ndata: " + orjson.dumps(protocol.error("events_lost", "the buffer no longer holds "
                                                                            "every event you missed")).decode() + "\n\n"  # fmt: skip
        await send({"type": "http.response.body", "body": opening.encode(), "more_body": True})
        while not gone.done():
            chunk = await _next_chunk(subscriber, gone)
            if chunk is None:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if subscriber.interrupted:  # told the client why; it reconnects with Last-Event-ID
                break
        if not gone.done():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        gone.cancel()
        feed.leave(subscriber)
        metrics.SSE_STREAMS.dec()


async def _next_chunk(subscriber: Subscriber, gone: asyncio.Future) -> bytes | None:
    """The next event as SSE lines, a heartbeat comment when idle, None when the stream must end."""
    frame_task = asyncio.ensure_future(subscriber.next_frame())
    done, _ = await asyncio.wait({frame_task, gone}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    if frame_task not in done:
        frame_task.cancel()
        return None if gone.done() else b": heartbeat\n\n"
    try:
        at, frame = frame_task.result()
    except Interrupted as stop:
        return ("event: error\ndata: " + orjson.dumps(protocol.error("feed_unavailable", stop.reason)).decode() + "\n\n").encode()
    if at is None:  # the hub's own heartbeat
        return b": heartbeat\n\n"
    kind = frame[9:frame.index('"', 9)]  # frames start {"type":"<kind>"
    return f"id: {at[0]}-{at[1]}\nevent: {kind}\ndata: {frame}\n\n".encode()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
