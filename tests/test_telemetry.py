"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, the webapp (a real uvicorn process) exports
spans over OTLP/HTTP — the request, PostgreSQL and Redis — to a local OTLP receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ISOLATED_REDIS, ROOT, stack_secrets


class OtlpReceiver:
    """The OTLP/HTTP traces endpoint of a collector: keeps every span it is sent."""

    def __init__(self):
        self.spans: list = []
        app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource in export.resource_spans:
            service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
            for scope in resource.scope_spans:
                self.spans += [(service, scope.scope.name, span) for span in scope.spans]
        return Response(b"", media_type="application/x-protobuf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def traced_webapp(isolated_redis):
    receiver, port = OtlpReceiver(), free_port()
    env = {**os.environ, **stack_secrets(), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_SERVICE_NAME": "gpubroker-webapp-test", "GPUBROKER_REDIS_URL": ISOLATED_REDIS}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "webapp"), "gpubroker_web.asgi:application",
                                "--port", str(port), "--log-level", "warning"], env=env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, receiver
    finally:
        process.terminate()
        process.wait(10)
        receiver.server.should_exit = True


def test_spans_of_the_request_postgres_and_redis_are_exported(traced_webapp):
    base, receiver = traced_webapp
    assert httpx.get(f"{base}/api/v1/providers", timeout=30).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not {"postgresql", "redis"} <= systems(receiver):
        time.sleep(0.2)
    assert {"postgresql", "redis"} <= systems(receiver)
    names = {span.name for _, _, span in receiver.spans}
    assert any(name.startswith("GET") for name in names)  # the server span of the request
    assert {service for service, _, _ in receiver.spans} == {"gpubroker-webapp-test"}
    server = {span.trace_id for _, scope, span in receiver.spans if "asgi" in scope}
    database = {span.trace_id for _, _, span in receiver.spans
                if any(a.key == "db.system" and a.value.string_value == "postgresql" for a in span.attributes)}  # fmt: skip
    assert server & database  # the queries are children of the request's trace


def systems(receiver: OtlpReceiver) -> set[str]:
    return {a.value.string_value for _, _, span in receiver.spans for a in span.attributes if a.key == "db.system"}
