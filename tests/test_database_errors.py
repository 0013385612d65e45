"""The page (`web.views.index`) and the WebSocket survive every error PostgreSQL raises, whatever the
rest of the stack is doing: the page answers a readable page with 503 and Retry-After, the socket an
`error` frame (code `unavailable`) and stays open; never a 500, never a close with 1011.

Each error is raised by the real PostgreSQL (pytest-django's database) for a real reason:
- DataError: a row that divides by zero when sorted by price per GPU (an offer of 0 GPUs);
- ProgrammingError: a missing table (`offers` renamed away for the test);
- QueryCanceled (the error of a statement timeout): the webapp's query waits on a lock, and is
  cancelled the way `statement_timeout` cancels it;
- OperationalError: the webapp's connection is terminated mid-query (an administrator, a restart).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time

import psycopg
import pytest
from asgiref.sync import sync_to_async

from tests.test_feed import ask, connect
from tests.webapp_fixtures import offer_row

SORT_BY_PRICE_PER_GPU = {"sort": "price_per_gpu"}


@contextlib.contextmanager
def altered(pg_url: str, change: str, back: str):
    """The test database changed by the statement `change` for the block, then put back by `back`."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(change)
        try:
            yield
        finally:
            conn.execute(back)


def waiting_on_a_lock(action: str):
    @contextlib.contextmanager
    def failure(pg_url: str):
        """`offers` locked by another session; each webapp query that waits for it gets
        pg_`action`_backend (cancel: what statement_timeout does; terminate: the connection dies)."""
        done = threading.Event()

        def strike() -> None:
            with psycopg.connect(pg_url, autocommit=True) as admin:
                while not done.is_set():
                    for (pid,) in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'gpubroker-webapp' AND wait_event_type = 'Lock'"
                    ).fetchall():  # fmt: skip
                        admin.execute(f"SELECT pg_{action}_backend(%s)", (pid,))
                    time.sleep(0.02)

        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE offers IN ACCESS EXCLUSIVE MODE")
            striker = threading.Thread(target=strike, daemon=True)
            striker.start()
            try:
                yield
            finally:
                done.set()
                striker.join(5)
                holder.rollback()

    return failure


FAILURES = {
    "DivisionByZero": functools.partial(altered, change="UPDATE offers SET gpu_count = 0 WHERE offer_id = 'd2'",
                                        back="UPDATE offers SET gpu_count = 1 WHERE offer_id = 'd2'"),
    "UndefinedTable": functools.partial(altered, change="ALTER TABLE offers RENAME TO offers_away",
                                        back="ALTER TABLE offers_away RENAME TO offers"),
    "QueryCanceled": waiting_on_a_lock("cancel"),
    "AdminShutdown": waiting_on_a_lock("terminate"),
}


@pytest.fixture
async def catalogue(api, pg_url):
    await sync_to_async(lambda: [offer_row(i, price=p).save() for i, p in (("d1", "1.50"), ("d2", "3.00"))])()
    return api


@pytest.mark.parametrize("error", list(FAILURES))
async def test_the_page_answers_503_with_a_readable_page_for_every_database_error(catalogue, pg_url, error):
    with FAILURES[error](pg_url):
        answer = await catalogue.get("/", params=SORT_BY_PRICE_PER_GPU)
    assert answer.status_code == 503, answer.text[:300]
    assert answer.headers["content-type"].startswith("text/html") and answer.headers["retry-after"]
    assert "retry shortly" in answer.text and "<form" in answer.text  # the page, with its filters to try again
    assert (await catalogue.get("/", params=SORT_BY_PRICE_PER_GPU)).status_code == 200  # and it recovers


@pytest.mark.parametrize("error", list(FAILURES))
async def test_the_websocket_sends_an_error_frame_for_every_database_error_and_stays_open(catalogue, unlimited_key, pg_url,
                                                                                         error):  # fmt: skip
    ws, _ = await connect(unlimited_key)
    with FAILURES[error](pg_url):
        offers = await ask(ws, {"type": "get_offers", "filters": SORT_BY_PRICE_PER_GPU})
        providers = await ask(ws, {"type": "get_providers"}) if error != "DivisionByZero" else offers
    for reply in (offers, providers):
        assert (reply["type"], reply["code"]) == ("error", "unavailable") and "retry" in reply["message"], reply
    assert (await ask(ws, {"type": "ping"}))["type"] == "pong"  # still open
    await ws.disconnect()
