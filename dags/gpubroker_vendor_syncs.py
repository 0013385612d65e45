"""
### One sync per vendor, on the vendor's cadence

`gpubroker_sync_<vendor>`: one DAG per vendor of the vendor table (`gpubroker.vendors`), scheduled on
its cadence: marketplaces every 5 minutes, clouds and price pages hourly, dated lists daily, each at
its own minute (spread by slug, so the hour's syncs do not all start at once). A vendor's run is one
task, the same `SyncProviderOperator` as the full sync's: fetch -> normalise -> gate -> land or
quarantine. Its events leave as soon as the landing commits (the outbox relay, `gpubroker.relay`), so
nothing waits for another vendor, and a vendor's failures and retries delay only its own next run.
While the `vendor_api` pool is full, the waiting syncs take its slots in proportion to their vendors'
weights (healthier, faster vendors first more often; `gpubroker_provider.priority`).

To sync any vendor now, trigger **gpubroker_data_sync** (conf `{"providers": [...]}`): the one place
for manual syncs of one, several or all vendors.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from gpubroker.vendors import VENDORS, Vendor
from gpubroker_provider import sync
from gpubroker_provider.assets import QUARANTINES
from gpubroker_provider.operators import SyncProviderOperator
from gpubroker_provider.priority import sync_weight_rule

WEIGHT_RULE = sync_weight_rule()


def vendor_sync(row: Vendor) -> None:
    # a marketplace syncs again in 5 minutes: quick retries, and done (or given up) well before its next run
    frequent = row.cadence <= 300

    @dag(
        dag_id=f"gpubroker_sync_{row.slug}",
        schedule=row.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["gpubroker", "sync", f"every {row.cadence // 60} min" if row.cadence < 3600 else f"every {row.cadence // 3600} h"],
        doc_md=f"{__doc__}\n\n**{row.name}** (`{row.slug}`): {row.source} `{row.source_url}`, cron `{row.schedule}`.",
        default_args={
            "retries": 2,
            "retry_delay": timedelta(seconds=10 if frequent else 30),
            "execution_timeout": timedelta(minutes=1 if frequent else 10),
        },
    )
    def sync_vendor():
        landed = SyncProviderOperator(task_id="sync_provider", provider=row.slug, pool="vendor_api", weight_rule=WEIGHT_RULE)

        @task(trigger_rule="one_failed", outlets=[QUARANTINES])
        def announce_quarantine(dag_run=None) -> int:
            """Updates the QUARANTINES asset (the DQ report rebuilds) when the failed sync quarantined."""
            if not (count := sync.quarantines_since(dag_run.start_date)):
                raise AirflowSkipException("the sync failed without quarantining a batch")
            return count

        landed >> announce_quarantine()

    sync_vendor()


for vendor_row in VENDORS.values():
    vendor_sync(vendor_row)
