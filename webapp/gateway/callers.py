"""What the gateway found out about a request, as views read it: the caller (`keys.Client`) and the
data version the answer is computed from, both in the ASGI scope's state (`scope["state"]["gpubroker"]`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError

from gateway.keys import Client


def _state(request: HttpRequest) -> dict[str, Any]:
    return getattr(request, "scope", {}).get("state", {}).get("gpubroker", {})


def keyed(request: HttpRequest, things: str) -> Client:
    """The caller with an API key; 401 for the anonymous free tier (`things` says what needs the key)."""
    client = _state(request).get("client")
    if client is None or client.key_id is None:
        raise HttpError(401, f"{things} belong to an API key: send `Authorization: Bearer <key>`")
    return client


def caller(request: HttpRequest) -> Client | None:
    """The caller the gateway admitted (a key's, or the free tier's by address); None outside the gateway.
    Anything that carries the ASGI scope will do (a Channels consumer too)."""
    return _state(request).get("client")


def data_version(request: HttpRequest) -> int | None:
    """The data version the gateway read for this request (None outside the gateway, e.g. in a test client)."""
    return _state(request).get("data_version")
