"""Fan-out of the live feed inside one webapp worker.

The bridge (feed.bridge) appends every event to one Redis stream, `gpubroker:feed`, capped at
`STREAM_LENGTH` entries: the order every worker agrees on, and the buffer resuming clients replay
from. Each worker reads it with one blocking XREAD — one Redis connection however many clients —
and hands each event to the subscribers in this process whose channels it matches: an index from
channel to subscribers, so an event costs its matching subscribers only, and a client that leaves
costs nothing from then on. An event's frame is built once (its body the bridge serialised, then
its type and position) and the same text goes to every subscriber; an event id the stream holds
twice (a repeat upstream) is dropped here, once for all of them. Each subscriber has a bounded
queue: one that falls that far behind is closed (code 4008, slow consumer), so a slow client never
grows the worker's memory. When most of a worker's subscribers have left, it gives the memory they
held back to the system (`release_memory`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
import weakref
from collections import OrderedDict, defaultdict, deque
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
SEEN_EVENTS = 10_000  # event ids the hub remembers: a repeat upstream within them is sent to nobody
REGIONS_SECONDS = 60.0
RELEASE_PEAK = 100  # when at least this many subscribers were here and half of them left,
RELEASE_SECONDS = 2.0  # and no one left for this long: give their memory back
FREEZE_JOINS = 100  # after this many joins, the heartbeat round moves what is alive out of the collector's reach
log = logging.getLogger(__name__)
# glibc's malloc keeps freed memory for reuse; malloc_trim returns its free pages (None elsewhere).
_malloc_trim = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)


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

    __slots__ = ("channels", "frames", "limit", "waiter", "last_sent", "held", "interrupted", "on_interrupt", "active_at")

    def __init__(self, frames: int = QUEUE_FRAMES):
        self.channels: set[str] = set()
        self.frames: deque[tuple[tuple[int, int] | None, str]] = deque()
        self.limit = frames
        self.waiter: asyncio.Future | None = None  # set while next_frame waits for a frame
        self.last_sent: tuple[int, int] = (0, 0)
        self.held: list | None = None  # live frames kept aside while a resume replays
        self.interrupted: Interrupted | None = None
        self.on_interrupt = lambda why: None  # the connection's way to close itself when the feed stops
        self.active_at = time.monotonic()

    @property
    def last_event_id(self) -> str | None:
        return f"{self.last_sent[0]}-{self.last_sent[1]}" if self.last_sent != (0, 0) else None

    def offer(self, at: tuple[int, int] | None, frame: str) -> None:
        """Queue a frame (never waits); a full queue interrupts the subscriber instead."""
        if self.interrupted is not None:
            return
        if self.held is not None and at is not None:
            self.held.append((at, frame))
            return
        if len(self.frames) >= self.limit:
            return self.interrupt(Interrupted(4008, f"slow consumer: more than {self.limit} events behind"))
        self.frames.append((at, frame))
        self._wake()

    def interrupt(self, why: Interrupted) -> None:
        if self.interrupted is None:
            self.interrupted = why
            self.frames.clear()  # nothing more will be sent: let the frames go now
            self.frames.append((None, ""))
            self._wake()
            self.on_interrupt(why)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_frame(self) -> tuple[tuple[int, int] | None, str]:
        """The next frame to send and its feed position (None for replies and heartbeats), in feed
        order, each event once; Interrupted when the feed stopped."""
        while True:
            while not self.frames:
                self.waiter = asyncio.get_running_loop().create_future()
                try:
                    await self.waiter
                finally:
                    self.waiter = None
            at, frame = self.frames.popleft()
            if self.interrupted is not None:
                raise self.interrupted
            if at is not None:
                if at <= self.last_sent:
                    continue  # replayed and live: once is enough
                self.last_sent = at
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
        self.regions_read: asyncio.Future | None = None
        self.first_seen: OrderedDict[str, tuple[int, int]] = OrderedDict()  # event id -> its first position
        self.peak = 0  # the most subscribers since memory was last given back
        self.left_at = 0.0
        self.release: asyncio.TimerHandle | None = None
        self.joined = 0  # joins since what is alive was last frozen (`freeze_the_living`)

    # --- membership ------------------------------------------------------------------------------
    async def join(self, subscriber: Subscriber) -> None:
        """Add a subscriber; the first one starts the reader, at the stream's end as of now."""
        self.subscribers.add(subscriber)
        self.peak = max(self.peak, len(self.subscribers))
        self.joined += 1
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
        self.left_at = time.monotonic()
        if self.peak >= RELEASE_PEAK and len(self.subscribers) <= self.peak // 2 and self.release is None:
            self.release = asyncio.get_running_loop().call_later(RELEASE_SECONDS, self._release_when_quiet)

    def _release_when_quiet(self) -> None:
        """Once no one has left for RELEASE_SECONDS (a crowd leaves over seconds), give memory back."""
        quiet_for = time.monotonic() - self.left_at
        if quiet_for < RELEASE_SECONDS:
            self.release = asyncio.get_running_loop().call_later(RELEASE_SECONDS - quiet_for, self._release_when_quiet)
            return
        self.release, self.peak = None, len(self.subscribers)
        release_memory()

    async def known_regions(self) -> dict[str, str]:
        """lower-case region -> region as offers spell it; refreshed every minute, by one query however
        many subscribers ask meanwhile."""
        if time.monotonic() - self.regions_at > REGIONS_SECONDS:
            if self.regions_read is None or self.regions_read.done():
                self.regions_read = asyncio.ensure_future(self._read_regions())
            await asyncio.shield(self.regions_read)  # one asker going away does not cancel the others' read
        return self.regions

    async def _read_regions(self) -> None:
        try:
            rows = await db.fetch("SELECT DISTINCT region FROM offers")
            self.regions = {r["region"].lower(): r["region"] for r in rows}
            self.regions_at = time.monotonic()
        except db.DatabaseUnavailable:
            pass  # the last list stands

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
        """Hand one stream entry to every subscriber of one of its channels, the same frame (built
        once) to each; returns how many. An event id already seen at an earlier position goes to none."""
        at = position(stream_id)
        if not self._first(fields[b"event_id"].decode(), at):
            return 0
        channels = fields[b"channels"].decode().split("\x1f")
        targets = set().union(*(self.by_channel.get(c, ()) for c in channels))
        if not targets:
            return 0
        frame = _frame(stream_id, fields)
        for subscriber in targets:
            subscriber.offer(at, frame)
        return len(targets)

    def _first(self, event_id: str, at: tuple[int, int]) -> bool:
        """Whether `at` is the first position of this event id that the hub has seen."""
        first = self.first_seen.setdefault(event_id, at)
        if first is at and len(self.first_seen) > SEEN_EVENTS:
            self.first_seen.popitem(last=False)
        return first == at

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
            for at, frame in held:
                subscriber.offer(at, frame)
            raise
        held, subscriber.held = subscriber.held, None
        if announce is not None:
            subscriber.offer(None, announce(complete))
        replayed: dict[str, tuple[int, int]] = {}
        for stream_id, fields in entries:
            sid, event_id = stream_id.decode(), fields[b"event_id"].decode()
            at = position(sid)
            if replayed.setdefault(event_id, self.first_seen.get(event_id, at)) != at:
                continue  # the event id's other entry is the one that counts (the first the hub saw)
            if subscriber.channels.intersection(fields[b"channels"].decode().split("\x1f")):
                subscriber.offer(at, _frame(sid, fields))
        for at, frame in held:
            subscriber.offer(at, frame)
        return complete

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS / 5)
            if self.joined >= FREEZE_JOINS:
                self.joined = 0
                freeze_the_living()
            idle_since = time.monotonic() - HEARTBEAT_SECONDS
            frame = None
            for subscriber in list(self.subscribers):
                if subscriber.active_at < idle_since and not subscriber.frames:
                    frame = frame or orjson.dumps({"type": "heartbeat", "timestamp": protocol.now()}).decode()
                    subscriber.offer(None, frame)


def _frame(stream_id: str, fields: dict[bytes, bytes]) -> str:
    """A stream entry's client frame (an entry appended before frames were flat has `data`, not `body`)."""
    body = fields[b"body"].decode() if b"body" in fields else protocol.body_of_data(fields[b"data"].decode())
    return protocol.FeedEvent(fields[b"kind"].decode(), fields[b"event_id"].decode(), (), body).frame(stream_id)


def freeze_the_living() -> None:
    """Keep the objects of live connections out of the cyclic garbage collector's full passes.

    With thousands of connections a worker holds millions of objects, and each full collection walks
    them all while every client waits: bench/push.py measured 10,000 clients at p99 1.9 s with the
    collector on and 0.28 s with it off. `gc.freeze` moves what exists now to a generation the
    collector never walks; what is allocated afterwards is collected as usual. `release_memory`
    unfreezes, so cycles of departed connections are collected then."""
    gc.freeze()


def release_memory() -> None:
    """Hand the memory of departed connections back to the system: collect their reference cycles
    (frozen ones too), freeze what is still alive again, then (glibc) return malloc's free pages,
    which it would otherwise keep for reuse."""
    gc.unfreeze()
    gc.collect()
    freeze_the_living()
    if _malloc_trim is not None:
        _malloc_trim(0)


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
        if found.release is not None:
            found.release.cancel()
    _hubs.clear()
