"""
### Provider integrations: check each one, then sync it (daily)

An integration is an API key's own credential for a vendor (`POST /api/v1/integrations`), kept in
Vault at `gpubroker/users/{key id}/providers/{provider}`. Every day, for each integration of a key
not revoked: **check** its key against the vendor (`VaultCredentialOperator`, action `check`: one
real call through the vendor's circuit breaker; the result is kept on the integration, and the owner
sees it in `GET /api/v1/integrations`), then **sync** each one the vendor accepted: its listing
fetched with the owner's key and landed as that owner's offers (`owned_offers`), which only that key
sees (`GET /api/v1/integrations/offers`). A key the vendor refuses fails its check (and is not synced);
the others go on.

To sync one integration now, trigger **gpubroker_data_sync** with conf
`{"integration": {"owner": <key id>, "provider": "<slug>"}}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from gpubroker import integrations, store
from gpubroker_provider import integrations as provider_integrations
from gpubroker_provider.operators import VaultCredentialOperator


@dag(
    schedule="40 4 * * *",  # daily, away from the lists' 03:MM syncs
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "integrations", "vault"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=10)},
)
def gpubroker_integrations():
    @task
    def integrations_of_keys() -> list[dict]:
        with store.connect() as conn:
            return [{"owner": i["owner"], "provider": i["provider"]} for i in integrations.listed(conn)]

    checked = VaultCredentialOperator.partial(task_id="check", action="check", pool="vendor_api").expand_kwargs(
        integrations_of_keys()
    )

    @task(trigger_rule="all_done")
    def accepted(checks: list[dict]) -> list[dict]:
        """The integrations whose key the vendor accepted today (a failed check left no result)."""
        return [{"owner": c["owner"], "provider": c["provider"]} for c in checks if c and c["status"] == "ok"]

    @task(pool="vendor_api")
    def sync(owner: int, provider: str) -> dict:
        return provider_integrations.sync_integration(owner, provider)

    sync.expand_kwargs(accepted(checked.output))


gpubroker_integrations()
