"""OpenTelemetry tracing through the official instrumentations, on only when asked for.

`configure()` does nothing unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans go over OTLP/HTTP
(the exporter reads the standard OTEL_* variables: endpoint, headers, OTEL_SERVICE_NAME, ...).
Each component names the libraries it uses; instrumentation packages are imported only then.
"""

from __future__ import annotations

import os

_INSTRUMENTORS = {
    "django": ("opentelemetry.instrumentation.django", "DjangoInstrumentor"),
    "psycopg": ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
    "redis": ("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
    "httpx": ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
}
_configured = False


def enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure(service: str, libraries: tuple[str, ...] = ("psycopg", "redis", "httpx")) -> bool:
    """Export spans of `libraries` as `service`; True when tracing is on (once per process)."""
    global _configured
    if _configured or not enabled():
        return _configured
    import importlib

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    for library in libraries:
        module, name = _INSTRUMENTORS[library]
        getattr(importlib.import_module(module), name)().instrument()
    _configured = True
    return True
