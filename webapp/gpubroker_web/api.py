"""The one NinjaAPI (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs): routers and error answers.

Every error is JSON `{"detail": "..."}` saying what is wrong: 422 for malformed parameters (with
`errors`, one per parameter: a wrong type, out of bounds, text holding NUL or a lone surrogate), 400
for names GPUBroker does not know, and 503 (with Retry-After) when PostgreSQL is unreachable or
fails the query, or nothing has landed yet (gpubroker_web.responses.refusal, shared with the page
and the live feed). 401 and 429 come from the gateway (webapp/gateway/asgi.py).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from gpubroker_web import db, responses
from gpubroker_web.responses import json_response
from admin_api.api import router as admin_router
from alerts.api import router as alerts_router
from analytics.api import router as analytics_router
from integrations.api import router as integrations_router
from offers.api import router as offers_router

api = NinjaAPI(
    title="GPUBroker API",
    version="1",
    description="GPU offers across vendors, live. Send `Authorization: Bearer <key>` (or `X-API-Key`); "
    "without a key you are on the free plan (10 requests per sliding minute, by IP). Every answer carries "
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and RateLimit-Policy headers.",
)
api.add_router("/", offers_router)
api.add_router("/", analytics_router)
api.add_router("/", alerts_router)
api.add_router("/", integrations_router)
api.add_router("/", admin_router)


def _parameter(loc: tuple) -> str:
    """The parameter an error is about, as the client wrote it: `availability` for a query or path
    parameter (a repeated one's position dropped), a field's path in a JSON body (`providers.2`)."""
    source, *where = loc
    if source == "body":  # where[0] is the view's argument, not part of the JSON
        return ".".join(map(str, where[1:])) or "body"
    return next((part for part in reversed(where) if isinstance(part, str)), source)


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, error: ValidationError):
    errors = [{"parameter": _parameter(e["loc"]), "message": e["msg"]} for e in error.errors]
    detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
    return json_response({"detail": detail, "errors": errors}, status=422)


def refused(request: HttpRequest, error: Exception):
    answer = responses.refusal(error)
    return json_response({"detail": answer.detail}, status=answer.status, **answer.headers)


for failure in responses.REFUSED:
    api.add_exception_handler(failure, refused)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError):
    headers = {"Retry_After": str(db.RETRY_AFTER_SECONDS)} if error.status_code == 503 else {}
    return json_response({"detail": error.message}, status=error.status_code, **headers)
