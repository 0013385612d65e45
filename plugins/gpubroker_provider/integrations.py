"""Provider integrations, the pipeline's side: check an owner's vendor key, keep it in Vault, sync with it.

An owner is an API key (its id); its credential for a vendor is a KV-v2 secret `{"api_key": ...}` at
`gpubroker/users/{owner}/providers/{provider}` (`hooks.vault`), and the table `integrations` keeps the
rest (`gpubroker.integrations`).

- `check_key`: one real call with the key, the vendor hook's probe (its listing's first page, 5 s
  timeout, 2 attempts), judged `ok`, `invalid` or `unreachable` (`gpubroker.integrations.Status`).
  The call goes through the vendor's circuit breaker: refused while it is open, and counted by it as a
  failure only when the vendor did not answer (transport error, timeout, 5xx or 429); a refused key
  is the vendor answering, so owners' bad keys never open the breaker for everyone. An owner's own
  `api_url` (a proxy, a regional endpoint) is not the vendor's API: it neither asks nor feeds the
  vendor's breaker, and it is refused when it resolves to an internal address the owner has not had
  allow-listed (`gpubroker.webhooks.pin`, the allow-list of the owner's webhooks).
- `run(action, request)`: what the webapp asks (`add`: check, then store unless the vendor refused the
  key; `test`: check the stored key and record the result; `delete`: remove it from Vault).
- `sync_integration(owner, provider)`: the vendor's listing fetched with the owner's key (Vault, or
  the shared cache up to an hour old while Vault is down; never the pipeline's key), parsed by the
  vendor's hook, landed in `owned_offers` (`store.land_owned`), the result recorded on the integration.
  No staging and no Great Expectations gate: both judge the public catalogue's batches per provider.

`python -m gpubroker_provider.integrations add|test|delete` reads a `gpubroker.integrations.Request`
as JSON on stdin and prints an `Outcome` as the last line on stdout: the webapp's way in, so that no
web worker imports Airflow. `... store-pipeline-keys` puts each vendor connection's key in Vault as
the pipeline's own (`store_pipeline_keys`; the deployments run it once Vault is up), so that syncs
read vendor keys through Vault.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
from pydantic import ValidationError

from gpubroker import settings, store, webhooks
from gpubroker.breaker import Breaker, CircuitOpen
from gpubroker.integrations import Action, IntegrationStatus, Outcome, Request, Status, record, redact
from gpubroker_provider.hooks.base import PayloadError, VendorError, VendorHook
from gpubroker_provider.hooks.vault import (
    CredentialNotFound,
    CredentialsVaultError,
    VaultAccessDenied,
    VaultNotConfigured,
    owner_api_key,
    vault_hook,
)
from gpubroker_provider.vendors import VENDORS, hook_class, vendor

CHECK_ATTEMPTS = 2
_REFUSED_KEY = (401, 403)


class IntegrationNotFound(LookupError):
    """The owner (an API key not revoked) has no integration with this provider."""


def check_key(provider: str, api_key: str, api_url: str | None = None, allowed_hosts=frozenset()) -> IntegrationStatus:
    """One real call to the vendor with `api_key` (its listing's first page), judged."""
    return _attempt(provider, api_key, api_url, allowed_hosts, lambda hook, client: next(iter(hook.fetch_pages(client)), None),
                    max_attempts=CHECK_ATTEMPTS)[1]  # fmt: skip


def _attempt(provider: str, api_key: str, api_url: str | None, allowed_hosts, call: Callable[[VendorHook, httpx.Client], Any],
             max_attempts: int | None = None) -> tuple[Any, IntegrationStatus]:  # fmt: skip
    """`call(hook, client)` with the vendor's hook for this key and URL, under the vendor's breaker
    (only for the vendor's own API); its result (None when it failed) and the status it earned."""
    if not api_key:  # an empty key would make the hook fall back to the pipeline's own
        raise ValueError("an integration's API key must not be empty")
    if api_url is not None:
        try:
            webhooks.pin(api_url, allowed_hosts)
        except webhooks.HostUnresolved as unresolved:
            return None, _status(provider, Status.UNREACHABLE, _url_reason(unresolved))
        except webhooks.WebhookRefused as refused:
            return None, _status(provider, Status.INVALID, _url_reason(refused))
    hook = hook_class(provider)(base_url=api_url, api_key=api_key,
                                **({"max_attempts": max_attempts} if max_attempts else {}))  # fmt: skip
    breaker = Breaker(provider) if api_url is None else None
    try:
        ticket = breaker.admit() if breaker else None
    except CircuitOpen as refused:
        return None, _status(provider, Status.UNREACHABLE, str(refused))
    answers: list[int] = []
    started, result, failure = time.monotonic(), None, None
    try:
        with hook.client() as client:
            client.event_hooks = {"response": [lambda response: answers.append(response.status_code)]}
            result = call(hook, client)
    except (VendorError, PayloadError) as error:
        failure = error
    except Exception as error:  # a boundary that reports: whatever went wrong is the check's answer
        failure = VendorError(f"{provider}: {type(error).__name__}: {error}")
    status, message = _judged(answers, failure)
    if breaker:
        breaker.record(ticket, status != Status.UNREACHABLE, time.monotonic() - started)
    return result, _status(provider, status, redact(message, api_key))


def _judged(answers: list[int], failure: Exception | None) -> tuple[Status, str]:
    last = answers[-1] if answers else None
    if failure is None:
        return Status.OK, f"the vendor accepted the key (HTTP {last})" if last else "the vendor accepted the key"
    if last in _REFUSED_KEY:
        return Status.INVALID, f"the vendor refused the key (HTTP {last}): {failure}"
    if last is not None and 400 <= last < 500 and last != 429:
        return Status.INVALID, f"the vendor refused the request (HTTP {last}): {failure}"
    if isinstance(failure, PayloadError):
        return Status.INVALID, f"the answer is not the vendor's API: {failure}"
    return Status.UNREACHABLE, f"no usable answer from the vendor: {failure}"


def _status(provider: str, status: Status, message: str) -> IntegrationStatus:
    return IntegrationStatus(provider=provider, status=status, message=message, last_checked=datetime.now(timezone.utc))


def _url_reason(refused: webhooks.WebhookRefused) -> str:
    return "api_url refused: " + str(refused).replace("webhook ", "")


# --- what the webapp asks -------------------------------------------------------------------------
def run(action: Action, request: Request) -> Outcome:
    """One webapp action on one owner's integration (see the module docstring)."""
    owner, provider = request.owner, request.provider
    vendor(provider)  # UnknownProvider for a slug not in the table
    try:
        vault = vault_hook()  # no vendor call when there is no Vault to keep the key in
        if action == "delete":
            vault.delete(owner, provider)
            return Outcome()
        if action == "add":
            key = request.api_key.get_secret_value() if request.api_key else ""
            status = check_key(provider, key, request.api_url, set(request.allowed_hosts))
            if status.status == Status.INVALID:
                return Outcome(status=status)
            vault.store(owner, provider, {"api_key": key})
            return Outcome(status=status, stored=True)
        key = owner_api_key(owner, provider).api_key
        return Outcome(status=check_key(provider, key, request.api_url, set(request.allowed_hosts)), stored=True)
    except VaultNotConfigured as missing:
        return Outcome(failure="vault_not_configured", message=str(missing))
    except CredentialNotFound:
        return Outcome(failure="no_credential", message=f"no key for {provider} in Vault; add the integration again")
    except VaultAccessDenied as denied:
        return Outcome(failure="vault_refused", message=str(denied))
    except CredentialsVaultError as unavailable:  # VaultUnavailable, or an error Vault answered
        return Outcome(failure="vault_unavailable", message=str(unavailable))


# --- syncing with an owner's key ------------------------------------------------------------------
def sync_integration(owner: int, provider: str) -> dict:
    """Fetch the vendor's listing with the owner's key, land it as the owner's offers, and record the
    result on the integration; returns a summary (counts, where the key came from; never the key).
    IntegrationNotFound without such an integration; a CredentialsVaultError without a key in Vault."""
    with store.connect() as conn:
        found = conn.execute(
            "SELECT i.api_url FROM integrations i JOIN api_keys k ON k.id = i.key_id"
            " WHERE i.key_id = %s AND i.provider = %s AND k.revoked_at IS NULL", (owner, provider)).fetchone()  # fmt: skip
        if found is None:
            raise IntegrationNotFound(f"API key {owner} has no integration with {provider}")
        allowed = webhooks.allowed_hosts(conn, owner)
    key = owner_api_key(owner, provider)
    fetched_at = datetime.now(timezone.utc)
    pages, status = _attempt(provider, key.api_key, found[0], allowed, lambda hook, client: list(hook.fetch_pages(client)))
    with store.connect() as conn:
        if pages is None:
            record(conn, owner, status)
            raise VendorError(f"{provider} with the integration of API key {owner}: {status.status}: {status.message}")
        hook = hook_class(provider)()
        observed_at = hook.observed_at(pages, fetched_at)
        batch = hook.parse(pages, observed_at)
        landed = store.land_owned(conn, owner, provider, batch.offers, observed_at)
        record(conn, owner, status.model_copy(update={"message": f"{landed.offers} offers landed"}))
    return {"owner": owner, "provider": provider, "credentials": key.source, "observed_at": observed_at.isoformat(),
            "items": batch.items, "landed": landed.offers, "new": landed.new, "changed": landed.changed,
            "vanished": landed.vanished, "dropped": dict(batch.dropped)}  # fmt: skip


def check_owner(owner: int | str, provider: str) -> IntegrationStatus:
    """Check the key Vault holds for `owner` (an API key's id, or the pipeline's user) against the
    vendor; an API key's result is kept on its integration (and its URL and allow-list apply)."""
    key = owner_api_key(owner, provider).api_key
    if not str(owner).isdecimal():  # the pipeline's own key: the vendor's connection decides where to call
        return check_key(provider, key)
    with store.connect() as conn:
        found = conn.execute("SELECT api_url FROM integrations WHERE key_id = %s AND provider = %s",
                             (int(owner), provider)).fetchone()  # fmt: skip
        status = check_key(provider, key, found and found[0], webhooks.allowed_hosts(conn, int(owner)))
        record(conn, int(owner), status)
    return status


def keep_connection_key(owner: int | str, provider: str, source_conn_id: str | None = None,
                        rotate: bool = False) -> tuple[int | None, bool]:  # fmt: skip
    """Put the key of an Airflow connection (default: the vendor's own) in Vault as `owner`'s
    credential, unless Vault holds it already; (its version, whether a version was written). `rotate`:
    only replace an existing credential (check-and-set; CredentialNotFound when there is none)."""
    from airflow.sdk import BaseHook

    conn_id = source_conn_id or vendor(provider).default_conn_id
    key = BaseHook.get_connection(conn_id).password
    if not key:
        raise ValueError(f"connection {conn_id!r} has no password: it holds no key to keep in Vault")
    hook = vault_hook()
    try:
        current = hook.fetch(owner, provider)
    except CredentialNotFound:
        current = None
    if current is not None and current.data.get("api_key") == key:
        return current.version, False
    write = hook.rotate if rotate else hook.store
    return write(owner, provider, {"api_key": key}), True


def store_pipeline_keys() -> dict[str, int | None]:
    """Put each vendor connection's key in Vault as the pipeline's own (user `settings.VAULT_USER`),
    where Vault does not hold it yet, so that syncs read it through Vault; {provider: version written}.
    Vendors without a connection, or without a key in it, are left out."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    written = {}
    for slug in (s for s, row in VENDORS.items() if row.api_key_required):
        try:
            version, changed = keep_connection_key(settings.VAULT_USER, slug)
        except (AirflowNotFoundException, ValueError):  # no connection, or no key in it
            continue
        if changed:
            written[slug] = version
    return written


def main(argv: list[str] | None = None) -> int:
    """`add|test|delete`: a Request on stdin, its Outcome as the last line on stdout (exit 0); exit 2 on
    bad input. `store-pipeline-keys`: `store_pipeline_keys`, its answer as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["store-pipeline-keys"]:
        print(json.dumps(store_pipeline_keys()))
        return 0
    if len(args) != 1 or args[0] not in ("add", "test", "delete"):
        print("usage: python -m gpubroker_provider.integrations add|test|delete  (a Request as JSON on stdin)\n"
              "       python -m gpubroker_provider.integrations store-pipeline-keys", file=sys.stderr)  # fmt: skip
        return 2
    try:
        request = Request.model_validate_json(sys.stdin.read())
    except ValidationError as invalid:  # its errors without their input, which may be a key
        print(f"not a Request: {invalid.errors(include_input=False, include_url=False)}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # logs that go to stdout must not mix with the answer
        outcome = run(args[0], request)
    print(outcome.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
