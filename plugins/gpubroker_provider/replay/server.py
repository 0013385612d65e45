"""Vendor replay server: recorded payloads served over real HTTP at each vendor's real paths.

The vendors' live APIs cannot be reached from CI, so this is their test double. Each vendor has a
folder in `recordings/` with a `manifest.json` (auth header, routes -> payload files). A vendor is
served under its slug: Vast.ai's `POST /api/v0/bundles/` is `POST /vastai/api/v0/bundles/`, so a
hook's base URL is `http://127.0.0.1:8765/vastai`. Requests without the expected key get the
vendor's own 401 body.

Control endpoints, for tests and demos (a price change between two syncs):
  PUT    /__replay__/{vendor}/{payload}   replace a payload (JSON body) until reset
  DELETE /__replay__                      back to the recorded payloads
Run: `python -m gpubroker_provider.replay.server --port 8765` (key from GPUBROKER_REPLAY_KEY).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RECORDINGS = Path(__file__).parent / "recordings"
DEFAULT_KEY = "replay-key"


def load_manifests(root: Path = RECORDINGS) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/manifest.json"))}


def create_app(api_key: str | None = None, root: Path = RECORDINGS) -> Starlette:
    key = api_key or os.environ.get("GPUBROKER_REPLAY_KEY", DEFAULT_KEY)
    manifests = load_manifests(root)
    overrides: dict[tuple[str, str], bytes] = {}

    def authorised(manifest: dict, request: Request) -> bool:
        auth = manifest.get("auth")
        if auth is None:
            return True
        expected = f"{auth['scheme']} {key}" if auth.get("scheme") else key
        return request.headers.get(auth["header"]) == expected

    def route_for(vendor: str, method: str, path: str) -> dict | None:
        manifest = manifests.get(vendor, {})
        return next(
            (r for r in manifest.get("routes", []) if r["method"] == method and r["path"] == path), None
        )

    async def vendor_api(request: Request) -> Response:
        vendor, path = request.path_params["vendor"], "/" + request.path_params["path"]
        route = route_for(vendor, request.method, path)
        if route is None:
            return JSONResponse({"error": f"no recording for {request.method} {path}"}, status_code=404)
        manifest = manifests[vendor]
        if not authorised(manifest, request):
            denied = manifest["unauthorized"]
            return JSONResponse(denied["body"], status_code=denied["status"])
        body = overrides.get((vendor, route["payload"])) or (root / vendor / route["payload"]).read_bytes()
        return Response(body, media_type="application/json")

    async def put_payload(request: Request) -> Response:
        vendor, payload = request.path_params["vendor"], request.path_params["payload"]
        if not (root / vendor / payload).is_file():
            return JSONResponse({"error": f"no recorded payload {vendor}/{payload}"}, status_code=404)
        body = await request.body()
        try:
            json.loads(body)
        except ValueError:
            return JSONResponse({"error": "payload must be JSON"}, status_code=400)
        overrides[(vendor, payload)] = body
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        overrides.clear()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "vendors": sorted(manifests)})

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(
        routes=[
            Route("/__replay__/health", health),
            Route("/__replay__/{vendor}/{payload}", put_payload, methods=["PUT"]),
            Route("/__replay__", reset, methods=["DELETE"]),
            Route("/{vendor}/{path:path}", vendor_api, methods=methods),
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
