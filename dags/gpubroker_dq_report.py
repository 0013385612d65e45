"""
### Data-quality report

Daily, and after any sync run that quarantined a batch (asset `gpubroker://quarantine`): rebuild the
Great Expectations Data Docs from every stored validation result of the sync's gate (the last 7
days'). The webapp serves them at `/dq/docs/`, linked from `/dq/` (and the Airflow UI's Browse menu):
a quarantined batch shows there with its failing expectations and sample values. Each validation is
named by its provider (asset `<provider>`, batch `offer_batches-<provider>`) and by the run id of the
sync that ran the gate (its run name), and `/dq/` links each provider's row to its validations.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from gpubroker_provider import sync
from gpubroker_provider.assets import QUARANTINES


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[QUARANTINES]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "data-quality"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=10)},
)
def gpubroker_dq_report():
    @task
    def build_data_docs() -> str:
        return sync.build_dq_report()

    build_data_docs()


gpubroker_dq_report()
