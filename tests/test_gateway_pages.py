"""The human pages and /metrics in the gateway (webapp/gateway/asgi.py): none is a way around the plans.

`/` counts against the caller's window like an API request unless its first view comes from the
cache (an HTML 429 with Retry-After when over); `/dq/` and the providers' state `/metrics` reads are
kept a few seconds, so a flood of them costs PostgreSQL one read per few seconds.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async

from tests.webapp_fixtures import make_key, offer_row


@sync_to_async
def add_offers():
    from offers.models import Offer

    Offer.objects.bulk_create([offer_row("h1", price="2.50"), offer_row("a1", gpu="A100", price="1.10")])


async def test_page_loads_count_against_the_free_plan_unless_the_first_view_is_cached(webapp):
    await add_offers()
    first = await webapp.get("/")
    again = [await webapp.get("/") for _ in range(5)]
    filtered = [await webapp.get("/", params={"gpu": "H100", "max_price": 10 + n}) for n in range(10)]
    assert first.status_code == 200 and first.headers["ratelimit-remaining"] == "9"  # computed: counted
    assert {(a.status_code, a.headers["x-cache"]) for a in again} == {(200, "l2")}  # cached: not counted
    assert not any("ratelimit-remaining" in a.headers for a in again)
    assert [a.status_code for a in filtered] == [200] * 9 + [429]  # distinct query strings are no way around
    assert [a.headers["ratelimit-remaining"] for a in filtered[:9]] == [str(n) for n in range(8, -1, -1)]
    assert (await webapp.get("/api/v1/gpus")).status_code == 429  # one window: the page's and the API's
    assert (await webapp.get("/")).status_code == 200  # the cached first view still serves


async def test_a_refused_page_load_is_a_readable_html_429_with_retry_after(webapp):
    await add_offers()
    answers = [await webapp.get("/", params={"gpu": "A100", "max_price": 10 + n}) for n in range(11)]
    refused = answers[-1]
    assert refused.status_code == 429 and refused.headers["content-type"] == "text/html; charset=utf-8"
    seconds = int(refused.headers["retry-after"])
    assert 1 <= seconds <= 60 and refused.headers["ratelimit-remaining"] == "0"
    assert "<h1>Too many requests</h1>" in refused.text and f"Try again in {seconds} s." in refused.text
    assert "free plan" in refused.text and "10 requests per 60 s" in refused.text and '<a href="/">' in refused.text


async def test_a_page_sent_with_a_key_counts_against_the_key_s_plan_and_an_unknown_key_is_refused(webapp):
    await add_offers()
    pro = await sync_to_async(make_key)("pro")
    keyed = await webapp.get("/", params={"gpu": "H100"}, headers={"Authorization": f"Bearer {pro}"})
    unknown = await webapp.get("/", params={"gpu": "H100"}, headers={"Authorization": "Bearer gpb_not-a-key"})
    assert keyed.status_code == 200
    assert (keyed.headers["ratelimit-limit"], keyed.headers["ratelimit-remaining"]) == ("100", "99")
    assert unknown.status_code == 401 and "<h1>Unknown API key</h1>" in unknown.text
    assert unknown.headers["ratelimit-remaining"] == "9"  # counted against the address


async def test_the_data_quality_page_is_read_once_per_few_seconds_whatever_its_query(webapp, monkeypatch):
    from gateway import asgi

    monkeypatch.setattr(asgi, "DQ_SECONDS", 1.0)
    answers = [await webapp.get("/dq/", params={"n": n}) for n in range(30)]
    await asyncio.sleep(1.1)
    later = await webapp.get("/dq/")
    assert [a.status_code for a in answers] == [200] * 30 and len({a.text for a in answers}) == 1
    assert [a.headers["x-cache"] for a in answers] == ["origin"] + ["l2"] * 29
    assert "ratelimit-limit" not in answers[0].headers  # not counted: kept instead
    assert later.headers["x-cache"] == "origin"  # read again once kept long enough


async def test_metrics_read_the_providers_state_once_per_few_seconds(webapp, monkeypatch):
    from gateway import providers_metrics
    from offers import providers

    reads, read = [], providers.statuses_and_breakers

    async def counted():  # the real read, counted
        reads.append(1)
        return await read()

    monkeypatch.setattr(providers, "statuses_and_breakers", counted)
    monkeypatch.setattr(providers_metrics, "STATE_SECONDS", 1.0)
    scrapes = await asyncio.gather(*(webapp.get("/metrics") for _ in range(20)))
    await asyncio.sleep(1.1)
    later = await webapp.get("/metrics")
    assert {s.status_code for s in scrapes} == {200} and "circuit_breaker_state" in scrapes[0].text
    assert len(reads) == 2 and later.status_code == 200  # one read for the 20, one after the state aged
