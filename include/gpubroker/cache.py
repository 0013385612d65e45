"""The pipeline's side of the serving cache: the data version, and warming.

The webapp caches its answers per data version (webapp/gateway/cache.py: L2 in each worker, L1 in
Redis). `bump_version()`, called after every landing, makes the next request compute from the new
data at once. `warm()` then asks the webapp for the hot answers (the default offer list, each GPU's
offers and cheapest-per-region, provider status), so they sit in the shared L1 before users ask,
rendered by the one code path that serves users. It uses the pipeline's API key
(GPUBROKER_WEBAPP_API_KEY, created by the local stack) so warming is not rate-limited as anonymous.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import psycopg
import redis

from gpubroker import settings

VERSION = "gpubroker:cache:version"
WARM_TIMEOUT_SECONDS = 10.0
WARM_CONCURRENCY = 4  # requests in flight: two per webapp worker
log = logging.getLogger(__name__)


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def bump_version(r: redis.Redis | None = None) -> int:
    """Retire every cached answer: the webapp reads the new version at its next request."""
    return int((r or client()).incr(VERSION))


def hot_paths(conn: psycopg.Connection) -> list[str]:
    """The answers worth having before anyone asks: one list per GPU model that has offers."""
    models = [m for (m,) in conn.execute("SELECT DISTINCT gpu_model FROM offers ORDER BY 1").fetchall()]
    paths = ["/api/v1/offers", "/api/v1/providers"]
    for model in models:
        paths += [f"/api/v1/offers?gpu={quote(model)}", f"/api/v1/gpus/{quote(model)}/cheapest"]
    return paths


def warm(conn: psycopg.Connection, base_url: str | None = None, api_key: str | None = None) -> dict[str, int]:
    """GET every hot path from the webapp; returns path -> HTTP status (0: the webapp did not answer)."""
    key = api_key if api_key is not None else settings.WEBAPP_API_KEY
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    paths = hot_paths(conn)
    with httpx.Client(base_url=base_url or settings.WEBAPP_URL, headers=headers, timeout=WARM_TIMEOUT_SECONDS) as http:

        def status(path: str) -> int:
            try:
                return http.get(path).status_code
            except httpx.HTTPError as error:
                log.warning("warming %s failed: %s", path, type(error).__name__)
                return 0

        # a few at once: the webapp's workers compute them in parallel (one path per model: ~100)
        with ThreadPoolExecutor(max_workers=WARM_CONCURRENCY) as pool:
            return dict(zip(paths, pool.map(status, paths)))
