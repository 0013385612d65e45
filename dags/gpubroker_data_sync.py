"""
### GPU offer sync

Every hour, and on demand: for each provider (one mapped task each, in parallel) fetch the
vendor's listing under its circuit breaker and normalise it to the offer schema
(`FetchOffersOperator`), validate it with the Great Expectations gate, land it in PostgreSQL in
one transaction, then publish one `price_update` event per changed price to
`gpubroker.price-updates`, and warm the webapp's cache (each landing makes its data visible at once).

A batch the gate refuses is **quarantined** (raw payload, offers and failed expectations kept;
table `quarantine`): nothing of it lands, the provider's last good data stays served and is marked
stale, and a `quarantine` message on `gpubroker.provider-events` says why. Its task fails (red), the
other providers land.

**Run it for some providers only:** trigger with conf `{"providers": ["vastai"]}`.
Events go through a transactional outbox: if Kafka is down they wait and go out on the next run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from gpubroker_provider import sync
from gpubroker_provider.assets import QUARANTINES
from gpubroker_provider.operators import FetchOffersOperator
from gpubroker_provider.vendors import VENDORS


@dag(
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "sync"],
    doc_md=__doc__,
    params={
        "providers": Param(
            sorted(VENDORS),
            type="array",
            items={"type": "string", "enum": sorted(VENDORS)},
            minItems=1,
            description="Providers to sync (slugs).",
        )
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=10)},
)
def gpubroker_data_sync():
    @task
    def providers(params: dict | None = None) -> list[str]:
        return list(params["providers"])

    @task
    def gate_and_land(summary: dict) -> dict:
        try:
            return sync.gate_and_land(summary)
        except sync.BatchQuarantined as refused:
            raise AirflowFailException(str(refused)) from None  # retrying cannot make bad data good

    @task(trigger_rule="all_done")  # what landed is published even if another provider failed
    def publish() -> int:
        return sync.publish()

    @task(trigger_rule="all_done")  # each landing already retired the old answers: warm the new ones
    def refresh_cache() -> dict[str, int]:
        return sync.refresh_cache()

    @task_group
    def sync_provider(provider: str) -> None:
        """One provider end to end: its landing waits for its own fetch only, never another vendor's."""
        fetched = FetchOffersOperator(task_id="fetch_offers", provider=provider, pool="vendor_api")
        gate_and_land(fetched.output)

    landed = sync_provider.expand(provider=providers())

    @task(trigger_rule="all_done", outlets=[QUARANTINES])
    def announce_quarantines(dag_run=None) -> int:
        """Updates the QUARANTINES asset (so the DQ report rebuilds) only if this run quarantined."""
        count = sync.quarantines_since(dag_run.start_date)
        if not count:
            raise AirflowSkipException("no batch quarantined in this run")
        return count

    landed >> publish() >> refresh_cache()
    landed >> announce_quarantines()


gpubroker_data_sync()
