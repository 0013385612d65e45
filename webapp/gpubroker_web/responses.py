"""JSON responses rendered with orjson, and the caching headers the gateway reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from django.http import HttpResponse

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
