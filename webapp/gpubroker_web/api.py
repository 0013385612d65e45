"""The one NinjaAPI (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs): routers and error answers.

Every error is JSON `{"detail": "..."}` saying what is wrong: 400 names GPUBroker does not know, 422
malformed parameters (with `errors`, one per parameter), 503 (with Retry-After) when PostgreSQL is
unreachable or nothing has landed yet. 401 and 429 come from the gateway (webapp/gateway/asgi.py).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from gpubroker.search import BadQuery
from gpubroker_web import db
from gpubroker_web.responses import json_response
from alerts.api import router as alerts_router
from analytics.api import router as analytics_router
from offers.api import router as offers_router
from offers.queries import NoData

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


@api.exception_handler(BadQuery)
def bad_query(request: HttpRequest, error: BadQuery):
    return json_response({"detail": str(error)}, status=400)


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, error: ValidationError):
    errors = [{"parameter": ".".join(str(p) for p in e["loc"][1:] or e["loc"]), "message": e["msg"]} for e in error.errors]
    detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
    return json_response({"detail": detail, "errors": errors}, status=422)


@api.exception_handler(db.DatabaseUnavailable)
def database_unavailable(request: HttpRequest, error: db.DatabaseUnavailable):
    return json_response({"detail": "the database is unavailable; retry shortly"}, status=503,
                         Retry_After=str(db.RETRY_AFTER_SECONDS))  # fmt: skip


@api.exception_handler(NoData)
def no_data(request: HttpRequest, error: NoData):
    return json_response({"detail": str(error)}, status=503, Retry_After=str(db.RETRY_AFTER_SECONDS))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError):
    headers = {"Retry_After": str(db.RETRY_AFTER_SECONDS)} if error.status_code == 503 else {}
    return json_response({"detail": error.message}, status=error.status_code, **headers)
