"""The request path's PostgreSQL: one async psycopg pool per worker process.

Views run plain SQL on it instead of Django's ORM: the ORM is synchronous, and under ASGI each call
would hop to a thread (sync_to_async), which serialises requests and costs a thread switch each.
The pool connects to the database Django is configured with (so tests use pytest-django's database),
opens on first use in the running event loop, and fails fast: a PostgreSQL outage becomes
`DatabaseUnavailable` (the API answers 503 with Retry-After) within `TIMEOUT_SECONDS`, and so does a
query that runs past `STATEMENT_TIMEOUT_SECONDS` (the seed's 5 s for a request; PostgreSQL cancels it,
waiting for a lock included), so no worker hangs on one. The ORM routes (alerts) get the same bound in
the web server (`bound_django_queries`); migrations and management commands keep theirs unbounded.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

MIN_SIZE, MAX_SIZE = 1, 8
TIMEOUT_SECONDS = 2.0
STATEMENT_TIMEOUT_SECONDS = 5
RETRY_AFTER_SECONDS = 5
BOUNDED = f"-c statement_timeout={STATEMENT_TIMEOUT_SECONDS * 1000}"  # libpq `options`: set at connect


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL did not answer in time: the caller says 503 and asks the client to come back."""


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = weakref.WeakKeyDictionary()


def conninfo() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"],
        connect_timeout=2, application_name="gpubroker-webapp", options=f"-c timezone=UTC {BOUNDED}",
    )  # fmt: skip


def bound_django_queries() -> None:
    """Give Django's connections of this process the request path's statement timeout (the web
    server calls it at start; a query cancelled by it is Django's OperationalError, answered 503)."""
    options = settings.DATABASES["default"].setdefault("OPTIONS", {})
    if BOUNDED not in options.get("options", ""):
        options["options"] = f"{options.get('options', '')} {BOUNDED}".strip()


async def pool() -> AsyncConnectionPool:
    """This event loop's pool, opened on first use (a pool belongs to the loop that opened it)."""
    loop = asyncio.get_running_loop()
    if loop not in _pools:
        _pools[loop] = AsyncConnectionPool(conninfo(), min_size=MIN_SIZE, max_size=MAX_SIZE, open=False,
                                           timeout=TIMEOUT_SECONDS, kwargs={"autocommit": True, "row_factory": dict_row},
                                           check=AsyncConnectionPool.check_connection)  # fmt: skip
        await _pools[loop].open(wait=False)
    return _pools[loop]


async def close() -> None:
    """Close this event loop's pool."""
    found = _pools.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


async def fetch(sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of one query as dicts; DatabaseUnavailable when PostgreSQL cannot be reached or the query
    ran past the statement timeout (psycopg's QueryCanceled is an OperationalError)."""
    try:
        async with (await pool()).connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()
    except (PoolTimeout, psycopg.OperationalError) as error:
        raise DatabaseUnavailable(f"database unavailable: {type(error).__name__}") from None


async def fetch_one(sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> dict[str, Any] | None:
    rows = await fetch(sql, params)
    return rows[0] if rows else None
