"""
### Cache warming

Every 5 minutes: ask the webapp for the hot answers — the offer list, each GPU model's offers and
cheapest offer per region, provider status — so they sit in its shared Redis cache (L1) with the
seed's TTLs (pricing 60 s, static 300 s) before users ask. Answers are cached per data version,
which every landing bumps, so warming never serves old data (`gpubroker.cache`).
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
    def warm() -> dict[str, int]:
        return sync.refresh_cache()

    warm()


gpubroker_cache_warming()
