"""The request path's PostgreSQL (webapp/gpubroker_web/db.py): no query of a request runs past the
statement timeout (the seed's 5 s), however long what it waits for lasts; the request answers 503 with
Retry-After and the worker keeps answering meanwhile. The slow query is a real one: it waits for a
lock another session holds on its table."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async

from tests.webapp_fixtures import locked, make_key, offer_row

SEED_STATEMENT_SECONDS = 5
PATIENCE = SEED_STATEMENT_SECONDS + 7  # longer than any bounded request takes, even on a slow machine


@sync_to_async
def add_offers():
    from offers.models import Offer

    Offer.objects.bulk_create([offer_row("h1", price="2.50"), offer_row("h2", price="2.90")])


async def stuck_then_answered(webapp, path: str, **kwargs):
    """The answer to a request whose query waits on a lock, how long it took, and whether /healthz was
    answered meanwhile (the worker is not hung)."""
    started = time.monotonic()
    request = asyncio.ensure_future(webapp.get(path, **kwargs))
    await asyncio.sleep(1.0)
    alive = (await webapp.get("/healthz")).status_code == 200 and not request.done()
    answer = await asyncio.wait_for(request, PATIENCE)
    return answer, time.monotonic() - started, alive


def test_the_statement_timeout_is_the_seed_s():
    from gpubroker_web import db

    assert db.STATEMENT_TIMEOUT_SECONDS == SEED_STATEMENT_SECONDS


async def test_an_offers_query_stuck_on_a_lock_answers_503_with_retry_after_at_the_timeout(api, pg_url):
    await add_offers()
    with locked(pg_url, "offers"):
        answer, seconds, alive = await stuck_then_answered(api, "/api/v1/offers", params={"gpu": "H100"})
    assert answer.status_code == 503 and answer.headers["retry-after"].isdigit(), answer.text
    assert "unavailable" in answer.json()["detail"] and alive
    assert SEED_STATEMENT_SECONDS - 0.5 <= seconds < SEED_STATEMENT_SECONDS + 4
    after = await api.get("/api/v1/offers", params={"gpu": "H100"})
    assert after.status_code == 200 and len(after.json()["items"]) == 2  # the lock gone, it answers again


async def test_an_orm_route_stuck_on_a_lock_answers_503_with_retry_after_at_the_timeout(webapp, pg_url):
    """The alert rules are read through Django's ORM (in a thread): the same bound applies."""
    key = await sync_to_async(make_key)("pro")
    with locked(pg_url, "alert_rules"):
        answer, seconds, alive = await stuck_then_answered(webapp, "/api/v1/alerts", headers={"X-API-Key": key})
    assert answer.status_code == 503 and answer.headers["retry-after"].isdigit(), answer.text
    assert alive and SEED_STATEMENT_SECONDS - 0.5 <= seconds < SEED_STATEMENT_SECONDS + 4
    assert (await webapp.get("/api/v1/alerts", headers={"X-API-Key": key})).json()["items"] == []

