"""
### Cache warming

Every 5 minutes: precompute the hot queries — offers per provider, offers per GPU model, cheapest
offer per GPU per region, the GPU registry — into Redis with the seed's TTLs (pricing 60 s,
static 300 s). Each run writes a new version and switches readers to it in one transaction, so a
reader never sees a half-written set (`gpubroker.cache`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from gpubroker_provider import sync


@dag(
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "cache"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15), "execution_timeout": timedelta(minutes=2)},
)
def gpubroker_cache_warming():
    @task
    def warm() -> int:
        return sync.refresh_cache()

    warm()


gpubroker_cache_warming()
