"""
### Provider health checks

Every minute: probe each provider with its cheapest call (its listing's first page), in parallel
threads of one task. Status (`healthy` / `degraded`: slow > 2 s or failing calls / `down`) and
latency go to Redis (`gpubroker:health`, current) and PostgreSQL (`provider_health`, history);
every probe feeds the provider's circuit breaker and weight. A `health_update` message goes to
`gpubroker.provider-events` only when a provider's status changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from gpubroker.vendors import VENDORS
from gpubroker_provider import sync


@dag(
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gpubroker", "health"],
    doc_md=__doc__,
    params={
        "providers": Param(
            sorted(VENDORS), type="array", items={"type": "string", "enum": sorted(VENDORS)}, minItems=1,
            description="Providers to probe (slugs).",
        )  # fmt: skip
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10), "execution_timeout": timedelta(seconds=50)},
)
def gpubroker_health_checks():
    @task
    def probe_providers(params: dict | None = None) -> dict:
        return sync.check_health(list(params["providers"]))

    @task
    def publish(_: dict) -> int:
        return sync.publish()

    publish(probe_providers())


gpubroker_health_checks()
