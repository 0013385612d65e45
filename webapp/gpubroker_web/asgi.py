"""ASGI entry point: the gateway (webapp/gateway/asgi.py) in front of Django (HTTP) and Channels (WebSocket).

Run with several uvicorn workers (`--workers N`): each is one process with its own event loop,
database pool and Redis client; rate limits, the L1 cache and the data version are shared in Redis.
Behind a reverse proxy, name it with `--forwarded-allow-ips` (the local stack and compose pass
GPUBROKER_TRUSTED_PROXIES; astro/README.md), or every anonymous client shares the proxy's window.
"""

import os

from django.core.asgi import get_asgi_application

from gpubroker import telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")
# Traces (only when OTEL_EXPORTER_OTLP_ENDPOINT is set), before Django and the clients are made.
TRACING = telemetry.configure("gpubroker-webapp", ("django", "psycopg", "redis", "httpx"))
http_application = get_asgi_application()  # sets Django up before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from gateway.asgi import Gateway  # noqa: E402
from feed.routing import websocket_urlpatterns  # noqa: E402
from graphql_api.consumers import websocket_urlpatterns as graphql_websockets  # noqa: E402
from gpubroker_web import db  # noqa: E402

db.bound_django_queries()  # the ORM routes' queries end within the request path's statement timeout

application = Gateway(
    ProtocolTypeRouter(
        {
            "http": http_application,
            # No Origin check: the feed is public data and uses no cookies, so there is no session to
            # hijack, and non-browser clients (which send no Origin) are first-class users.
            "websocket": URLRouter([*websocket_urlpatterns, *graphql_websockets]),
        }
    )
)
if TRACING:  # a server span for every request, those the gateway answers itself included
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    application = OpenTelemetryMiddleware(application)
