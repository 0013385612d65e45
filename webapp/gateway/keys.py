"""API keys: made, hashed and looked up.

A key is `gpb_` + 32 random bytes (urlsafe base64). It is stored only as its SHA-256 digest: with
256 bits of entropy a fast hash is enough (no dictionary to attack, unlike passwords), and a lookup
must cost microseconds, not the tens of milliseconds of a password KDF.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from gateway.plans import Plan

PREFIX = "gpb_"


@dataclass(frozen=True)
class Client:
    """Who is asking: an API key's owner, or an anonymous client counted by IP (free tier)."""

    identity: str  # "key:<id>" or "ip:<address>": whose rate-limit window a request counts in
    plan: Plan
    key_id: int | None = None


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of `Authorization: Bearer <key>` or `X-API-Key: <key>`, or (browsers cannot set
    headers on a WebSocket) of a `bearer.<key>` WebSocket subprotocol; None when none is sent."""
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip().decode("latin-1")
        if name == b"x-api-key":
            return value.strip().decode("latin-1")
        if name == b"sec-websocket-protocol":
            for offered in value.decode("latin-1").split(","):
                if offered.strip().startswith("bearer."):
                    return offered.strip()[len("bearer."):]
    return None
