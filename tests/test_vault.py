"""`CredentialsVaultHook` over real HTTP: the official VaultHook and hvac against the KV-v2 test double.

No Vault server can be installed on our development/CI machines; `tests/vault_server.py` is a
KV-v2-compatible test server (not Vault) started in-process on a free port. The hook reaches it
through an ordinary Airflow connection given as an `AIRFLOW_CONN_*` environment variable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid

import httpx
import pytest
from airflow.providers.hashicorp.hooks.vault import VaultHook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker_provider.hooks.vault import (
    CredentialCache,
    CredentialConflict,
    CredentialNotFound,
    CredentialsVaultHook,
    InvalidCredentialPath,
    InvalidCredentials,
    VaultAccessDenied,
    VaultUnavailable,
)
from tests.vault_server import KvV2TestServer, serve

TOKEN = "s.gpubroker-test-root-token"
CONN_ID = "gpubroker_vault_test"
MINUTE = 60.0


def conn_json(url: str, token: str = TOKEN, **extra) -> str:
    """The JSON form of an Airflow connection for VaultHook: conn type "vault" means http://host:port."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "vault",
            "host": host,
            "port": int(port),
            "password": token,  # token auth: the connection's password is the Vault token
            "extra": {"auth_type": "token", "kv_engine_version": 2, "use_tls": False, **extra},
        }
    )


class Clock:
    """Injected monotonic clock, advanced by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Vault:
    def __init__(self, server: KvV2TestServer, url: str):
        self.server, self.url = server, url


@pytest.fixture(scope="session")
def vault_session():
    server = KvV2TestServer(tokens={TOKEN}, mounts=("secret", "kv"))
    with serve(server) as url:
        key = f"AIRFLOW_CONN_{CONN_ID.upper()}"
        old = os.environ.get(key)
        os.environ[key] = conn_json(url)
        try:
            yield Vault(server, url)
        finally:
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture
def vault(vault_session):
    vault_session.server.reset()
    yield vault_session
    vault_session.server.reset()


@pytest.fixture
def clock():
    return Clock()


def make_hook(clock: Clock | None = None, conn_id: str = CONN_ID, **kwargs) -> CredentialsVaultHook:
    # A fresh cache per hook, so tests never see each other's cached credentials.
    return CredentialsVaultHook(conn_id, clock=clock or Clock(), cache=CredentialCache(), **kwargs)


def user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def secret() -> str:
    return f"sk-live-{uuid.uuid4().hex}"


# --- store / read / rotate / delete --------------------------------------------------------------


def test_store_then_read(vault):
    hook, uid, key = make_hook(), user(), secret()
    assert hook.store(uid, "vastai", {"api_key": key}) == 1
    assert hook.read(uid, "vastai") == {"api_key": key}
    # A second hook (empty cache) reads the same value from the server.
    assert make_hook().read(uid, "vastai") == {"api_key": key}
    # Where it lives: the documented path under the "secret" mount, as KV v2 stores it.
    raw = VaultHook(CONN_ID).get_secret(f"gpubroker/users/{uid}/providers/vastai")
    assert raw == {"api_key": key}


def test_rotate_writes_version_2_and_read_returns_it(vault):
    hook, uid = make_hook(), user()
    old, new = secret(), secret()
    provider = "genesiscloud"
    hook.store(uid, provider, {"api_key": old})
    assert hook.rotate(uid, provider, {"api_key": new}) == 2
    assert hook.read(uid, provider) == {"api_key": new}
    meta = hook.metadata(uid, provider)
    assert meta["current_version"] == 2
    assert set(meta["versions"]) == {"1", "2"}
    assert all(v["deletion_time"] == "" and v["destroyed"] is False for v in meta["versions"].values())
    # Version 1 is still there, readable by version through the official hook.
    path = f"gpubroker/users/{uid}/providers/{provider}"
    assert VaultHook(CONN_ID).get_secret(path, secret_version=1) == {"api_key": old}


def test_rotate_without_a_stored_credential_is_not_found(vault):
    with pytest.raises(CredentialNotFound, match="store it first"):
        make_hook().rotate(user(), "vastai", {"api_key": secret()})


def test_rotate_loses_a_race_with_a_clear_conflict(vault, monkeypatch):
    hook, uid = make_hook(), user()
    hook.store(uid, "vastai", {"api_key": secret()})
    hook.store(uid, "vastai", {"api_key": secret()})  # someone else wrote version 2
    # The rotation read version 1 just before that write: check-and-set must refuse it.
    monkeypatch.setattr(hook, "get_secret_metadata", lambda path: {"data": {"current_version": 1}})
    late = secret()
    with pytest.raises(CredentialConflict, match="check-and-set") as err:
        hook.rotate(uid, "vastai", {"api_key": late})
    assert late not in str(err.value)
    assert make_hook().metadata(uid, "vastai")["current_version"] == 2


def test_delete_removes_every_version(vault):
    hook, uid = make_hook(), user()
    hook.store(uid, "vastai", {"api_key": secret()})
    hook.rotate(uid, "vastai", {"api_key": secret()})
    hook.delete(uid, "vastai")
    with pytest.raises(CredentialNotFound):
        hook.read(uid, "vastai")
    with pytest.raises(CredentialNotFound):
        hook.metadata(uid, "vastai")
    hook.delete(uid, "vastai")  # deleting again is not an error, as in Vault


def test_read_missing_credential(vault):
    with pytest.raises(CredentialNotFound, match=r"secret/gpubroker/users/.*/providers/vastai"):
        make_hook().read(user(), "vastai")


def test_mount_point_is_configurable(vault):
    uid, key = user(), secret()
    kv_hook = make_hook(mount_point="kv")
    assert kv_hook.mount_point == "kv"
    kv_hook.store(uid, "vastai", {"api_key": key})
    assert kv_hook.read(uid, "vastai") == {"api_key": key}
    with pytest.raises(CredentialNotFound):
        make_hook().read(uid, "vastai")  # default mount "secret" has nothing there
    assert ("POST", f"/v1/kv/data/gpubroker/users/{uid}/providers/vastai") in vault.server.requests


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_user",
    ["", ".", "..", "../admin", "a/b", "a b", "a%2fb", ".hidden", "-x", "x" * 129, "user\n"]
    + [None, -1, True, 1.5],
)
def test_invalid_user_id_is_rejected_before_any_request(vault, bad_user):
    hook = make_hook()
    for call in (
        lambda: hook.store(bad_user, "vastai", {"api_key": secret()}),
        lambda: hook.read(bad_user, "vastai"),
        lambda: hook.rotate(bad_user, "vastai", {"api_key": secret()}),
        lambda: hook.delete(bad_user, "vastai"),
    ):
        with pytest.raises(InvalidCredentialPath, match="invalid user_id"):
            call()
    assert vault.server.requests == []


@pytest.mark.parametrize("bad_provider", ["", "nope", "VASTAI", "vastai/../x", None, 3])
def test_unknown_provider_is_rejected_naming_the_known_slugs(vault, bad_provider):
    with pytest.raises(InvalidCredentialPath, match="unknown provider .*vastai"):
        make_hook().store(user(), bad_provider, {"api_key": secret()})
    assert vault.server.requests == []


def test_numeric_user_ids_are_accepted(vault):
    hook, key = make_hook(), secret()
    hook.store(42, "vastai", {"api_key": key})
    assert hook.read("42", "vastai") == {"api_key": key}


@pytest.mark.parametrize(
    "bad", [{}, None, "sk-live-abc", {"api_key": 123}, {"": "value-123"}, {1: "value-123"}]
)
def test_invalid_credentials_are_rejected(vault, bad):
    with pytest.raises(InvalidCredentials):
        make_hook().store(user(), "vastai", bad)
    assert vault.server.requests == []


# --- authentication --------------------------------------------------------------------------------


def test_bad_token_gives_a_clear_error_without_the_token(vault, monkeypatch):
    bad_token = "s.wrong-token-" + uuid.uuid4().hex
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VAULT_BADTOKEN", conn_json(vault.url, token=bad_token))
    hook = make_hook(conn_id="gpubroker_vault_badtoken")
    for call in (
        lambda: hook.read(user(), "vastai"),
        lambda: hook.store(user(), "vastai", {"api_key": secret()}),
    ):
        refused = "refused the token of connection 'gpubroker_vault_badtoken'"
        with pytest.raises(VaultAccessDenied, match=refused) as err:
            call()
        text = str(err.value)
        assert "permission denied" in text
        chain, exc = [], err.value
        while exc is not None:
            chain.append(f"{exc!s} {exc!r}")
            exc = exc.__cause__ or exc.__context__
        assert bad_token not in " ".join(chain)
    assert vault.server.requests  # the server was asked, and answered 403


def test_bad_token_is_not_treated_as_vault_down(vault, monkeypatch, clock):
    uid, key = user(), secret()
    cache = CredentialCache()
    CredentialsVaultHook(CONN_ID, clock=clock, cache=cache).store(uid, "vastai", {"api_key": key})
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VAULT_BADTOKEN", conn_json(vault.url, token="s.wrong"))
    with pytest.raises(VaultAccessDenied):
        CredentialsVaultHook("gpubroker_vault_badtoken", clock=clock, cache=cache).read(uid, "vastai")


# --- Vault unavailable: cache within the hour, then VaultUnavailable ------------------------------


def logged(caplog, capsys) -> str:
    """Everything logged so far: Airflow's hook logger is structlog (stdout) or stdlib (caplog)."""
    out, err = capsys.readouterr()
    return caplog.text + out + err


def test_sealed_vault_serves_cache_for_59_minutes_then_fails_at_61(vault, clock, caplog, capsys):
    hook, uid, key = make_hook(clock), user(), secret()
    hook.store(uid, "vastai", {"api_key": key})
    assert hook.read(uid, "vastai") == {"api_key": key}  # cached at t=0

    vault.server.sealed = True
    health = httpx.get(f"{vault.url}/v1/sys/health")
    assert health.status_code == 503 and health.json()["sealed"] is True
    clock.advance(59 * MINUTE)
    with caplog.at_level(logging.WARNING):
        assert hook.read(uid, "vastai") == {"api_key": key}
    text = logged(caplog, capsys)
    assert "serving the cached credential" in text
    assert f"gpubroker/users/{uid}/providers/vastai" in text
    assert key not in text

    clock.advance(2 * MINUTE)
    with pytest.raises(VaultUnavailable) as err:
        hook.read(uid, "vastai")
    text = str(err.value)
    assert f"secret/gpubroker/users/{uid}/providers/vastai" in text
    assert "61 min old" in text and "VaultDown" in text and "Vault is sealed" in text
    assert key not in text and key not in repr(err.value.__cause__)

    vault.server.sealed = False  # unsealed: fresh reads again, and the cache is refreshed
    assert hook.read(uid, "vastai") == {"api_key": key}


def test_stopped_vault_serves_cache_for_59_minutes_then_fails_at_61(monkeypatch, clock, caplog, capsys):
    server = KvV2TestServer(tokens={TOKEN})
    uid, key = user(), secret()
    with serve(server) as url:
        monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VAULT_STOPPED", conn_json(url))
        hook = make_hook(clock, conn_id="gpubroker_vault_stopped", timeout=2)
        hook.store(uid, "vastai", {"api_key": key})
        assert hook.read(uid, "vastai") == {"api_key": key}
    # The server is stopped: connection refused.
    clock.advance(59 * MINUTE)
    with caplog.at_level(logging.WARNING):
        assert hook.read(uid, "vastai") == {"api_key": key}
    text = logged(caplog, capsys)
    assert "serving the cached credential" in text and "ConnectionError" in text
    assert key not in text
    clock.advance(2 * MINUTE)
    with pytest.raises(VaultUnavailable, match="unreachable") as err:
        hook.read(uid, "vastai")
    assert f"gpubroker/users/{uid}/providers/vastai" in str(err.value)
    assert key not in str(err.value)
    # Writes are never "served from cache": they fail straight away.
    with pytest.raises(VaultUnavailable):
        hook.store(uid, "vastai", {"api_key": secret()})


def test_rotation_refreshes_the_cache_before_vault_goes_down(vault, clock):
    hook, uid, new = make_hook(clock), user(), secret()
    hook.store(uid, "vastai", {"api_key": secret()})
    hook.read(uid, "vastai")
    clock.advance(30 * MINUTE)
    hook.rotate(uid, "vastai", {"api_key": new})
    vault.server.sealed = True
    clock.advance(45 * MINUTE)  # 75 min after the read, 45 after the rotation
    assert hook.read(uid, "vastai") == {"api_key": new}


def test_never_cached_credential_with_vault_down_fails_immediately(vault, clock):
    hook, uid = make_hook(clock), user()
    vault.server.sealed = True
    with pytest.raises(VaultUnavailable, match="no cached credential") as err:
        hook.read(uid, "vastai")
    assert f"secret/gpubroker/users/{uid}/providers/vastai" in str(err.value)


def test_vault_down_is_not_hidden_for_a_different_user(vault, clock):
    hook, key = make_hook(clock), secret()
    owner = user()
    hook.store(owner, "vastai", {"api_key": key})
    vault.server.sealed = True
    with pytest.raises(VaultUnavailable):
        hook.read(user(), "vastai")


# --- secret masking -------------------------------------------------------------------------------


def _masker():
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    return _secrets_masker()


def _task_log_line(event: str) -> str:
    # The structlog processor Airflow's task logging runs on every line (airflow.sdk.log).
    from airflow.sdk.log import mask_logs

    return mask_logs(None, "info", {"event": event})["event"]


def test_values_read_are_registered_with_the_secret_masker(vault):
    uid, key, account = user(), secret(), f"acct-{uuid.uuid4().hex}"
    # Written by the plain VaultHook, so nothing of ours has seen (and masked) these values yet.
    VaultHook(CONN_ID).create_or_update_secret(
        f"gpubroker/users/{uid}/providers/vastai", {"api_key": key, "account_id": account}
    )
    assert _task_log_line(f"using {key}") == f"using {key}"

    creds = make_hook().read(uid, "vastai")
    assert creds == {"api_key": key, "account_id": account}
    patterns = _masker().patterns
    assert re.escape(key) in patterns and re.escape(account) in patterns  # not only "sensitive" key names
    assert _task_log_line(f"using {key} for {account}") == "using *** for ***"


def test_values_written_are_registered_before_the_request(vault):
    uid, key = user(), secret()
    vault.server.sealed = True  # the write fails, the value is masked anyway
    with pytest.raises(VaultUnavailable) as err:
        make_hook().store(uid, "vastai", {"api_key": key})
    assert key not in str(err.value)
    assert _task_log_line(f"key={key}") == "key=***"


def test_endpoints_exercised(vault):
    """Documents what VaultHook + hvac call on the server for this hook's operations."""
    hook, uid = make_hook(), user()
    hook.store(uid, "vastai", {"api_key": secret()})
    hook.rotate(uid, "vastai", {"api_key": secret()})
    hook.read(uid, "vastai")
    hook.delete(uid, "vastai")
    assert vault.server.endpoints() == {
        ("POST", "/v1/{mount}/data/{path}"),  # store, rotate (with options.cas)
        ("GET", "/v1/{mount}/metadata/{path}"),  # rotate: current version
        ("GET", "/v1/{mount}/data/{path}"),  # read
        ("GET", "/v1/auth/token/lookup-self"),  # delete: VaultHook.get_conn() checks the token
        ("DELETE", "/v1/{mount}/metadata/{path}"),  # delete
    }


# --- property: the last write wins, one version per write ------------------------------------------

values = st.text(max_size=40).map(lambda s: "gpb-prop-" + s)
operations = st.lists(st.tuples(st.sampled_from(["store", "rotate"]), values), min_size=1, max_size=14)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_read_returns_last_write_and_versions_count_writes(vault_session, ops):
    """**Feature: provider-api-gateway, Property 18: Vault Credential Retrieval** — for any sequence of
    stores and rotations, a read (through a fresh hook too) returns the last write, and Vault counts one
    version per write (keeping the newest 10); a rotation or read of nothing stored is CredentialNotFound."""
    hook, uid = make_hook(), user()
    writes, last = 0, None
    for op, value in ops:
        credentials = {"api_key": value, "note": f"write-{writes + 1}"}
        if op == "rotate" and writes == 0:
            with pytest.raises(CredentialNotFound):
                hook.rotate(uid, "vastai", credentials)
            continue
        version = getattr(hook, op)(uid, "vastai", credentials)
        writes += 1
        last = credentials
        assert version == writes
    if writes == 0:
        with pytest.raises(CredentialNotFound):
            hook.read(uid, "vastai")
        return
    assert hook.read(uid, "vastai") == last
    assert make_hook().read(uid, "vastai") == last  # from Vault, not from this hook's cache
    meta = hook.metadata(uid, "vastai")
    assert meta["current_version"] == writes
    # Like Vault, the KV-v2 mount keeps the newest 10 versions (max_versions default).
    assert len(meta["versions"]) == min(writes, 10)
    assert max(int(v) for v in meta["versions"]) == writes


steps = st.lists(st.tuples(st.sampled_from(["write", "read", "seal", "unseal"]), st.floats(0, 80 * MINUTE)),
                 min_size=1, max_size=12)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_a_read_is_vaults_latest_or_a_cached_copy_under_an_hour_old_or_a_clear_error(vault_session, steps):
    """**Feature: provider-api-gateway, Property 18: Vault Credential Retrieval** — with Vault serving, a
    read returns the latest write; with Vault sealed, the copy Vault last confirmed (read or written)
    while it is younger than an hour, else VaultUnavailable naming the path."""
    server, clock, uid = vault_session.server, Clock(), user()
    hook = make_hook(clock)
    latest, confirmed_at = None, None
    try:
        for n, (step, elapsed) in enumerate(steps):
            clock.advance(elapsed)
            if step in ("seal", "unseal"):
                server.sealed = step == "seal"
            elif step == "write" and not server.sealed:
                latest = {"api_key": f"gpb-retrieval-{n}"}
                hook.store(uid, "vastai", latest)
                confirmed_at = clock.now
            elif step == "write":
                with pytest.raises(VaultUnavailable):
                    hook.store(uid, "vastai", {"api_key": f"gpb-retrieval-{n}"})
            elif not server.sealed and latest is not None:
                assert hook.read(uid, "vastai") == latest
                confirmed_at = clock.now
            elif not server.sealed:
                with pytest.raises(CredentialNotFound):
                    hook.read(uid, "vastai")
            elif confirmed_at is not None and clock.now - confirmed_at < hook.max_stale:
                assert hook.read(uid, "vastai") == latest
            else:
                with pytest.raises(VaultUnavailable, match=f"gpubroker/users/{uid}/providers/vastai"):
                    hook.read(uid, "vastai")
    finally:
        server.sealed = False


# --- vendor API keys through Airflow's VaultBackend ------------------------------------------------


def test_vendor_api_keys_resolve_through_airflows_vault_backend(replay):
    """A vendor connection kept in Vault (VaultBackend, KV v2) gives the hook its key: offers come back."""
    from airflow.providers.hashicorp.secrets.vault import VaultBackend

    from gpubroker_provider.hooks.vastai import VastAiHook

    server = KvV2TestServer(tokens={TOKEN}, mounts=("airflow",))
    with serve(server) as url:
        httpx.post(f"{url}/v1/airflow/data/connections/gpubroker_vastai", headers={"X-Vault-Token": TOKEN},
                   json={"data": {"conn_type": "gpubroker_vastai", "host": replay.vendor_url("vastai"),
                                  "password": "replay-key"}}).raise_for_status()  # fmt: skip
        backend = VaultBackend(url=url, token=TOKEN, kv_engine_version=2, mount_point="airflow",
                               connections_path="connections")  # fmt: skip
        conn = backend.get_connection("gpubroker_vastai")
    assert (conn.conn_type, conn.password) == ("gpubroker_vastai", "replay-key")
    batch = VastAiHook(base_url=conn.host, api_key=conn.password).fetch_batch()
    assert len(batch.offers) == 10
