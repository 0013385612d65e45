"""The pipeline's side of the serving cache: a landing bumps the data version, warming fills L1,
over real HTTP against the whole application (uvicorn) on the test database and Redis."""

from __future__ import annotations

import pytest
import redis

from gpubroker import cache, store
from gpubroker.schema import Offer as OfferSchema
from tests.webapp_fixtures import NOW, make_key


def offer(offer_id: str, gpu: str, price: str) -> OfferSchema:
    return OfferSchema(provider="vastai", offer_id=offer_id, instance_type=f"1x {gpu}", gpu_model=gpu,
                       gpu_vendor="NVIDIA", gpu_count=1, gpu_memory_gb=80 if gpu == "H100" else 24,
                       price_per_hour=price, region="Norway", observed_at=NOW)  # fmt: skip


def test_bump_version_counts_up(isolated_redis):
    first = cache.bump_version(isolated_redis)
    assert cache.bump_version(isolated_redis) == first + 1 == int(isolated_redis.get(cache.VERSION))


def test_warming_fills_the_shared_cache_with_the_hot_answers(live_webapp, pg, isolated_redis):
    store.land(pg, "vastai", [offer("a", "H100", "2.0"), offer("b", "RTX4090", "0.4")], NOW)
    version = cache.bump_version(isolated_redis)
    key = make_key("unlimited", "cache warmer")
    statuses = cache.warm(pg, base_url=live_webapp, api_key=key)
    assert statuses == {"/api/v1/offers": 200, "/api/v1/providers": 200, "/api/v1/offers?gpu=H100": 200,
                        "/api/v1/gpus/H100/cheapest": 200, "/api/v1/offers?gpu=RTX4090": 200,
                        "/api/v1/gpus/RTX4090/cheapest": 200}  # fmt: skip
    stored = {k.decode() for k in isolated_redis.scan_iter(f"gpubroker:resp:v{version}:*") if not k.endswith(b":lock")}
    assert f"gpubroker:resp:v{version}:/api/v1/offers?gpu=H100" in stored and len(stored) == 6
    assert 0 < isolated_redis.pttl(f"gpubroker:resp:v{version}:/api/v1/offers?gpu=H100") <= 60_000


def test_warming_reports_a_webapp_that_does_not_answer(pg):
    store.land(pg, "vastai", [offer("a", "H100", "2.0")], NOW)
    statuses = cache.warm(pg, base_url="http://127.0.0.1:1", api_key="")
    assert set(statuses.values()) == {0}


def test_bumping_needs_redis_and_says_so():
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):  # the sync logs it; cached answers then age out (<= 60 s)
        cache.bump_version(dead)
