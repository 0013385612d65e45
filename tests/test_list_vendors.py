"""Dated price lists (source "list", `StaticCatalogueHook`): the last resort for a vendor that publishes
neither a price API nor a readable page. Every vendor of the table has one or the other today, so
these tests use a list vendor of their own (`Example List Cloud`, a catalogue in a temporary folder):
its offers are observed at the list's date, its age is true in the API, and a list past 30 days is stale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from gpubroker import search, store, vendors
from gpubroker.schema import observation_id
from gpubroker.vendors import Vendor
from gpubroker_provider.hooks import base
from gpubroker_provider.hooks.base import StaticCatalogueHook, times

SLUG = "examplelist"
ROW = Vendor(SLUG, "Example List Cloud", "https://example.com/prices", "tests.test_list_vendors.ExampleListHook",
             "published price list", source="list")  # fmt: skip


class ExampleListHook(StaticCatalogueHook):
    vendor = ROW
    price_unit, row_list = "per GPU per hour", "gpus"

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for region in row["regions"]:
            yield {"gpu": row["gpu"], "region": region, "offer_id": f"{row['type']}@{region}",
                   "instance_type": row["type"], "gpu_count": row["gpus"], "gpu_memory_gb": 80,
                   "price_per_hour": times(row["usd_per_gpu_hour"], row["gpus"])}  # fmt: skip


def catalogue(as_of: str) -> dict:
    return {"source": "https://example.com/prices", "as_of": as_of, "currency": "USD", "price_unit": "per GPU per hour",
            "regions": {"eu-1": {"place": "Oslo, Norway", "country": "NO"}},
            "gpus": [{"type": "h100.8x", "gpu": "H100 SXM", "gpus": 8, "usd_per_gpu_hour": 2.5, "regions": ["eu-1"]}]}  # fmt: skip


@pytest.fixture
def listed(tmp_path, monkeypatch):
    """The example list vendor in the vendor table, its catalogue dated as the test asks."""
    monkeypatch.setattr(base, "CATALOGUES", tmp_path)
    monkeypatch.setitem(vendors.VENDORS, SLUG, ROW)

    def publish(as_of: str) -> None:
        (tmp_path / f"{SLUG}.json").write_text(json.dumps(catalogue(as_of)))

    return publish


def test_a_lists_offers_are_observed_on_the_day_it_was_published(listed):
    listed("2026-11-01")
    batch = ExampleListHook().fetch_batch()
    [offer] = batch.offers
    published = datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert offer.observed_at == published  # not the time it was read
    assert (offer.gpu_model, offer.gpu_count, str(offer.price_per_hour), offer.country) == ("H100", 8, "20.0000", "NO")
    # read again tomorrow: the same observation, the same event id (the outbox queues it once)
    again = ExampleListHook().fetch_batch().offers[0]
    assert observation_id(SLUG, again.offer_id, again.observed_at) == observation_id(SLUG, offer.offer_id, published)
    now = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)  # the API's age counts from the list's date
    shown = search.item({**offer.model_dump(), "first_seen": published, "last_seen": now}, now)
    assert shown["data_age_seconds"] == int((now - published).total_seconds())


def test_an_undated_or_wrong_unit_list_is_refused(listed):
    listed("not a date")
    with pytest.raises(base.PayloadError, match=f"{SLUG}: malformed payload"):
        ExampleListHook().fetch_batch()


@pytest.mark.parametrize(("age_days", "stale"), [(10, False), (31, True)])
async def test_the_providers_api_says_a_lists_date_and_flags_it_stale_past_30_days(listed, api, age_days, stale):
    published = (datetime.now(timezone.utc) - timedelta(days=age_days)).date()
    listed(published.isoformat())
    batch = ExampleListHook().fetch_batch()

    @sync_to_async
    def land() -> None:
        from django.db import connection

        with store.connect(_url(connection)) as conn:
            store.land(conn, SLUG, batch.offers, batch.offers[0].observed_at)

    await land()
    body = (await api.get("/api/v1/providers")).json()
    mine = next(p for p in body["items"] if p["slug"] == SLUG)
    assert (mine["source"], mine["source_url"], mine["as_of"]) == ("list", "https://example.com/prices", published.isoformat())
    assert mine["cadence_seconds"] == 86400 and mine["stale"] is stale
    assert (mine["stale_reason"] or "").startswith(f"price list of {published:%Y-%m-%d}") is stale


def _url(connection) -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


async def test_the_page_and_dq_show_a_lists_date_and_its_staleness(listed, api):
    published = (datetime.now(timezone.utc) - timedelta(days=45)).date()
    listed(published.isoformat())
    batch = ExampleListHook().fetch_batch()

    @sync_to_async
    def land_and_report() -> None:
        from django.db import connection

        from gpubroker import quality

        with store.connect(_url(connection)) as conn:
            store.land(conn, SLUG, batch.offers, batch.offers[0].observed_at)
            quality.record(conn, quality.GateReport(
                provider=SLUG, observed_at=batch.offers[0].observed_at, outcome="landed", items=1, rows_in=1,
                rows_landed=1, rows_dropped=0, baseline_rows=1, baseline_source="first"))  # fmt: skip

    await land_and_report()
    page = (await api.get("/")).text
    assert f"price list of {published:%Y-%m-%d}" in page
    dq = (await api.get("/dq/")).text
    row = dq[dq.index(f'id="dq-{SLUG}"'):]
    row = row[: row.index("</tr>")]
    assert f"price list of {published:%Y-%m-%d}" in row and "data-stale" in row  # 45 days: flagged stale
