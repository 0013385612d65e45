"""The sync DAGs as Airflow parses them: one per vendor on its cadence, and the one manual sync of any vendor."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag

from gpubroker.vendors import VENDORS
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
    assert {t.task_id for t in manual.tasks} == {"providers", "sync_providers", "refresh_cache", "announce_quarantines"}
