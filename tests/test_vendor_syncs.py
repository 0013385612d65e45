"""The sync DAGs as Airflow parses them: one per vendor on its cadence, and the one manual sync of any
vendor; for any vendor table (Hypothesis), the DAGs the scheduler holds and the runs it schedules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import DataInterval, TimeRestriction
from hypothesis import given, settings
from hypothesis import strategies as st
from pendulum import instance

from gpubroker import vendors
from gpubroker.vendors import VENDORS, Vendor
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dags() -> DagBag:
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_each_vendor_syncs_on_its_own_cadence_in_a_dag_of_its_own(dags):
    ids = {dag_id for dag_id in dags.dags if dag_id.startswith("gpubroker_sync_")}
    assert ids == {f"gpubroker_sync_{slug}" for slug in VENDORS}
    for slug, row in VENDORS.items():
        dag = dags.dags[f"gpubroker_sync_{slug}"]
        assert dag.schedule == row.schedule, slug  # the table's cadence, at the vendor's minute
        assert (dag.max_active_runs, dag.catchup) == (1, False)
        sync = dag.get_task("sync_provider")
        assert (sync.provider, sync.pool) == (slug, "vendor_api")
        assert sync.execution_timeout.total_seconds() < row.cadence  # a hung run never eats the next one
        announce = dag.get_task("announce_quarantine")
        assert announce.trigger_rule == "one_failed"  # no task process at all when the sync succeeds


def test_marketplaces_sync_every_five_minutes_clouds_hourly_lists_daily(dags):
    def every(slug: str) -> str:
        return dags.dags[f"gpubroker_sync_{slug}"].schedule

    assert every("vastai").endswith("/5 * * * *") and every("runpod").endswith("/5 * * * *")
    assert every("aws").endswith(" * * * *") and "/" not in every("aws")
    lists = [s for s, v in VENDORS.items() if v.source == "list"]
    assert all(every(s).endswith(" * * *") and every(s).split()[1] != "*" for s in lists)


def test_any_vendor_can_be_synced_now_from_one_manual_dag(dags):
    manual = dags.dags["gpubroker_data_sync"]
    assert manual.schedule is None and not manual.timetable.can_be_scheduled  # triggered, never scheduled
    assert manual.params["providers"] == sorted(VENDORS)
    assert {t.task_id for t in manual.tasks} == {"providers", "sync_providers", "sync_integration", "refresh_cache",
                                                 "announce_quarantines"}  # fmt: skip


# --- property: any vendor table gives the DAGs and the runs it says ---------------------------------

HOOK = "gpubroker_provider.hooks.page.PageHook"  # any: parsing a DAG imports no hook

vendor_rows = st.builds(
    lambda slug, kind, source, auth: Vendor(slug, slug.title(), f"https://{slug}.example", HOOK, "GET /pricing", auth,
                                            source, kind),  # fmt: skip
    slug=st.from_regex(r"[a-z][a-z0-9]{1,15}", fullmatch=True),
    kind=st.sampled_from(["marketplace", "cloud"]),
    source=st.sampled_from(["api", "page", "list"]),
    auth=st.sampled_from(["none", "Authorization: Bearer <key>"]),
)
tables = st.lists(vendor_rows, min_size=1, max_size=8, unique_by=lambda v: v.slug).map(
    lambda rows: {v.slug: v for v in rows})
moments = st.datetimes(datetime(2026, 1, 1), datetime(2036, 1, 1), timezones=st.just(timezone.utc))


def scheduled(table: dict[str, Vendor], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The sync DAGs parsed from dags/ with `table` as the vendor table, as the scheduler holds them
    (serialized and read back), by DAG id."""
    monkeypatch.setattr(vendors, "VENDORS", table)
    found = {}
    for name in ("gpubroker_vendor_syncs.py", "gpubroker_data_sync.py"):
        bag = DagBag(dag_folder=str(ROOT / "dags" / name))
        assert not bag.import_errors, bag.import_errors
        found |= {dag_id: DagSerialization.from_dict(DagSerialization.to_dict(dag)) for dag_id, dag in bag.dags.items()}
    return found


def runs_after(dag, moment: datetime, count: int) -> list[datetime]:
    """The next `count` runs the scheduler makes of `dag` after a run at `moment` (its timetable)."""
    runs, last, unrestricted = [], instance(moment), TimeRestriction(earliest=None, latest=None, catchup=True)
    for _ in range(count):
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=DataInterval(last, last), restriction=unrestricted)
        runs.append(last := info.run_after)
    return runs


@settings(max_examples=100, deadline=None)
@given(table=tables, moment=moments)
def test_any_vendor_table_gives_one_sync_dag_per_vendor_that_runs_on_its_cadence_and_ends_before_the_next(table, moment):
    """**Feature: provider-api-gateway, Property 17: Airflow DAG Execution** — for any vendor table, the
    DAG files parse into exactly one sync DAG per vendor, as the scheduler holds them: the sync task, then
    the quarantine announcement only if it failed; its retries, all tries ended before the vendor's next
    run; runs scheduled at the vendor's minute, one cadence apart (`Vendor.next_sync_after`, what the API
    shows); and the manual sync offers exactly the table's vendors (integrations: those taking a key)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dags = scheduled(table, monkeypatch)
    assert set(dags) == {f"gpubroker_sync_{slug}" for slug in table} | {"gpubroker_data_sync"}
    for slug, row in table.items():
        dag = dags[f"gpubroker_sync_{slug}"]
        assert {t.task_id for t in dag.tasks} == {"sync_provider", "announce_quarantine"}
        sync, announce = dag.get_task("sync_provider"), dag.get_task("announce_quarantine")
        assert sync.downstream_task_ids == {"announce_quarantine"} and announce.upstream_task_ids == {"sync_provider"}
        assert announce.trigger_rule == "one_failed" and (sync.provider, sync.pool) == (slug, "vendor_api")
        assert (dag.max_active_runs, dag.catchup, sync.retries) == (1, False, 2)
        tries = (sync.retries + 1) * sync.execution_timeout + sync.retries * sync.retry_delay
        assert tries < timedelta(seconds=row.cadence)  # every try of a run ends before the next run starts
        first, *later = runs_after(dag, moment, 3)
        assert first == row.next_sync_after(moment) and moment < first <= moment + timedelta(seconds=row.cadence)
        assert [b - a for a, b in zip([first, *later], later)] == [timedelta(seconds=row.cadence)] * 2
        assert (first.minute * 60 + first.hour * 3600) % row.cadence == row.offset % row.cadence
    manual = dags["gpubroker_data_sync"]
    assert manual.params["providers"] == sorted(table) == manual.params.get_param("providers").schema["items"]["enum"]
    integration = manual.params.get_param("integration").schema["properties"]["provider"]["enum"]
    assert integration == sorted(slug for slug, row in table.items() if row.api_key_required)
