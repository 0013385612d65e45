"""A KV-v2-compatible HashiCorp Vault **test double** (Starlette), for `tests/test_vault.py`.

No Vault server can be installed on our development/CI machines, so `CredentialsVaultHook` is
tested over real HTTP, with the real `VaultHook` and hvac, against this server instead. It is not
Vault: it implements only what VaultHook/hvac call for token auth and the KV version 2 engine,
with Vault's request and response shapes
(https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2):

- every `/v1/...` call except `sys/health` checks `X-Vault-Token`; a missing or unknown token gets
  403 `{"errors": ["permission denied"]}`, like Vault;
- `GET  /v1/sys/health` (no token; 503 and `"sealed": true` when sealed);
- `GET  /v1/auth/token/lookup-self` (called by `hvac.Client.is_authenticated()`,
  so by `VaultHook.get_conn()`);
- `GET  /v1/{mount}/data/{path}[?version=n]`: `{"data": {"data": {...}, "metadata": {...}}}`, 404 `{"errors": []}`;
- `POST|PUT /v1/{mount}/data/{path}` with `{"data": {...}, "options": {"cas": n}}`: a new version,
  check-and-set as Vault does it (400 "check-and-set parameter did not match the current version");
  only the newest `max_versions` (mount default 10, as Vault) versions are kept;
- `GET  /v1/{mount}/metadata/{path}`: current/oldest version, versions with created_time,
  deletion_time and destroyed;
- `DELETE /v1/{mount}/metadata/{path}`: deletes the key and every version (204, also when absent).

Not implemented (nothing here calls them): soft delete/undelete/destroy of single versions, LIST,
custom metadata, other auth methods and engines, leases, namespaces, policies (one token is
either valid or not).

The local stack runs it as its Vault (`python -m tests.vault_server`, service `vault` in
astro/local/stack.sh, token GPUBROKER_VAULT_TOKEN from .stack/secrets.env): the same test double, so
integrations and the pipeline's vendor keys are kept in a KV-v2 store on `make up` too. It keeps
secrets in memory only: the stack stores the pipeline's keys again at each `up`.

Failure switches for tests: `sealed = True` answers every call 503 `{"errors": ["Vault is sealed"]}`
as a sealed Vault does; stopping the server (`serve()` context manager) gives connection errors.
`requests` records every (method, path) served, so tests can see which endpoints the hook used.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_MAX_VERSIONS = 10  # Vault's KV-v2 mount default


def _now() -> str:
    # Vault writes RFC 3339 with sub-second precision, UTC, "Z" suffix.
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _errors(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"errors": list(messages)}, status_code=status)


def _envelope(data: dict) -> dict:
    """Vault's generic response envelope around `data`."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": "kv",
    }


@dataclass
class _Version:
    data: dict
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False

    def metadata(self, number: int) -> dict:
        return {
            "created_time": self.created_time,
            "custom_metadata": None,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
            "version": number,
        }


@dataclass
class _Key:
    created_time: str
    updated_time: str
    current_version: int = 0
    oldest_version: int = 0
    versions: dict[int, _Version] = field(default_factory=dict)


class KvV2TestServer:
    """State and Starlette app of the test double. Tests flip `sealed` or change `tokens` directly."""

    def __init__(
        self,
        tokens: set[str],
        mounts: tuple[str, ...] = ("secret",),
        max_versions: int = DEFAULT_MAX_VERSIONS,
    ):
        self.tokens = set(tokens)
        self.mounts = set(mounts)
        self.max_versions = max_versions
        self.sealed = False
        self.requests: list[tuple[str, str]] = []
        self.keep_requests = 100_000
        self._keys: dict[tuple[str, str], _Key] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/sys/health", self.health, methods=["GET", "HEAD"]),
                Route("/v1/auth/token/lookup-self", self.lookup_self, methods=["GET"]),
                Route("/v1/{mount}/data/{path:path}", self.data, methods=["GET", "POST", "PUT"]),
                Route("/v1/{mount}/metadata/{path:path}", self.metadata, methods=["GET", "DELETE"]),
            ],
            exception_handlers={404: _vault_http_error, 405: _vault_http_error},
        )
        self.app.add_middleware(_Gate, server=self)

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self.requests.clear()
            self.sealed = False

    def endpoints(self) -> set[tuple[str, str]]:
        """The (method, route template) pairs served so far, e.g. ("GET", "/v1/{mount}/data/{path}")."""
        out = set()
        for method, path in self.requests:
            parts = path.split("/")
            if len(parts) > 3 and parts[3] in ("data", "metadata") and parts[2] in self.mounts:
                path = f"/v1/{{mount}}/{parts[3]}/{{path}}"
            out.add((method, path))
        return out

    # --- endpoints -------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        body = {
            "initialized": True,
            "sealed": self.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": "1.15.0+kv-v2-test-double",
            "cluster_name": "gpubroker-test",
            "cluster_id": "00000000-0000-0000-0000-000000000000",
        }
        return JSONResponse(body, status_code=503 if self.sealed else 200)

    async def lookup_self(self, request: Request) -> Response:
        token = request.headers["x-vault-token"]
        return JSONResponse(
            _envelope(
                {
                    "accessor": "test-accessor",
                    "creation_time": int(time.time()),
                    "creation_ttl": 0,
                    "display_name": "token",
                    "entity_id": "",
                    "expire_time": None,
                    "explicit_max_ttl": 0,
                    "id": token,
                    "meta": None,
                    "num_uses": 0,
                    "orphan": True,
                    "path": "auth/token/create",
                    "policies": ["root"],
                    "renewable": False,
                    "ttl": 0,
                    "type": "service",
                }
            )
            | {"mount_type": "token"}
        )

    async def data(self, request: Request) -> Response:
        mount, path = request.path_params["mount"], request.path_params["path"].strip("/")
        if (missing := self._unmounted(mount, "data", path)) is not None:
            return missing
        if request.method == "GET":
            return self._read(mount, path, request.query_params.get("version"))
        return await self._write(mount, path, request)

    async def metadata(self, request: Request) -> Response:
        mount, path = request.path_params["mount"], request.path_params["path"].strip("/")
        if (missing := self._unmounted(mount, "metadata", path)) is not None:
            return missing
        with self._lock:
            if request.method == "DELETE":
                self._keys.pop((mount, path), None)
                return Response(status_code=204)
            key = self._keys.get((mount, path))
            if key is None:
                return _errors(404)
            return JSONResponse(
                _envelope(
                    {
                        "cas_required": False,
                        "created_time": key.created_time,
                        "current_version": key.current_version,
                        "custom_metadata": None,
                        "delete_version_after": "0s",
                        "max_versions": 0,  # 0 = the mount's default applies, as Vault reports it
                        "oldest_version": key.oldest_version,
                        "updated_time": key.updated_time,
                        "versions": {
                            str(n): {
                                "created_time": v.created_time,
                                "deletion_time": v.deletion_time,
                                "destroyed": v.destroyed,
                            }
                            for n, v in sorted(key.versions.items())
                        },
                    }
                )
            )

    # --- helpers -----------------------------------------------------------------------------

    def _unmounted(self, mount: str, kind: str, path: str) -> Response | None:
        if mount in self.mounts:
            return None
        return _errors(404, f'no handler for route "{mount}/{kind}/{path}". route entry not found.')

    def _read(self, mount: str, path: str, version: str | None) -> Response:
        try:
            wanted = int(version) if version not in (None, "") else 0
        except ValueError:
            return _errors(400, "error parsing version")
        with self._lock:
            key = self._keys.get((mount, path))
            if key is None:
                return _errors(404)
            number = wanted or key.current_version
            found = key.versions.get(number)
            if found is None:
                return _errors(404)
            body = _envelope({"data": found.data, "metadata": found.metadata(number)})
            if found.deletion_time or found.destroyed:
                # Vault answers a deleted/destroyed version with 404, data null and its metadata.
                body["data"]["data"] = None
                return JSONResponse(body, status_code=404)
            return JSONResponse(body)

    async def _write(self, mount: str, path: str, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _errors(400, "failed to parse JSON input")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return _errors(400, "no data provided")
        options = body.get("options") or {}
        cas = options.get("cas")
        with self._lock:
            key = self._keys.get((mount, path))
            if cas is not None:
                current = key.current_version if key else 0
                if not isinstance(cas, int) or cas != current:
                    return _errors(400, "check-and-set parameter did not match the current version")
            now = _now()
            if key is None:
                key = self._keys[(mount, path)] = _Key(created_time=now, updated_time=now)
            key.current_version += 1
            key.updated_time = now
            key.versions[key.current_version] = _Version(data=body["data"], created_time=now)
            while len(key.versions) > self.max_versions:
                del key.versions[min(key.versions)]
            key.oldest_version = min(key.versions)
            if key.oldest_version == 1 and len(key.versions) == key.current_version:
                key.oldest_version = 0  # Vault reports 0 until a version has been pruned
            return JSONResponse(_envelope(key.versions[key.current_version].metadata(key.current_version)))


class _Gate:
    """ASGI middleware: request log, sealed Vault (503), token check (403)."""

    def __init__(self, app, server: KvV2TestServer):
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        server, path = self.server, scope["path"]
        server.requests.append((scope["method"], path))
        del server.requests[: -server.keep_requests]  # a long-running double (the stack's) stays bounded
        response: Response | None = None
        if server.sealed:
            if path == "/v1/sys/health":
                return await self.app(scope, receive, send)
            response = _errors(503, "Vault is sealed")
        elif path != "/v1/sys/health":
            headers = dict(scope["headers"])
            token = headers.get(b"x-vault-token", b"").decode("latin-1")
            if token not in server.tokens:
                response = _errors(403, "permission denied")
        if response is None:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)


async def _vault_http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404/405 (no such route / method) as Vault-style JSON errors."""
    message = "unsupported path" if exc.status_code == 404 else "unsupported operation"
    return _errors(exc.status_code, message)


@contextlib.contextmanager
def serve(server: KvV2TestServer, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the test double with uvicorn in a daemon thread on a free port; yields its base URL.

    Leaving the block stops the server, so later calls get connection errors (Vault unreachable).
    """
    config = uvicorn.Config(server.app, host=host, port=0, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("Vault test server did not start")
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        uv.should_exit = True
        thread.join(5)


def main() -> None:
    """The stack's Vault: `python -m tests.vault_server --port 8200`, the one token read from the
    environment (GPUBROKER_VAULT_TOKEN: never on a command line)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args()
    server = KvV2TestServer(tokens={os.environ["GPUBROKER_VAULT_TOKEN"]}, mounts=("secret", "kv"))
    server.keep_requests = 1000
    uvicorn.run(server.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
