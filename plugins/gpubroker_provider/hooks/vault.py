"""`CredentialsVaultHook`: per-user GPU vendor credentials in HashiCorp Vault (KV secrets engine v2).

Built on the official `airflow.providers.hashicorp.hooks.vault.VaultHook` (a subclass: same
Airflow connection, auth methods, hvac client and retrying session), with the KV engine pinned to
version 2. A user's credentials for one vendor are one KV-v2 secret at

    {mount_point}/gpubroker/users/{user_id}/providers/{provider}      e.g. {"api_key": "..."}

where `mount_point` is the hook argument, else the connection's schema, else "secret", and
`provider` is a known vendor slug (`gpubroker_provider.vendors.VENDORS`).

- `store` writes a new version (creating the secret if needed), `rotate` writes a new version of
  an existing secret with check-and-set against the version it read (so two concurrent rotations
  cannot silently overwrite each other) and returns the new version number, `read` returns the
  latest version, `delete` removes the secret with all its versions, `metadata` returns Vault's
  version metadata (no secret values).
- Every secret value read or written is registered with Airflow's secret masker
  (`airflow.sdk.log.mask_secret`) before anything else happens, so it is redacted from task logs
  and rendered fields. Values are masked one by one, without their key names, because the masker
  only masks values under "sensitive" key names when given a dict, and a vendor's `account_id` is
  as secret as its `api_key` here. Airflow does not mask values shorter than
  `[logging] min_length_masked_secret` (default 5). Do not return `read()`'s dict from a task:
  XCom values themselves are stored as given.
- Each credential read (and write) is kept in an in-memory cache. Reads always go to Vault; only
  when Vault is unreachable (connection error, timeout, 5xx, sealed) is a cached credential younger
  than `max_stale` (1 hour) served, with a warning that names the path, never the value. Without
  such a cached copy the call fails with `VaultUnavailable`, naming the path. The clock is
  injectable (`clock=`), and so is the cache (`cache=`; default: one cache per process, keyed by
  connection, Vault URL, mount and path).

**Syncs** read vendor keys through `vendor_api_key(provider)`: Vault first (user
`settings.VAULT_USER`, key `api_key`, connection `settings.VAULT_CONN_ID`), the vendor's Airflow
connection as the fallback (no Vault connection, no credential there, or Vault down with nothing
cached). Each task is its own process, so their cache is `SharedCredentialCache`: in the pipeline's
Redis, every entry encrypted with Airflow's Fernet key (`[core] fernet_key`; without one, the
per-process cache) and gone after `max_stale`; its times are wall-clock. `vault_health()` asks
Vault's unauthenticated `GET /v1/sys/health`; the health-check DAG keeps the answer in Redis
(`gpubroker.health.VAULT`), where the webapp's provider status reads it.

**Integrations** (an API key's own vendor keys, `gpubroker_provider.integrations`) are kept at user
`{key id}` and read through `owner_api_key`: Vault or the shared cache only, never a connection.

Testing: no Vault server can be installed on our development/CI machines, so this hook is tested
over real HTTP with hvac against a KV-v2-compatible test server (tests/vault_server.py), not a
real Vault. That server implements only the token-auth and KV-v2 calls this hook makes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import redis
import requests
from airflow.providers.hashicorp.hooks.vault import VaultHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from cryptography.fernet import Fernet, InvalidToken
from hvac import exceptions as hvac_exceptions

from gpubroker import settings
from gpubroker.vendors import VENDORS

log = logging.getLogger(__name__)

PATH_TEMPLATE = "gpubroker/users/{user_id}/providers/{provider}"
DEFAULT_MOUNT_POINT = "secret"
DEFAULT_MAX_STALE_SECONDS = 3600.0
DEFAULT_TIMEOUT_SECONDS = 10.0

# One path segment: starts with a letter or digit (so never "", "." or ".."), then letters, digits,
# "_", "-", "." and "@"; at most 128 characters. No "/", whitespace, "%" or control characters.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_MAX_KEYS = 32

# hvac's answers that mean "Vault is not serving", as opposed to "Vault said no".
_UNAVAILABLE_HVAC = (
    hvac_exceptions.VaultDown,  # 503, also a sealed Vault
    hvac_exceptions.InternalServerError,  # 500
    hvac_exceptions.VaultNotInitialized,  # 501
    hvac_exceptions.BadGateway,  # 502
)
_UNAVAILABLE_TRANSPORT = (
    requests.exceptions.ConnectionError,  # refused, DNS, reset (after VaultHook's own retries)
    requests.exceptions.Timeout,
    requests.exceptions.RetryError,
)


class CredentialsVaultError(RuntimeError):
    """Base class of this hook's errors. Messages name Vault paths, never secret values or tokens."""


class InvalidCredentialPath(CredentialsVaultError, ValueError):
    """`user_id` or `provider` cannot name a credential (unsafe path segment or unknown vendor)."""


class InvalidCredentials(CredentialsVaultError, ValueError):
    """The credentials to write are not a non-empty mapping of string keys to string values."""


class CredentialNotFound(CredentialsVaultError, LookupError):
    """Vault has no credential at this path."""


class CredentialConflict(CredentialsVaultError):
    """A check-and-set write lost against a concurrent write to the same credential."""


class VaultAccessDenied(CredentialsVaultError):
    """Vault refused the connection's token (403/401) for this path."""


class VaultUnavailable(CredentialsVaultError):
    """Vault is unreachable and no cached credential is young enough to be served instead."""


@dataclass(frozen=True)
class _Cached:
    data: dict[str, str]
    version: int | None
    stored_at: float  # clock() when Vault last confirmed this value


class CredentialCache:
    """Thread-safe in-memory credential cache. Holds secrets: never log or serialise it."""

    def __init__(self) -> None:
        self._entries: dict[tuple, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> _Cached | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: tuple, entry: _Cached) -> None:
        with self._lock:
            self._entries[key] = entry

    def drop(self, key: tuple) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __repr__(self) -> str:  # never the values
        return f"<CredentialCache entries={len(self._entries)}>"


_PROCESS_CACHE = CredentialCache()


class SharedCredentialCache(CredentialCache):
    """A credential cache every process reaching the same Redis shares (the task processes of a sync,
    on any worker). Entries are Fernet-encrypted, keyed by a hash of (connection, URL, mount, path),
    and expire after `ttl` seconds; `stored_at` is wall-clock, so hooks using it take `clock=time.time`.
    Redis failing makes it a cache that holds nothing, never an error: Vault stays the source."""

    PREFIX = "gpubroker:vault-cache:"

    def __init__(self, client: redis.Redis, fernet: Fernet, ttl: float = DEFAULT_MAX_STALE_SECONDS) -> None:
        super().__init__()
        self._redis, self._fernet, self._ttl = client, fernet, ttl

    def _name(self, key: tuple) -> str:
        return self.PREFIX + hashlib.sha256(repr(key).encode()).hexdigest()

    def get(self, key: tuple) -> _Cached | None:
        try:
            blob = self._redis.get(self._name(key))
            return None if blob is None else _Cached(**json.loads(self._fernet.decrypt(blob)))
        except (redis.RedisError, InvalidToken) as error:
            log.warning("shared credential cache unreadable: %s", type(error).__name__)
            return None

    def put(self, key: tuple, entry: _Cached) -> None:
        try:
            self._redis.set(self._name(key), self._fernet.encrypt(json.dumps(asdict(entry)).encode()),
                            ex=math.ceil(self._ttl))  # fmt: skip
        except redis.RedisError as error:
            log.warning("shared credential cache not written: %s", type(error).__name__)

    def drop(self, key: tuple) -> None:
        try:
            self._redis.delete(self._name(key))
        except redis.RedisError as error:
            log.warning("shared credential cache entry not dropped: %s", type(error).__name__)

    def clear(self) -> None:
        for name in self._redis.scan_iter(f"{self.PREFIX}*"):
            self._redis.delete(name)

    def __repr__(self) -> str:  # never the values
        return f"<SharedCredentialCache {self._redis.connection_pool!r}>"


def shared_cache() -> CredentialCache:
    """The shared cache on the pipeline's Redis, encrypted with Airflow's Fernet key; the process
    cache when no Fernet key is configured (credentials are never kept unencrypted outside memory)."""
    from airflow.configuration import conf

    key = conf.get("core", "fernet_key", fallback="")
    if not key:
        log.warning("no [core] fernet_key: vendor credentials are cached per process only")
        return _PROCESS_CACHE
    return SharedCredentialCache(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2), Fernet(key))


@dataclass(frozen=True)
class Credential:
    data: dict[str, str]
    version: int | None
    cached_age: float | None = None  # seconds: served from the cache while Vault was unreachable

    def __repr__(self) -> str:  # never the values
        return f"Credential(keys={sorted(self.data)}, version={self.version}, cached_age={self.cached_age})"


def credential_path(user_id: str | int, provider: str) -> str:
    """The KV path (below the mount point) of `user_id`'s credentials for `provider`, validated."""
    if isinstance(user_id, int) and not isinstance(user_id, bool) and user_id >= 0:
        user_id = str(user_id)
    if not isinstance(user_id, str) or not _SEGMENT.fullmatch(user_id):
        raise InvalidCredentialPath(
            f"invalid user_id {_short(user_id)}: expected 1-128 characters of letters, digits, "
            "'_', '-', '.', '@', starting with a letter or digit (one Vault path segment)"
        )
    if not isinstance(provider, str) or provider not in VENDORS:
        raise InvalidCredentialPath(
            f"unknown provider {_short(provider)}: expected a vendor slug, "
            f"one of {', '.join(sorted(VENDORS))}"
        )
    return PATH_TEMPLATE.format(user_id=user_id, provider=provider)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _mask_values(credentials: Mapping[str, Any]) -> None:
    for value in credentials.values():
        if isinstance(value, str) and value:
            mask_secret(value)


def _validated(credentials: Any) -> dict[str, str]:
    if not isinstance(credentials, Mapping) or not credentials:
        raise InvalidCredentials("credentials must be a non-empty mapping, e.g. {'api_key': '...'}")
    # Mask first: whatever goes wrong below must not be able to print a value.
    _mask_values(credentials)
    if len(credentials) > _MAX_KEYS:
        raise InvalidCredentials(f"credentials may have at most {_MAX_KEYS} keys")
    for key, value in credentials.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidCredentials(
                f"credential key {_short(key)}: keys must be non-empty strings and values strings "
                f"(got a {type(value).__name__} value)"
            )
    return dict(credentials)


class CredentialsVaultHook(VaultHook):
    """
    Per-user GPU vendor credentials in Vault KV v2, on top of the official `VaultHook`.

    :param vault_conn_id: Airflow connection of the Vault server (conn type ``vault``: host, port,
        password = token, extras as for `VaultHook`, e.g. ``{"auth_type": "token"}``).
    :param mount_point: KV-v2 mount; default the connection's schema, else ``"secret"``.
    :param max_stale: seconds a cached credential may be served while Vault is unreachable (3600).
    :param clock: monotonic seconds, injectable for tests (default ``time.monotonic``).
    :param cache: credential cache (default: one per process).
    :param timeout: seconds per HTTP request to Vault (hvac's default is 30).
    :param kwargs: passed on to `VaultHook` (auth parameters, hvac client arguments).
    """

    default_conn_name = "gpubroker_vault"
    hook_name = "GPUBroker vendor credentials (HashiCorp Vault KV v2)"

    def __init__(
        self,
        vault_conn_id: str = default_conn_name,
        *,
        mount_point: str | None = None,
        max_stale: float = DEFAULT_MAX_STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        cache: CredentialCache | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        if timeout is not None:
            kwargs.setdefault("timeout", timeout)
        super().__init__(vault_conn_id=vault_conn_id, kv_engine_version=2, **kwargs)
        self.vault_conn_id = vault_conn_id
        if mount_point is not None:
            if not _SEGMENT.fullmatch(mount_point):
                raise InvalidCredentialPath(f"invalid mount_point {_short(mount_point)}")
            # VaultHook takes the mount from the connection's schema; an explicit argument wins.
            self.vault_client.mount_point = mount_point
        self.mount_point: str = self.vault_client.mount_point or DEFAULT_MOUNT_POINT
        self.vault_client.mount_point = self.mount_point
        self.max_stale = float(max_stale)
        self.clock = clock
        self.cache = _PROCESS_CACHE if cache is None else cache

    # --- public API ---------------------------------------------------------------------------

    def store(self, user_id: str | int, provider: str, credentials: Mapping[str, str]) -> int:
        """Write `credentials` as the newest version (creating the secret if needed); return its version."""
        path = credential_path(user_id, provider)
        data = _validated(credentials)
        return self._write(path, data, cas=None)

    def rotate(self, user_id: str | int, provider: str, credentials: Mapping[str, str]) -> int:
        """Replace an existing credential with a new KV-v2 version; return the new version number.

        Check-and-set against the current version: a concurrent write makes this fail with
        `CredentialConflict` instead of being silently overwritten. A missing credential raises
        `CredentialNotFound` (use `store` to create one).
        """
        path = credential_path(user_id, provider)
        data = _validated(credentials)
        meta = self._call(path, lambda: self.get_secret_metadata(self._kv(path)))
        current = ((meta or {}).get("data") or {}).get("current_version") or 0
        if not current:
            raise CredentialNotFound(f"no credential to rotate at {self._where(path)}; store it first")
        return self._write(path, data, cas=current)

    def read(self, user_id: str | int, provider: str) -> dict[str, str]:
        """The latest version of the credential, from Vault, or from the cache while Vault is unreachable."""
        return self.fetch(user_id, provider).data

    def fetch(self, user_id: str | int, provider: str) -> Credential:
        """`read`, saying which version it is and whether the cache served it (Vault unreachable)."""
        path = credential_path(user_id, provider)
        key = self._cache_key(path)
        try:
            response = self._call(path, lambda: self.get_secret_including_metadata(self._kv(path)))
        except VaultUnavailable as unavailable:
            return self._from_cache(path, key, unavailable)
        if response is None:
            self.cache.drop(key)
            raise CredentialNotFound(f"no credential at {self._where(path)}")
        data = dict((response.get("data") or {}).get("data") or {})
        _mask_values(data)
        version = ((response.get("data") or {}).get("metadata") or {}).get("version")
        self.cache.put(key, _Cached(data=data, version=version, stored_at=self.clock()))
        return Credential(dict(data), version)

    def delete(self, user_id: str | int, provider: str) -> None:
        """Delete the credential and all its versions (KV-v2 metadata delete). Absent: no error."""
        path = credential_path(user_id, provider)

        def _delete() -> None:
            # VaultHook has no delete: use its hvac client (get_conn() re-authenticates if needed).
            self.get_conn().secrets.kv.v2.delete_metadata_and_all_versions(
                path=self._kv(path), mount_point=self.mount_point
            )

        self.cache.drop(self._cache_key(path))
        self._call(path, _delete)

    def metadata(self, user_id: str | int, provider: str) -> dict:
        """Vault's KV-v2 metadata (current_version, versions with created/deletion time; no values)."""
        path = credential_path(user_id, provider)
        response = self._call(path, lambda: self.get_secret_metadata(self._kv(path)))
        if response is None:
            raise CredentialNotFound(f"no credential at {self._where(path)}")
        return response["data"]

    # --- internals ----------------------------------------------------------------------------

    def _kv(self, path: str) -> str:
        return path  # VaultHook prefixes its client's mount_point

    def _where(self, path: str) -> str:
        return f"{self.mount_point}/{path} (connection {self.vault_conn_id!r})"

    def _cache_key(self, path: str) -> tuple:
        return (self.vault_conn_id, self.vault_client.url, self.mount_point, path)

    def _write(self, path: str, data: dict[str, str], cas: int | None) -> int:
        response = self._call(path, lambda: self.create_or_update_secret(self._kv(path), data, cas=cas))
        version = int(response["data"]["version"])
        entry = _Cached(data=dict(data), version=version, stored_at=self.clock())
        self.cache.put(self._cache_key(path), entry)
        return version

    def _call(self, path: str, operation: Callable[[], Any]) -> Any:
        """Run one VaultHook call, translating failures into this module's errors (no secrets in them)."""
        try:
            return operation()
        except _UNAVAILABLE_TRANSPORT as exc:
            raise VaultUnavailable(
                f"Vault unreachable at {self.vault_client.url} for {self._where(path)}: {type(exc).__name__}"
            ) from exc
        except _UNAVAILABLE_HVAC as exc:
            raise VaultUnavailable(
                f"Vault not serving at {self.vault_client.url} for {self._where(path)}: "
                f"{type(exc).__name__} ({_vault_errors(exc)})"
            ) from exc
        except hvac_exceptions.VaultError as exc:
            if _is_auth_error(exc):
                raise VaultAccessDenied(
                    f"Vault refused the token of connection {self.vault_conn_id!r} for "
                    f"{self.mount_point}/{path} (permission denied): check the token and its policy"
                ) from exc
            if isinstance(exc, hvac_exceptions.InvalidRequest) and "check-and-set" in _vault_errors(exc):
                raise CredentialConflict(
                    f"{self._where(path)} changed while rotating (check-and-set failed); read it and retry"
                ) from exc
            raise CredentialsVaultError(
                f"Vault error for {self._where(path)}: {type(exc).__name__} ({_vault_errors(exc)})"
            ) from exc

    def _from_cache(self, path: str, key: tuple, unavailable: VaultUnavailable) -> Credential:
        cached = self.cache.get(key)
        if cached is None:
            raise VaultUnavailable(f"{unavailable}; no cached credential for {self._where(path)}") from (
                unavailable.__cause__
            )
        age = self.clock() - cached.stored_at
        if age >= self.max_stale:
            raise VaultUnavailable(
                f"{unavailable}; the cached credential for {self._where(path)} is {age / 60:.0f} min old, "
                f"older than the {self.max_stale / 60:.0f} min allowed while Vault is unreachable"
            ) from unavailable.__cause__
        self.log.warning(
            "Vault unreachable; serving the cached credential for %s (version %s, %.0f s old, "
            "served for up to %.0f s): %s",
            self._where(path),
            cached.version,
            age,
            self.max_stale,
            unavailable,
        )
        _mask_values(cached.data)  # masked in this process too (the entry may come from another)
        return Credential(dict(cached.data), cached.version, cached_age=age)


def _vault_errors(exc: hvac_exceptions.VaultError) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""


def _is_auth_error(exc: BaseException) -> bool:
    # VaultHook re-authenticates once on 403, then raises hvac's VaultError("Vault Authentication
    # Error!") from the second Forbidden.
    seen = exc
    while seen is not None:
        if isinstance(seen, (hvac_exceptions.Forbidden, hvac_exceptions.Unauthorized)):
            return True
        seen = seen.__cause__
    return False


# --- what the syncs and the health checks use -------------------------------------------------


@dataclass(frozen=True)
class VendorKey:
    api_key: str | None = None  # None: the vendor hook reads its own Airflow connection
    source: str = "connection"  # "vault", "vault-cache" (Vault unreachable) or "connection"

    def __repr__(self) -> str:  # never the key
        return f"VendorKey(source={self.source!r})"


def vendor_api_key(provider: str, user_id: str | None = None, vault_conn_id: str | None = None) -> VendorKey:
    """The vendor's API key for a sync: from Vault (`api_key` of `user_id`'s credential, default
    `settings.VAULT_USER`), from the shared cache while Vault is unreachable, else nothing (the hook
    falls back to the vendor's Airflow connection): no Vault connection, no credential in Vault,
    Vault refusing the token, or Vault down with nothing cached. Each fallback is logged, keys never."""
    try:
        hook = CredentialsVaultHook(vault_conn_id or settings.VAULT_CONN_ID, clock=time.time, cache=shared_cache())
    except AirflowNotFoundException:
        return VendorKey()  # no Vault here
    try:
        credential = hook.fetch(user_id or settings.VAULT_USER, provider)
    except CredentialsVaultError as error:
        log.warning("%s: no key from Vault (%s); using the Airflow connection", provider, error)
        return VendorKey()
    if not credential.data.get("api_key"):
        log.warning("%s: the Vault credential has no api_key; using the Airflow connection", provider)
        return VendorKey()
    return VendorKey(credential.data["api_key"], "vault" if credential.cached_age is None else "vault-cache")


class VaultNotConfigured(VaultUnavailable):
    """No Airflow connection names the Vault server."""


def vault_hook(vault_conn_id: str | None = None) -> CredentialsVaultHook:
    """The hook the syncs and the integrations read keys with: the shared cache, wall-clock time.
    VaultNotConfigured (naming the connection) when no Vault connection is configured."""
    conn_id = vault_conn_id or settings.VAULT_CONN_ID
    try:
        return CredentialsVaultHook(conn_id, clock=time.time, cache=shared_cache())
    except AirflowNotFoundException:
        raise VaultNotConfigured(f"Vault is not configured: no Airflow connection {conn_id!r}") from None


def owner_api_key(owner: int | str, provider: str, vault_conn_id: str | None = None) -> VendorKey:
    """An API key owner's own vendor key (their provider integration): from Vault, or from the shared
    cache while Vault is unreachable (up to `max_stale` old). Never the pipeline's key nor the vendor's
    Airflow connection: a CredentialsVaultError (CredentialNotFound, VaultUnavailable, ...) instead."""
    credential = vault_hook(vault_conn_id).fetch(owner, provider)
    if not credential.data.get("api_key"):
        raise CredentialNotFound(f"the credential of owner {owner} for {provider} has no api_key")
    return VendorKey(credential.data["api_key"], "vault" if credential.cached_age is None else "vault-cache")


# Vault's documented health answers (GET /v1/sys/health): 200 active, 429/473 standby, 501 not
# initialised, 503 sealed; anything else, or no answer, is "down".
_HEALTH = {200: "ok", 429: "standby", 473: "standby", 472: "standby", 501: "not_initialized", 503: "sealed"}


def vault_health(vault_conn_id: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """Vault's health as the syncs see it: {"status", "latency_ms", "checked_at", "error"}, status one
    of ok, standby, sealed, not_initialized, down, not_configured (no Vault connection)."""
    checked_at = datetime.now(timezone.utc).isoformat()
    try:
        url = CredentialsVaultHook(vault_conn_id or settings.VAULT_CONN_ID).vault_client.url
    except AirflowNotFoundException:
        return {"status": "not_configured", "latency_ms": None, "checked_at": checked_at, "error": None}
    started = time.monotonic()
    try:
        status = httpx.get(f"{url.rstrip('/')}/v1/sys/health", timeout=timeout).status_code
        error = None if status in _HEALTH else f"HTTP {status}"
    except httpx.HTTPError as failure:
        status, error = None, type(failure).__name__
    return {"status": _HEALTH.get(status, "down"), "latency_ms": round((time.monotonic() - started) * 1000),
            "checked_at": checked_at, "error": error}  # fmt: skip
