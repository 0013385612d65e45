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


class VaultCredentialOperator(BaseOperator):
    """Keep a vendor key in Vault (`hooks.vault.CredentialsVaultHook`, KV v2 at
    `gpubroker/users/{owner}/providers/{provider}`), or check the key Vault holds against the vendor.

    - ``store``: write the key of the Airflow connection ``source_conn_id`` (default: the vendor's own)
      as the credential's newest version, unless Vault already holds that key;
    - ``rotate``: replace an existing credential with that key (check-and-set: a concurrent write
      fails the task instead of being overwritten); a missing credential fails it (store it first);
    - ``check``: one real call to the vendor with the key Vault holds (`integrations.check_key`,
      through the vendor's breaker); for an owner (an API key's id), the result is kept on its
      integration. The task fails when the key is invalid or Vault has none.

    Returns (XCom) what it did, never the key: ``{"owner", "provider", "version", "changed"}`` for
    store and rotate, the IntegrationStatus (``provider``, ``status``, ``message``, ``last_checked``)
    with ``owner`` for check.

    :param action: ``"store"``, ``"rotate"`` or ``"check"``.
    :param provider: the vendor's slug, e.g. ``"vastai"``.
    :param owner: whose credential: an API key's id (its integration), default the pipeline's own
        (`settings.VAULT_USER`).
    :param source_conn_id: the Airflow connection whose password is the key to store or rotate in.
    """

    template_fields = ("provider", "owner")
    ui_color = "#fdebd0"
    ACTIONS = ("store", "rotate", "check")

    def __init__(self, *, action: str, provider: str, owner: int | str | None = None,
                 source_conn_id: str | None = None, **kwargs: Any):  # fmt: skip
        super().__init__(**kwargs)
        if action not in self.ACTIONS:
            raise ValueError(f"action must be one of {', '.join(self.ACTIONS)}, not {action!r}")
        self.action, self.provider, self.owner, self.source_conn_id = action, provider, owner, source_conn_id

    def execute(self, context: Any) -> dict:
        from gpubroker import settings
        from gpubroker.integrations import Status
        from gpubroker_provider import integrations  # appended to a shared module: its imports stay as they were

        owner = self.owner if self.owner not in (None, "") else settings.VAULT_USER
        if self.action == "check":
            status = integrations.check_owner(owner, self.provider)
            if status.status == Status.INVALID:
                raise AirflowFailException(f"{self.provider} refused the key of {owner}: {status.message}")
            return {"owner": owner, **status.model_dump(mode="json")}
        version, changed = integrations.keep_connection_key(owner, self.provider, self.source_conn_id,
                                                            rotate=self.action == "rotate")  # fmt: skip
        return {"owner": owner, "provider": self.provider, "version": version, "changed": changed}
