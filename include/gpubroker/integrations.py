"""Provider integrations: an API key's own vendor credentials, and what their last check found.

The credential itself lives only in Vault, at `gpubroker/users/{key id}/providers/{provider}`
(`gpubroker_provider.hooks.vault`); the table `integrations` (webapp/integrations/models.py) keeps
what may be shown: provider, optional API URL, and the last check's `IntegrationStatus`.

A check makes one real call to the vendor with the key (`gpubroker_provider.integrations.check_key`):
- `ok`: the vendor answered with its listing;
- `invalid`: the vendor refused the key (HTTP 401/403), answered another client error, or the URL
  does not serve the vendor's API (not its format);
- `unreachable`: no answer, a server error of the vendor's, or its circuit breaker open.

The webapp asks the provider package for checks and Vault writes through a process boundary (it never
imports the provider package): `python -m gpubroker_provider.integrations ACTION` reads a `Request`
as JSON on stdin (the key travels only there, never in argv or the environment) and prints an
`Outcome`. Messages never carry the key: `redact` removes it from any text that could hold it.
"""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum
from typing import Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gpubroker import settings

__all__ = ["Action", "IntegrationStatus", "Outcome", "Request", "Status", "listed", "record", "redact", "vault_configured"]

Action = Literal["add", "test", "delete"]


class Status(StrEnum):
    OK = "ok"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"


class IntegrationStatus(BaseModel):
    """What the last check of an integration found (the API's IntegrationStatus)."""

    provider: str
    status: Status
    message: str = Field(description="what the vendor answered, in words (never the key)")
    last_checked: datetime


class Request(BaseModel):
    """One action on one owner's integration, as the webapp hands it to the provider package.

    `add`: check `api_key`, and store it in Vault unless the vendor refused it; `test`: check the key
    Vault holds; `delete`: remove it from Vault. `allowed_hosts`: hosts the owner may point `api_url`
    at although internal (the owner's allow-list)."""

    model_config = ConfigDict(extra="forbid")

    owner: int = Field(ge=1)
    provider: str
    api_key: SecretStr | None = None
    api_url: str | None = None
    allowed_hosts: list[str] = []


class Outcome(BaseModel):
    """What an action did: the check's status (None when no check ran), whether the key is now in
    Vault, and a `failure` of GPUBroker's own (no Vault configured, Vault unavailable or refusing, no
    stored key) in words."""

    status: IntegrationStatus | None = None
    stored: bool = False
    failure: Literal["vault_not_configured", "vault_unavailable", "vault_refused", "no_credential"] | None = None
    message: str = ""


def vault_configured() -> bool:
    """Whether this process is given the Vault connection (`AIRFLOW_CONN_<settings.VAULT_CONN_ID>` in
    its environment, as both deployments give it to the webapp): without it no key can be kept, and
    the webapp says so at once instead of asking the provider package."""
    return bool(os.environ.get(f"AIRFLOW_CONN_{settings.VAULT_CONN_ID.upper()}"))


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret` in it."""
    return text.replace(secret, "***") if secret else text


def record(conn: psycopg.Connection, owner: int, status: IntegrationStatus) -> bool:
    """Keep a check's result on the owner's integration; False when it has none for that provider."""
    updated = conn.execute(
        "UPDATE integrations SET status = %s, message = %s, last_checked = %s WHERE key_id = %s AND provider = %s",
        (status.status.value, status.message, status.last_checked, owner, status.provider),
    )
    return updated.rowcount > 0


def listed(conn: psycopg.Connection) -> list[dict]:
    """Every integration of a key not revoked: {owner, provider, api_url}, by owner then provider."""
    rows = conn.execute(
        "SELECT i.key_id, i.provider, i.api_url FROM integrations i JOIN api_keys k ON k.id = i.key_id"
        " WHERE k.revoked_at IS NULL ORDER BY i.key_id, i.provider"
    ).fetchall()
    return [{"owner": owner, "provider": provider, "api_url": api_url} for owner, provider, api_url in rows]
