"""Hot queries precomputed into Redis, versioned so a reader never sees a half-written set.

A warm-up writes every key of a new version N (`gpubroker:cache:v<N>:<name>`) in one MULTI, then
points `gpubroker:cache:current` at N. Readers resolve the pointer first, so they read either the
old set or the new one, whole. Pricing keys live 60 s, static ones 300 s (the seed's TTLs); a key
that expired reads as a miss and the caller asks PostgreSQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

import psycopg
import redis
from psycopg.rows import dict_row

from gpubroker import gpus, settings

PRICING_TTL = 60
STATIC_TTL = 300
PREFIX = "gpubroker:cache"
CURRENT = f"{PREFIX}:current"
VERSION = f"{PREFIX}:version"
FIELDS = ("provider", "offer_id", "instance_type", "gpu_model", "gpu_count", "gpu_memory_gb", "price_per_hour",
          "spot_price", "region", "country", "availability", "observed_at")  # fmt: skip


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _json(rows) -> str:
    def default(value):
        return float(value) if isinstance(value, Decimal) else value.isoformat()

    return json.dumps(rows, default=default)


def hot_queries(conn: psycopg.Connection) -> dict[str, tuple[str, int]]:
    """name -> (JSON, TTL) for every precomputed query."""
    with conn.cursor(row_factory=dict_row) as cur:
        offers = cur.execute(
            f"SELECT {', '.join(FIELDS)} FROM offers WHERE availability <> 'unavailable'"
            " ORDER BY price_per_hour, provider, offer_id"
        ).fetchall()
    by_provider, by_gpu, cheapest = defaultdict(list), defaultdict(list), defaultdict(dict)
    for offer in offers:  # cheapest first, so the first offer seen per (gpu, region) is the cheapest
        by_provider[offer["provider"]].append(offer)
        by_gpu[offer["gpu_model"]].append(offer)
        cheapest[offer["gpu_model"]].setdefault(offer["region"], offer)
    entries = {f"provider:{p}": (_json(rows), PRICING_TTL) for p, rows in by_provider.items()}
    entries |= {f"gpu:{g}": (_json(rows), PRICING_TTL) for g, rows in by_gpu.items()}
    entries |= {f"cheapest:{g}": (_json(regions), PRICING_TTL) for g, regions in cheapest.items()}
    registry = [{"name": m.name, "vendor": m.vendor, "memory_gb": m.memory_gb} for m in gpus.MODELS]
    entries["static:gpus"] = (json.dumps(registry), STATIC_TTL)
    return entries


def warm(conn: psycopg.Connection, r: redis.Redis | None = None) -> int:
    """Write a new version of every hot query, then switch readers to it. Returns the version."""
    r = r or client()
    entries = hot_queries(conn)
    version = r.incr(VERSION)
    with r.pipeline(transaction=True) as pipe:
        for name, (value, ttl) in entries.items():
            pipe.set(f"{PREFIX}:v{version}:{name}", value, ex=ttl)
        pipe.set(CURRENT, version, ex=STATIC_TTL)
        pipe.execute()
    return version


def read(name: str, r: redis.Redis | None = None):
    """The current version's value for `name` (e.g. "cheapest:H100"), or None on a miss."""
    r = r or client()
    version = r.get(CURRENT)
    if version is None:
        return None
    raw = r.get(f"{PREFIX}:v{int(version)}:{name}")
    return None if raw is None else json.loads(raw)
