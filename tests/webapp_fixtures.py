"""Fixtures for the webapp: the whole ASGI application (gateway + Django + Channels) in process,
on pytest-django's database and the tests' own Redis database, with API keys of each plan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
# Every API key the tests make: the last test file (test_zz_logs_hold_no_secrets.py) looks for each
# of them in every log the stack keeps.
KEYS_USED: set[str] = set()


def make_key(plan: str = "unlimited", name: str = "tests") -> str:
    """A new API key of `plan`, stored the way `manage.py create_api_key` stores it."""
    from gateway import keys
    from gateway.models import ApiKey

    key = keys.new_key()
    KEYS_USED.add(key)
    ApiKey.objects.create(name=name, plan=plan, digest=keys.digest(key), prefix=key[:12])
    return key


async def landed(redis_client) -> None:
    """What a landing does to the webapp: bump the data version. The `api` fixture's unlimited key is
    admitted from leases under load, which carry the version they were taken with (gateway.ratelimit):
    the landing is visible once the last of them ran out."""
    from gateway import ratelimit
    from gpubroker import cache

    cache.bump_version(redis_client)
    await asyncio.sleep(ratelimit.LEASE_SECONDS)


def offer_row(offer_id: str, gpu="H100", provider="vastai", region="Norway", price="1.00", **fields):
    """An `offers` row (Django model) with sensible defaults."""
    from offers.models import Offer

    values = dict(
        provider=provider, offer_id=offer_id, instance_type=f"1x {gpu}", gpu_model=gpu, gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal(price), region=region, availability="available",
        observed_at=NOW, first_seen=NOW, last_seen=NOW,
    )  # fmt: skip
    return Offer(**(values | fields))


@contextlib.contextmanager
def locked(pg_url: str, *tables: str, seconds: int = 30) -> Iterator[None]:
    """The tables locked by another session (ACCESS EXCLUSIVE) while the block runs: every query of
    them waits, as behind a long migration or a stuck transaction. PostgreSQL ends that session after
    `seconds` at the latest, so a test stuck on the lock (the fault it tests) fails instead of hanging."""
    from gpubroker import store

    conn = store.connect(pg_url)
    try:
        conn.execute(f"SET idle_in_transaction_session_timeout = '{seconds}s'")
        conn.execute("BEGIN")
        conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        conn.close()  # rolls the lock back (quietly, should PostgreSQL have ended the session already)


@pytest.fixture
async def webapp(transactional_db, isolated_redis):
    """An httpx client for the whole ASGI application, as client 127.0.0.1 without a key."""
    from gateway import runtime
    from gpubroker_web import db
    from gpubroker_web.asgi import application

    runtime.reset()
    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    runtime.reset()
    # Connections hold the test database, which pytest-django drops at the end: the request path's
    # pool, and Django's own in the thread where the test's sync_to_async calls ran.
    await db.close()
    await sync_to_async(connections.close_all)()


@pytest.fixture
def unlimited_key(transactional_db) -> str:
    return make_key("unlimited")


@pytest.fixture
async def api(webapp, unlimited_key):
    """The application, asked with an unlimited key (so tests are not rate-limited)."""
    webapp.headers["Authorization"] = f"Bearer {unlimited_key}"
    return webapp


@contextlib.contextmanager
def serving(trusted_proxies: str = "") -> Iterator[str]:
    """The whole application served over real HTTP by uvicorn (in a thread, its own event loop), as
    the stack runs it: `--forwarded-allow-ips` is `trusted_proxies` (the stack's default: none)."""
    import threading
    import time

    import uvicorn

    from gateway import runtime
    from gpubroker_web.asgi import application

    runtime.reset()
    config = uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            forwarded_allow_ips=trusted_proxies)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.reset()


@pytest.fixture
def live_webapp(transactional_db, isolated_redis):
    """The whole application served over real HTTP by uvicorn (`serving`); yields its base URL."""
    with serving() as url:
        yield url
