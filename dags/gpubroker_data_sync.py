"""
### GPU offer sync: any vendors, now

**The one place to sync any vendor on demand** (UI "Trigger", or the REST API): conf
`{"providers": ["vastai"]}` (all of them by default). Scheduled syncs run per vendor, each on its own
cadence (`gpubroker_sync_<vendor>`: marketplaces every 5 minutes, clouds hourly, lists daily). Here the
vendors asked are split into at most 8 groups of about equal recent cost (`sync_providers`, mapped,
pool `vendor_api`: one wave), and each group's task syncs its vendors one after another, each end to
end: fetch under its circuit breaker (API key from Vault, else the vendor's Airflow connection), stage,
normalise to the offer schema, the Great Expectations gate, and land what passes in PostgreSQL in one
transaction. Each landing's `offer_observed` events leave for `gpubroker.price-updates` as soon as it
commits (the outbox relay, woken by PostgreSQL NOTIFY), and `refresh_cache` then warms the webapp's
cache. Every gate run is kept in `gate_reports` (rows in, landed, dropped by reason).

**The gate never locks a provider out.** Rows failing a row-level expectation are dropped with a
reason and the rest lands, unless a rule's `mostly` is passed; a batch-level check (row count
against the baseline, unique offer ids) failing refuses the batch: it is **quarantined** (raw
payload, offers and failed expectations kept; table `quarantine`), the provider's last good data
stays served and is marked stale, a `quarantine` message goes to `gpubroker.provider-events`, and
its task fails red while the other providers land. The baseline is re-established after 3
quarantines in a row; an operator can also land a quarantined batch at once: conf
`{"approve_quarantine": ID}` (or `gpubroker quarantine approve ID`).

**Why groups, and why a vendor's failure delays no other.** A task process costs its start-up, the
scheduler's hops and the execution API's calls: with 50 vendors that overhead, one process each, is
most of a full sync on 2 cores. A group's task syncs every vendor of it whatever one of them does,
then fails naming each that failed; its retry syncs only those (the others settled: a gate report
since the run started), and a quarantined batch is never retried. What another process may read
later (a quarantined batch) is named by its staging URL, never a local path. Airflow's workers import
Great Expectations, pandas and the client libraries once, before they fork task processes
(`gpubroker_provider.preload`). bench/sync.py times the run as a user sees it, from the REST trigger.
Events go through a transactional outbox: if Kafka is down they wait and go out once it is back.

**An owner's integration**: conf `{"integration": {"owner": <API key id>, "provider": "vastai"}}` syncs
only that: the vendor's listing fetched with the owner's own key from Vault (an hour's cached copy
while Vault is down; never the pipeline's key), landed as that owner's offers, which only that key
sees, beside the public ones (`GET /api/v1/integrations/offers`). `gpubroker_integrations` does it
daily for every integration.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from gpubroker.vendors import VENDORS
from gpubroker_provider import integrations, sync
from gpubroker_provider.assets import QUARANTINES
from gpubroker_provider.operators import SyncProvidersOperator


@dag(
    schedule=None,  # scheduled syncs: one DAG per vendor, on its cadence (gpubroker_vendor_syncs.py)
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "sync", "manual"],
    doc_md=__doc__,
    params={
        "providers": Param(
            sorted(VENDORS),
            type="array",
            items={"type": "string", "enum": sorted(VENDORS)},
            minItems=1,
            description="Providers to sync (slugs).",
        ),
        "approve_quarantine": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Id of a quarantined batch (gpubroker quarantine list) to land before its provider syncs; "
            "resets that provider's baseline.",
        ),
        "integration": Param(
            None,
            type=["null", "object"],
            properties={"owner": {"type": "integer", "minimum": 1},
                        "provider": {"type": "string", "enum": sorted(s for s, v in VENDORS.items() if v.api_key_required)}},
            required=["owner", "provider"],
            additionalProperties=False,
            description="Sync only this owner's integration (API key id, provider) with the owner's key from Vault; "
            "its offers are seen by that key alone.",
        ),  # fmt: skip
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=10)},
)
def gpubroker_data_sync():
    @task
    def providers(params: dict | None = None) -> list[dict]:
        if params.get("integration"):
            return []  # only the owner's integration is synced (sync_integration)
        return sync.plan(list(params["providers"]), params.get("approve_quarantine"))

    @task(pool="vendor_api")
    def sync_integration(params: dict | None = None) -> dict:
        if not (wanted := params.get("integration")):
            raise AirflowSkipException("no integration in the conf")
        return integrations.sync_integration(wanted["owner"], wanted["provider"])

    landed = SyncProvidersOperator.partial(
        task_id="sync_providers", pool="vendor_api", map_index_template="{{ task.providers | join(', ') }}"
    ).expand_kwargs(providers())
    sync_integration()

    @task(trigger_rule="all_done")  # each landing already retired the old answers: warm the new ones
    def refresh_cache() -> dict[str, int]:
        return sync.refresh_cache()

    @task(trigger_rule="all_done", outlets=[QUARANTINES])
    def announce_quarantines(dag_run=None) -> int:
        """Updates the QUARANTINES asset (so the DQ report rebuilds) only if this run quarantined."""
        count = sync.quarantines_since(dag_run.start_date)
        if not count:
            raise AirflowSkipException("no batch quarantined in this run")
        return count

    landed >> refresh_cache()
    landed >> announce_quarantines()


gpubroker_data_sync()
