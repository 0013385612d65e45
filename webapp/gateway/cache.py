"""Two-tier response cache: L2 in this process -> L1 Redis -> the application (PostgreSQL).

Entries are whole responses of the public read API that the API marked `Cache-Control: public,
max-age=N`, keyed by the request (path and sorted query) and the data version. Every landing bumps
the data version (`gpubroker.cache.bump_version`), so new data is served at once: entries of an older
version are never read again. L2 holds at most `L2_ENTRIES` entries for at most `L2_SECONDS`; L1 holds
them for the response's max-age (pricing 60 s, static 300 s). Redis down: L2, then the application.

Stampedes are prevented twice:
- XFetch (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache Stampede Prevention",
  VLDB 2015): a reader recomputes early when `now - delta * beta * ln(random()) >= expiry`, where
  delta is how long the last computation took; the closer to expiry and the slower the computation,
  the likelier, so one reader refreshes before the entry expires for everyone.
- Single-flight: concurrent misses for one key in a process share one computation, and across
  processes a short Redis lock lets one compute while the others wait for its result in L1. The
  computation belongs to none of its askers: one of them going away does not cancel it.

Why not a library: none of the kept caches (cachetools, aiocache, django's cache) does XFetch, and
the L2 needs per-entry expiry + delta next to an LRU bound: an OrderedDict is the whole LRU.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import cached_property

import redis.asyncio as aioredis
from redis.exceptions import RedisError

L2_ENTRIES = 4096
L2_SECONDS = 30.0
BETA = 1.0  # XFetch's beta: > 1 favours earlier recomputation
LOCK_SECONDS = 5.0  # the cross-process compute lock lives at most this long
LOCK_WAIT_SECONDS = 2.0  # how long a process waits for another's result before computing itself
L1_PREFIX = "gpubroker:resp"
VARY = (b"vary", b"Accept-Encoding")  # an answer's encoding follows the request's Accept-Encoding


@dataclass(frozen=True)
class Entry:
    """One response and what XFetch needs to know about it."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    version: int | None  # the data version it was computed from (None: unknown, Redis was down)
    computed_at: float  # wall-clock seconds
    delta: float  # seconds the computation took
    ttl: float  # 0: not cacheable

    @property
    def expiry(self) -> float:
        return self.computed_at + self.ttl

    @cached_property
    def gzipped(self) -> bytes:
        """The body gzipped, once per entry and process (level 6, no timestamp: the same bytes each time)."""
        return gzip.compress(self.body, compresslevel=6, mtime=0)

    @cached_property
    def plain_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Its headers as sent with `body` (made once: the hot path only adds the per-request ones)."""
        return (*self.headers, VARY, (b"content-length", str(len(self.body)).encode()))

    @cached_property
    def gzipped_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Its headers as sent with `gzipped`."""
        return (*self.headers, (b"content-encoding", b"gzip"), VARY, (b"content-length", str(len(self.gzipped)).encode()))

    def encode(self) -> bytes:
        meta = {"s": self.status, "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers],
                "v": self.version, "c": self.computed_at, "d": self.delta, "t": self.ttl}  # fmt: skip
        return json.dumps(meta).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        meta, _, body = raw.partition(b"\n")
        m = json.loads(meta)
        headers = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in m["h"])
        return cls(m["s"], headers, body, m["v"], m["c"], m["d"], m["t"])


def recompute_early(expiry: float, delta: float, now: float, beta: float, rand: Callable[[], float]) -> bool:
    """XFetch: True when this reader should recompute now (always True once expired)."""
    return now - delta * beta * math.log(1.0 - rand()) >= expiry  # 1 - rand() is in (0, 1]: log is finite


class LocalTier:
    """L2: a bounded LRU of entries, each kept until min(its expiry, stored + L2_SECONDS)."""

    def __init__(self, max_entries: int = L2_ENTRIES, max_seconds: float = L2_SECONDS):
        self.entries: OrderedDict[str, tuple[Entry, float]] = OrderedDict()
        self.max_entries = max_entries
        self.max_seconds = max_seconds

    def get(self, key: str, now: float) -> tuple[Entry, float] | None:
        """(entry, its local expiry), or None when absent or expired."""
        found = self.entries.get(key)
        if found is None:
            return None
        if now >= found[1]:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return found

    def put(self, key: str, entry: Entry, now: float) -> None:
        self.entries[key] = (entry, min(entry.expiry, now + self.max_seconds))
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


Compute = Callable[[], Awaitable[Entry]]


class TwoTierCache:
    def __init__(self, client: aioredis.Redis | None, local: LocalTier | None = None, beta: float = BETA,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random):  # fmt: skip
        self.redis = client
        self.local = local or LocalTier()
        self.beta, self.clock, self.rand = beta, clock, rand
        self.inflight: dict[str, asyncio.Task[tuple[Entry, str]]] = {}
        self.computations = 0  # how many times `compute` ran (for tests and metrics)

    def _fresh(self, entry: Entry, expiry: float, version: int | None) -> bool:
        if version is not None and entry.version != version:
            return False
        return not recompute_early(expiry, entry.delta, self.clock(), self.beta, self.rand)

    def lookup(self, key: str, version: int | None) -> tuple[Entry | None, tuple[Entry, float] | None]:
        """L2's answer when it is fresh at `version` (None when absent, of another version, or XFetch
        says recompute now), and what L2 holds for `key` (for `refresh`). No await: the hot path."""
        held = self.local.get(key, self.clock())
        if held and self._fresh(held[0], held[1], version):
            return held[0], held
        return None, held

    async def get(self, key: str, version: int | None, compute: Compute) -> tuple[Entry, str]:
        """The response for `key` at `version`, and the tier that answered: "l2", "l1" or "origin".

        `compute` produces a fresh Entry (its ttl 0 means: answer it, but do not store it).
        """
        entry, held = self.lookup(key, version)
        if entry is not None:
            return entry, "l2"
        return await self.refresh(key, version, compute, held)

    async def stored(self, key: str, version: int | None) -> tuple[Entry, str] | None:
        """An answer L2 or L1 holds for `key` at `version` and before its expiry (XFetch does not
        apply: nobody is asked to recompute early), and its tier; None when neither holds one."""
        held = self.local.get(key, self.clock())
        if held and (version is None or held[0].version == version):
            return held[0], "l2"
        if self.redis is None or version is None:
            return None
        entry = await self._l1_get(key, version)
        if entry is None or entry.version != version:
            return None
        self.local.put(key, entry, self.clock())
        return entry, "l1"

    async def refresh(self, key: str, version: int | None, compute: Compute,
                      held: tuple[Entry, float] | None) -> tuple[Entry, str]:  # fmt: skip
        """`get` after `lookup` found no fresh answer (`held`: what L2 holds) from L1 or `compute`.

        The fill runs as a task of its own that every asker awaits shielded: the one who started it
        may be cancelled (its client hung up) without cancelling the answer the others wait for.
        """
        if key in self.inflight:  # someone in this process is already fetching it
            if held and (version is None or held[0].version == version):
                return held[0], "l2"  # refreshing early: serve the current entry meanwhile
            return await asyncio.shield(self.inflight[key])
        fill = asyncio.ensure_future(self._fill(key, version, compute))
        self.inflight[key] = fill
        fill.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(fill)

    def _landed(self, key: str, fill: asyncio.Task[tuple[Entry, str]]) -> None:
        if self.inflight.get(key) is fill:
            del self.inflight[key]
        if not fill.cancelled():
            fill.exception()  # retrieved: no "never retrieved" warning when every asker left

    async def _fill(self, key: str, version: int | None, compute: Compute) -> tuple[Entry, str]:
        shared = self.redis is not None and version is not None
        if shared:
            entry = await self._l1_get(key, version)
            if entry and self._fresh(entry, entry.expiry, version):
                self.local.put(key, entry, self.clock())
                return entry, "l1"
            if not await self._lock(key, version):  # another process is computing it
                entry = entry or await self._wait_for_other(key, version)  # an early-refresh entry still serves
                if entry:
                    self.local.put(key, entry, self.clock())
                    return entry, "l1"
        started = time.perf_counter()
        entry = await compute()
        self.computations += 1
        entry = replace(entry, version=version, computed_at=self.clock(), delta=time.perf_counter() - started)
        if entry.ttl > 0:
            self.local.put(key, entry, self.clock())
            if shared:
                await self._l1_put(key, entry)
        return entry, "origin"

    def _l1_key(self, key: str, version: int) -> str:
        return f"{L1_PREFIX}:v{version}:{key}"

    async def _l1_get(self, key: str, version: int) -> Entry | None:
        try:
            raw = await self.redis.get(self._l1_key(key, version))
        except (RedisError, OSError):
            return None
        if raw is None:
            return None
        entry = Entry.decode(raw)
        return entry if self.clock() < entry.expiry else None

    async def _l1_put(self, key: str, entry: Entry) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(self._l1_key(key, entry.version), entry.encode(), px=max(1, int(entry.ttl * 1000)))
                pipe.delete(self._l1_key(key, entry.version) + ":lock")
                await pipe.execute()
        except (RedisError, OSError):
            pass  # L1 is an optimisation: the answer is already computed and in L2

    async def _lock(self, key: str, version: int) -> bool:
        try:
            return bool(await self.redis.set(self._l1_key(key, version) + ":lock", 1, nx=True,
                                             px=int(LOCK_SECONDS * 1000)))  # fmt: skip
        except (RedisError, OSError):
            return True  # Redis is down: nobody else can coordinate, compute here

    async def _wait_for_other(self, key: str, version: int) -> Entry | None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            entry = await self._l1_get(key, version)
            if entry:
                return entry
        return None
