"""`GET /api/v1/stream?channels=...`: the live feed as server-sent events (text/event-stream).

The same events as the WebSocket (feed/protocol.py), each with `id:` (its feed position) and
`event:` (its type); `data:` is the WebSocket frame. A client that reconnects with `Last-Event-ID`
(EventSource does it by itself; or `?last_event_id=`) gets what it missed from the feed's buffer
first. A comment line every `HEARTBEAT_SECONDS` keeps proxies from closing an idle stream. Served by
the gateway after the client's key and plan limit were checked: a stream counts as one request,
like a WebSocket. OpenAPI cannot describe an endless event stream, so it is documented here and in
the README.

Refusals are JSON `{"detail"}` before the stream starts: 400 for an unknown channel or a malformed
Last-Event-ID (named), 503 with Retry-After when the database cannot list the regions. When the
feed's buffer cannot be read to resume (Redis), the stream opens with an `error` event
(`feed_unavailable`) and ends, and EventSource reconnects with the same Last-Event-ID.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import orjson
from redis.exceptions import RedisError

from feed import protocol
from feed.hub import Interrupted, Subscriber, hub
from gateway import metrics
from gpubroker_web import responses

HEARTBEAT_SECONDS = 15.0


class _Refused(Exception):
    def __init__(self, answer: responses.Refusal):
        self.answer = answer


def _resume_from(scope, query: dict[str, list[str]]) -> str | None:
    """Last-Event-ID (or ?last_event_id=) if given; _Refused naming it when it is not an event id."""
    header = dict(scope["headers"]).get(b"last-event-id", b"").decode("latin-1").strip()
    named, last = ("Last-Event-ID", header) if header else ("last_event_id", (query.get("last_event_id") or [""])[0].strip())
    try:
        return protocol.event_id(last) if last else None
    except ValueError as bad:
        raise _Refused(responses.Refusal(400, f"{named}: {bad}")) from None


async def _channels(query: dict[str, list[str]]) -> list[str]:
    """The channels asked for, canonical; _Refused for an unknown one, or when the database fails."""
    requested = [c.strip() for value in query.get("channels", []) for c in value.split(",") if c.strip()]
    try:
        if not requested:
            raise protocol.BadChannel(f"give ?channels=..., one or more of {', '.join(protocol.AVAILABLE_SUBSCRIPTIONS)}")
        if len(requested) > protocol.MAX_SUBSCRIPTIONS:
            raise protocol.BadChannel(f"at most {protocol.MAX_SUBSCRIPTIONS} channels per stream")
        regions = await hub().known_regions()
        return [protocol.canonical(c, regions) for c in requested]
    except protocol.BadChannel as bad:
        raise _Refused(responses.Refusal(400, f"channels: {bad}")) from None
    except responses.REFUSED as failure:
        raise _Refused(responses.refusal(failure)) from None


async def _refuse(send, answer: responses.Refusal, extra_headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"detail": answer.detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in answer.headers.items()), *extra_headers]  # fmt: skip
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_event(code: str, message: str) -> str:
    return "event: error\ndata: " + orjson.dumps(protocol.error(code, message)).decode() + "\n\n"


async def stream(scope, receive, send, extra_headers: list[tuple[bytes, bytes]]) -> None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        last, channels = _resume_from(scope, query), await _channels(query)
    except _Refused as refused:
        return await _refuse(send, refused.answer, extra_headers)
    feed, subscriber = hub(), Subscriber()
    await feed.join(subscriber)
    feed.subscribe(subscriber, channels)
    metrics.SSE_STREAMS.inc()
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        opening, resumed = await _opening(feed, subscriber, channels, last)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"), *extra_headers]})  # fmt: skip
        await send({"type": "http.response.body", "body": opening.encode(), "more_body": resumed})
        if resumed:
            await _follow(send, subscriber, gone)
    finally:
        gone.cancel()
        feed.leave(subscriber)
        metrics.SSE_STREAMS.dec()


async def _opening(feed, subscriber: Subscriber, channels: list[str], last: str | None) -> tuple[str, bool]:
    """The stream's first lines, once what a resuming client missed is queued; False when the feed's
    buffer cannot be read: the stream ends there, and the client reconnects and resumes from `last`."""
    opening = f": subscribed to {', '.join(channels)}\nretry: 3000\n\n"
    try:
        complete = await feed.replay(subscriber, last) if last else True
    except (RedisError, OSError):
        return opening + _error_event("feed_unavailable", "the feed's buffer cannot be read now; reconnect to resume"), False
    return opening + ("" if complete else _error_event("events_lost", "the buffer no longer holds every event you missed")), True


async def _follow(send, subscriber: Subscriber, gone: asyncio.Future) -> None:
    while not gone.done():
        chunk = await _next_chunk(subscriber, gone)
        if chunk is None:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if subscriber.interrupted:  # told the client why; it reconnects with Last-Event-ID
            break
    if not gone.done():
        await send({"type": "http.response.body", "body": b"", "more_body": False})


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
        return _error_event("feed_unavailable", stop.reason).encode()
    if at is None:  # the hub's own heartbeat
        return b": heartbeat\n\n"
    kind = frame[9:frame.index('"', 9)]  # frames start {"type":"<kind>"
    return f"id: {at[0]}-{at[1]}\nevent: {kind}\ndata: {frame}\n\n".encode()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
