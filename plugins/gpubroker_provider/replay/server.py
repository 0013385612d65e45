"""Vendor replay server: recorded payloads served over real HTTP at each vendor's real paths.

Payloads are JSON (APIs) or, for vendors read from their price page, the page as the site served
it (`.html`, trimmed to what the parser reads with its structure intact; `.js` for a script). A page
route says where and when it was recorded: `"source": "https://...", "recorded": "YYYY-MM-DD"`.

The vendors' live APIs cannot be reached from CI, so this is their test double. Each vendor has a
folder in `recordings/` with a `manifest.json` and the payload files it names:

    {"vendor": "linode",
     "auth": {"header": "Authorization", "scheme": "Bearer"}   # or {"query": "api_key"},
                                                                # {"header": "api_key"}, {"basic": true}, null
     "unauthorized": {"status": 401, "body": {...vendor's own error body...}},
     "routes": [{"method": "GET", "path": "/v4/linode/types", "query": {"page": "2"}, "payload": "types-2.json"}]}

A route matches on method, path and every `query` item it lists (so pages of one path are told
apart); the most specific match wins. A vendor is served under its slug: Vast.ai's
`POST /api/v0/bundles/` is `POST /vastai/api/v0/bundles/`, so a hook's base URL is
`http://127.0.0.1:8765/vastai`. Requests without the expected key get the vendor's own 401 body.

Control endpoints, for tests and demos:
  PUT    /__replay__/{vendor}/{payload}  replace a payload (in its own format) until reset (a price change)
  POST   /__replay__/{vendor}/faults     queue faults for the vendor's next requests, e.g.
         [{"status": 429, "retry_after": 1}, {"delay": 6}, {"status": 500, "body": {...}}]
  DELETE /__replay__                     back to the recordings, no faults
Run: `python -m gpubroker_provider.replay.server --port 8765` (key from GPUBROKER_REPLAY_KEY).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
from collections import defaultdict, deque
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RECORDINGS = Path(__file__).parent / "recordings"
DEFAULT_KEY = "replay-key"


def load_manifests(root: Path = RECORDINGS) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/manifest.json"))}


def presented_key(auth: dict, request: Request) -> str | None:
    """The key a request carries, the way this vendor expects it."""
    if "query" in auth:
        return request.query_params.get(auth["query"])
    if auth.get("basic"):  # HTTP Basic with the key as user name (password ignored)
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            return base64.b64decode(encoded).decode().partition(":")[0]
        except ValueError:
            return None
    value = request.headers.get(auth["header"])
    if value is not None and auth.get("scheme"):
        scheme, _, value = value.partition(" ")
        return value if scheme == auth["scheme"] else None
    return value


MEDIA_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8", ".js": "text/javascript"}


def media_type(payload: str) -> str:
    """How a recording is served: a vendor API's JSON, or a price page (HTML) or script as the site serves it."""
    return MEDIA_TYPES[Path(payload).suffix]


def create_app(api_key: str | None = None, root: Path = RECORDINGS) -> Starlette:
    key = api_key or os.environ.get("GPUBROKER_REPLAY_KEY", DEFAULT_KEY)
    manifests = load_manifests(root)
    overrides: dict[tuple[str, str], bytes] = {}
    faults: dict[str, deque[dict]] = defaultdict(deque)

    def route_for(vendor: str, request: Request) -> dict | None:
        path = "/" + request.path_params["path"]
        candidates = [
            r
            for r in manifests.get(vendor, {}).get("routes", [])
            if r["method"] == request.method
            and r["path"] == path
            and all(request.query_params.get(k) == v for k, v in r.get("query", {}).items())
        ]
        return max(candidates, key=lambda r: len(r.get("query", {})), default=None)

    async def vendor_api(request: Request) -> Response:
        vendor = request.path_params["vendor"]
        if faults[vendor]:
            fault = faults[vendor].popleft()
            await asyncio.sleep(fault.get("delay", 0))
            if "status" in fault:
                headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
                return JSONResponse(fault.get("body", {"error": "injected fault"}), fault["status"], headers)
        route = route_for(vendor, request)
        if route is None:
            return JSONResponse({"error": f"no recording for {request.method} {request.url.path}"}, status_code=404)
        manifest = manifests[vendor]
        auth = manifest.get("auth")
        if auth and presented_key(auth, request) != key:
            denied = manifest["unauthorized"]
            return JSONResponse(denied["body"], status_code=denied["status"])
        body = overrides.get((vendor, route["payload"])) or (root / vendor / route["payload"]).read_bytes()
        return Response(body, media_type=media_type(route["payload"]))

    async def put_payload(request: Request) -> Response:
        vendor, payload = request.path_params["vendor"], request.path_params["payload"]
        if not (root / vendor / payload).is_file():
            return JSONResponse({"error": f"no recorded payload {vendor}/{payload}"}, status_code=404)
        body = await request.body()
        if media_type(payload) == "application/json":
            try:
                json.loads(body)
            except ValueError:
                return JSONResponse({"error": "payload must be JSON"}, status_code=400)
        overrides[(vendor, payload)] = body
        return Response(status_code=204)

    async def add_faults(request: Request) -> Response:
        try:
            queued = await request.json()
            if not isinstance(queued, list) or not all(isinstance(f, dict) for f in queued):
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "faults must be a JSON list of objects"}, status_code=400)
        faults[request.path_params["vendor"]].extend(queued)
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        overrides.clear()
        faults.clear()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "vendors": sorted(manifests)})

    return Starlette(
        routes=[
            Route("/__replay__/health", health),
            Route("/__replay__/{vendor}/faults", add_faults, methods=["POST"]),
            Route("/__replay__/{vendor}/{payload}", put_payload, methods=["PUT"]),
            Route("/__replay__", reset, methods=["DELETE"]),
            Route("/{vendor}/{path:path}", vendor_api, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
