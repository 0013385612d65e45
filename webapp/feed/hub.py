"""Fan-out of the live feed inside one webapp worker.

The bridge (feed.bridge) appends every event to one Redis stream, `gpubroker:feed`, capped at
`STREAM_LENGTH` entries: the order every worker agrees on, and the buffer resuming clients replay
from. Each worker reads it with one blocking XREAD — one Redis connection however many clients —
and hands each event to the subscribers in this process whose channels it matches: an index from
channel to subscribers, so an event costs its matching subscribers only, and a client that leaves
costs nothing from then on. Each subscriber has a bounded queue: one that falls that far behind is
closed (code 4008, slow consumer), so a slow client never grows the worker's memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from feed import protocol
from gpubroker import settings
from gpubroker_web import db

STREAM = "gpubroker:feed"
STREAM_LENGTH = 100_000  # events kept for replay (trimmed approximately, never below this)
READ_BATCH = 1000
QUEUE_FRAMES = 2000  # frames a subscriber may lag behind before it is closed
HEARTBEAT_SECONDS = 25.0  # an idle connection gets a heartbeat this often
SEEN_EVENTS = 1024  # event ids remembered per subscriber: a repeat (at-least-once) is not sent twice
REGIONS_SECONDS = 60.0
log = logging.getLogger(__name__)


def position(stream_id: str) -> tuple[int, int]:
    millis, _, seq = stream_id.partition("-")
    return int(millis), int(seq or 0)


class Interrupted(Exception):
    """The feed stopped for this subscriber: too slow, or Redis went away (close code and reason)."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class Subscriber:
    """One live connection's side of the hub: its channels and a bounded queue of frames."""

    def __init__(self, frames: int = QUEUE_FRAMES):
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[tuple[tuple[int, int] | None, str, str | None]] = asyncio.Queue(frames)
        self.last_sent: tuple[int, int] = (0, 0)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.held: list | None = None  # live frames kept aside while a resume replays
        self.interrupted: Interrupted | None = None
        self.on_interrupt = lambda why: None  # the connection's way to close itself when the feed stops
        self.active_at = time.monotonic()

    @property
    def last_event_id(self) -> str | None:
        return f"{self.last_sent[0]}-{self.last_sent[1]}" if self.last_sent != (0, 0) else None

    def offer(self, at: tuple[int, int] | None, frame: str, event_id: str | None = None) -> None:
        """Queue a frame (never waits); a full queue interrupts the subscriber instead."""
        if self.interrupted is not None:
            return
        if self.held is not None and at is not None:
            self.held.append((at, frame, event_id))
            return
        try:
            self.queue.put_nowait((at, frame, event_id))
        except asyncio.QueueFull:
            self.interrupt(Interrupted(4008, f"slow consumer: more than {self.queue.maxsize} events behind"))

    def interrupt(self, why: Interrupted) -> None:
        if self.interrupted is None:
            self.interrupted = why
            while not self.queue.empty():  # nothing more will be sent: let the frames go now
                self.queue.get_nowait()
            self.queue.put_nowait((None, "", None))
            self.on_interrupt(why)

    async def next_frame(self) -> tuple[tuple[int, int] | None, str]:
        """The next frame to send and its feed position (None for replies and heartbeats), in feed
        order, each event once; Interrupted when the feed stopped."""
        while True:
            at, frame, event_id = await self.queue.get()
            if self.interrupted is not None:
                raise self.interrupted
            if at is not None:
                if at <= self.last_sent or (event_id and event_id in self.seen):
                    continue  # replayed and live, or delivered twice upstream: once is enough
                self.last_sent = at
                if event_id:
                    self.seen[event_id] = None
                    if len(self.seen) > SEEN_EVENTS:
                        self.seen.popitem(last=False)
            self.active_at = time.monotonic()
            return at, frame


class Hub:
    """The feed in one worker: the stream reader, the channel index, replay and heartbeats."""

    def __init__(self, client: aioredis.Redis):
        self.redis = client
        self.by_channel: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self.subscribers: set[Subscriber] = set()
        self.tasks: list[asyncio.Task] = []
        self.starting = asyncio.Lock()
        self.available = True
        self.regions: dict[str, str] = {}
        self.regions_at = 0.0

    # --- membership ------------------------------------------------------------------------------
    async def join(self, subscriber: Subscriber) -> None:
        """Add a subscriber; the first one starts the reader, at the stream's end as of now."""
        self.subscribers.add(subscriber)
        async with self.starting:  # a thousand clients arriving at once start one reader
            if self.tasks and not any(t.done() for t in self.tasks):
                return
            try:
                newest = await self.redis.xrevrange(STREAM, count=1)
                start = newest[0][0].decode() if newest else "0-0"
            except (RedisError, OSError):
                start = None  # the reader finds the end itself once Redis answers
            self.tasks = [asyncio.ensure_future(self._read(start)), asyncio.ensure_future(self._heartbeats())]

    def subscribe(self, subscriber: Subscriber, channels: Iterable[str]) -> None:
        for channel in channels:
            subscriber.channels.add(channel)
            self.by_channel[channel].add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, channels: Iterable[str]) -> None:
        for channel in channels:
            subscriber.channels.discard(channel)
            members = self.by_channel.get(channel)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self.by_channel[channel]

    def leave(self, subscriber: Subscriber) -> None:
        self.unsubscribe(subscriber, list(subscriber.channels))
        self.subscribers.discard(subscriber)

    async def known_regions(self) -> dict[str, str]:
        """lower-case region -> region as offers spell it; refreshed every minute."""
        if time.monotonic() - self.regions_at > REGIONS_SECONDS:
            try:
                rows = await db.fetch("SELECT DISTINCT region FROM offers")
                self.regions = {r["region"].lower(): r["region"] for r in rows}
                self.regions_at = time.monotonic()
            except db.DatabaseUnavailable:
                pass  # the last list stands
        return self.regions

    # --- the stream ------------------------------------------------------------------------------
    async def _read(self, last: str | None) -> None:
        while True:
            try:
                if last is None:  # start at the end: new events only (replay serves the past)
                    newest = await self.redis.xrevrange(STREAM, count=1)
                    last = newest[0][0].decode() if newest else "0-0"
                answer = await self.redis.xread({STREAM: last}, block=5000, count=READ_BATCH)
                self.available = True
            except (RedisError, OSError) as failure:
                if self.available:
                    log.warning("feed interrupted: Redis unreachable (%s)", type(failure).__name__)
                    self.available = False
                    for subscriber in list(self.subscribers):  # they reconnect and resume
                        subscriber.interrupt(Interrupted(1012, "the live feed restarts; reconnect and resume"))
                await asyncio.sleep(1.0)
                continue
            for _, entries in answer or ():
                for stream_id, fields in entries:
                    last = stream_id.decode()
                    self.dispatch(last, fields)

    def dispatch(self, stream_id: str, fields: dict[bytes, bytes]) -> int:
        """Hand one stream entry to every subscriber of one of its channels; returns how many."""
        channels = fields[b"channels"].decode().split("\x1f")
        targets = set().union(*(self.by_channel.get(c, ()) for c in channels))
        if not targets:
            return 0
        event = protocol.FeedEvent(fields[b"kind"].decode(), fields[b"event_id"].decode(), (), fields[b"data"].decode())
        frame, at = event.frame(stream_id), position(stream_id)
        for subscriber in targets:
            subscriber.offer(at, frame, event.event_id)
        return len(targets)

    async def replay(self, subscriber: Subscriber, after: str, announce=None) -> bool:
        """Queue the subscriber's events after `after`, then what arrived meanwhile, in order;
        `announce(complete)` (a frame) goes first. False when the buffer no longer reaches back that
        far (some events are gone)."""
        subscriber.held = []
        try:
            complete = True
            info = await self.redis.xinfo_stream(STREAM) if await self.redis.exists(STREAM) else None
            deleted = (info or {}).get("max-deleted-entry-id", b"0-0")
            if info and position(deleted.decode() if isinstance(deleted, bytes) else deleted) > position(after):
                complete = False
            entries = await self.redis.xrange(STREAM, min=f"({after}", max="+", count=STREAM_LENGTH)
        except BaseException:
            held, subscriber.held = subscriber.held, None
            for at, frame, event_id in held:
                subscriber.offer(at, frame, event_id)
            raise
        held, subscriber.held = subscriber.held, None
        if announce is not None:
            subscriber.offer(None, announce(complete))
        for stream_id, fields in entries:
            channels = fields[b"channels"].decode().split("\x1f")
            if subscriber.channels.intersection(channels):
                sid = stream_id.decode()
                event = protocol.FeedEvent(fields[b"kind"].decode(), fields[b"event_id"].decode(), (), fields[b"data"].decode())
                subscriber.offer(position(sid), event.frame(sid), event.event_id)
        for at, frame, event_id in held:
            subscriber.offer(at, frame, event_id)
        return complete

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS / 5)
            idle_since = time.monotonic() - HEARTBEAT_SECONDS
            frame = None
            for subscriber in list(self.subscribers):
                if subscriber.active_at < idle_since and subscriber.queue.empty():
                    frame = frame or orjson.dumps({"type": "heartbeat", "timestamp": protocol.now()}).decode()
                    subscriber.offer(None, frame)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This worker's hub (one per event loop), with its own Redis connection for the blocking read."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        # Its own small pool: the blocking XREAD holds one connection; replays of resuming clients wait
        # for the others (never more than 4 connections, however many clients reconnect at once).
        pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=4, timeout=10,
                                                        socket_timeout=10, socket_connect_timeout=2)  # fmt: skip
        _hubs[loop] = Hub(aioredis.Redis(connection_pool=pool))
    return _hubs[loop]


def reset() -> None:
    """Tests: forget the hubs (after pointing settings at another Redis)."""
    for found in _hubs.values():
        for task in found.tasks:
            task.cancel()
    _hubs.clear()
