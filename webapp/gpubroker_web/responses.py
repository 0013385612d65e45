"""JSON responses rendered with orjson, the caching headers the gateway reads, and the one answer
to a request that failed for a reason the client can act on (`refusal`), shared by the API, the
page and the live feed.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, NamedTuple

import django.db
import orjson
import psycopg
from django.http import HttpResponse

from gpubroker.search import BadQuery
from gpubroker_web import db
from offers.queries import NoData

PRICING_TTL = 60  # seconds an answer with prices may be cached (L1 Redis; L2 keeps at most 30 s)
STATIC_TTL = 300  # seconds for answers that change only with the registry or the vendor table


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def render(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_default, option=orjson.OPT_UTC_Z)


def json_response(payload: Any, status: int = 200, max_age: int | None = None, **headers: str) -> HttpResponse:
    """`max_age`: public and cacheable for that many seconds (the gateway's two-tier cache)."""
    response = HttpResponse(render(payload), status=status, content_type="application/json")
    response["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


# Failures a request may end in that are not a malformed parameter (those are parsed away first:
# the API's 422, the page's marked fields, the socket's invalid_message). Any error of PostgreSQL
# itself is an outage of the database for this request: bad input never reaches it, since every
# parameter is parsed (gpubroker.search.text refuses what PostgreSQL cannot store).
REFUSED = (BadQuery, NoData, db.DatabaseUnavailable, psycopg.Error, django.db.Error)
log = logging.getLogger(__name__)


class Refusal(NamedTuple):
    status: int  # 400: a name GPUBroker does not know, or paging past the end; 503: come back later
    detail: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(db.RETRY_AFTER_SECONDS)} if self.status == 503 else {}


def refusal(error: Exception) -> Refusal:
    """The answer to one of REFUSED."""
    if isinstance(error, (BadQuery, NoData)):
        return Refusal(400 if isinstance(error, BadQuery) else 503, str(error))
    if isinstance(error, db.DatabaseUnavailable):
        return Refusal(503, "the database is unavailable; retry shortly")
    log.error("the database failed a request: %s", type(error).__name__, exc_info=error)
    return Refusal(503, f"the database could not answer ({type(error).__name__}); retry shortly")
