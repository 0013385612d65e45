"""Operators of the GPUBroker provider: what the DAGs run, one provider per task instance."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from gpubroker_provider import sync


class SyncProviderOperator(BaseOperator):
    """Sync one provider end to end: fetch its listing (circuit breaker; API key from Vault, else its
    Airflow connection), normalise, gate (Great Expectations), land or quarantine.

    Returns (XCom) the sync's summary: counts, where the key came from, seconds per stage; never the
    offers. A quarantined batch fails the task at once: retrying cannot make bad data good. The DAG
    run's id (read from the task context, whichever DAG runs it) names the gate's validation in the
    Great Expectations Data Docs.

    :param provider: the vendor's slug, e.g. ``"vastai"``.
    :param approve_quarantine: id of a quarantined batch of this provider to land first (its
        operator's approval), or None.
    """

    template_fields = ("provider",)
    ui_color = "#d6eaf8"

    def __init__(self, *, provider: str, approve_quarantine: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.provider = provider
        self.approve_quarantine = approve_quarantine

    def execute(self, context: Any) -> dict:
        try:
            summary = sync.sync_provider(self.provider, self.approve_quarantine, run_id=context["run_id"])
        except sync.BatchQuarantined as refused:
            raise AirflowFailException(str(refused)) from None
        if summary["unknown_gpus"]:
            self.log.warning("%s: GPU names not in the registry: %s", self.provider, summary["unknown_gpus"])
        return summary


class SyncProvidersOperator(BaseOperator):
    """Sync several providers in one task, one after another (`sync.sync_providers`): a manual sync of
    every vendor as one wave of task processes. A retry syncs only the providers that did not settle.

    :param providers: the vendors' slugs, e.g. ``["vastai", "lambda"]``.
    :param approvals: quarantined batches to land first, by provider, e.g. ``{"vastai": 12}``.
    """

    template_fields = ("providers",)
    ui_color = "#d6eaf8"

    def __init__(self, *, providers: list[str], approvals: dict[str, int] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.providers = providers
        self.approvals = approvals or {}

    def execute(self, context: Any) -> dict:
        try:
            return sync.sync_providers(self.providers, context["run_id"], context["dag_run"].start_date, self.approvals)
        except sync.BatchQuarantined as refused:
            raise AirflowFailException(str(refused)) from None
