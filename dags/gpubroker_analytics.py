"""
### Daily analytics

Daily at 00:15 UTC (after the day's last syncs, and the stream's last windows of it), and on demand:
write the report of one UTC day into PostgreSQL (`daily_gpu_prices`, `daily_provider_stats`) — the
cheapest and median price per GPU model with their 1-day and 7-day change, the biggest movers, each
provider's availability (share of its offer observations available or limited) and reliability (share
of health checks healthy, of syncs landed), and the anomalies the stream flagged. Definitions:
`gpubroker.daily`. Served at `GET /api/v1/analytics/daily?date=` and the page `/analytics/daily`.

By default a run reports on the day before it runs; trigger with `{"date": "YYYY-MM-DD"}` for another
day. Re-running a day replaces its report.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from gpubroker_provider import sync


@dag(
    schedule="15 0 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "analytics"],
    doc_md=__doc__,
    params={
        "date": Param(
            None, type=["null", "string"], pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            description="The UTC day to report on (YYYY-MM-DD); empty: the day before the run.",
        )  # fmt: skip
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "execution_timeout": timedelta(minutes=10)},
)
def gpubroker_analytics():
    @task
    def daily_report(params: dict | None = None, dag_run=None) -> dict:
        return sync.daily_report(params.get("date"), dag_run.run_after)

    daily_report()


gpubroker_analytics()
