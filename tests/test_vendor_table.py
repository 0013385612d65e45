"""The vendor table (gpubroker.vendors): sources, cadences and the schedule each vendor's sync DAG runs on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.vendors import CADENCE, VENDORS

MARKETPLACES = {"vastai", "runpod", "tensordock", "lium", "akash"}  # the examples among today's vendors
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(timezone.utc))


def test_every_vendor_says_how_and_how_often_its_prices_are_read():
    for row in VENDORS.values():
        assert row.source in ("api", "page", "list") and row.source_url.startswith("https://"), row.slug
        assert row.cadence == (CADENCE["list"] if row.source == "list" else CADENCE[row.kind]), row.slug
    assert {s for s, v in VENDORS.items() if v.kind == "marketplace"} >= MARKETPLACES
    assert all(VENDORS[s].cadence <= 300 for s in MARKETPLACES)
    assert VENDORS["aws"].cadence == 3600 and VENDORS["crusoe"].source == "page"


@given(moment=instants)
def test_next_sync_is_the_next_time_the_vendors_cron_schedule_fires(moment):
    for row in VENDORS.values():
        expected = croniter(row.schedule, moment).get_next(datetime)
        assert row.next_sync_after(moment) == expected, (row.slug, row.schedule)
        assert moment < row.next_sync_after(moment) <= moment + timedelta(seconds=row.cadence)


def test_the_hours_syncs_are_spread_over_the_hour():
    hourly = [row.offset // 60 for row in VENDORS.values() if row.cadence == 3600]
    assert len(set(hourly)) >= len(hourly) // 2, hourly  # not all at :00
