"""Webhook delivery in the Standard Webhooks format (https://www.standardwebhooks.com/).

Each request carries `webhook-id`, `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the secret `whsec_<base64 key>`).
A delivery is tried with a 10 s timeout and exponential backoff on 5xx, 429 and network errors; every
attempt is logged in `webhook_delivery`; a webhook id that was delivered once is never sent again.
Targets that resolve to loopback, private, link-local or reserved addresses are refused unless their
host is allow-listed, so a webhook cannot reach inside our network. The allow-list is
GPUBROKER_WEBHOOK_ALLOWLIST plus the `webhook_allowlist` table (`manage.py webhook_allowlist add HOST`),
read at each delivery, so it applies however the stack was started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import tenacity

from gpubroker import settings

TIMEOUT_SECONDS = 10.0
ATTEMPTS = 5
EVENT_TYPES = ("price_update", "price_change", "anomaly", "health_update", "quarantine", "test")


class WebhookRefused(ValueError):
    """A request that must not be sent: bad URL, disallowed target, unknown event type."""


class DeliveryFailed(RuntimeError):
    """The target did not accept the webhook after every attempt."""


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    event_type: str
    payload: dict[str, Any]

    @classmethod
    def from_request(cls, request: dict[str, Any], default_id: str) -> Webhook:
        """Validate a delivery request (DAG-run conf or a `gpubroker.webhooks` message)."""
        url, event_type, payload = request.get("webhook_url"), request.get("event_type"), request.get("payload")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise WebhookRefused(f"webhook_url must be an http(s) URL, got {url!r}")
        if event_type not in EVENT_TYPES:
            raise WebhookRefused(f"event_type must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
        if not isinstance(payload, dict):
            raise WebhookRefused("payload must be a JSON object")
        return cls(str(request.get("webhook_id") or default_id), url, event_type, payload)

    def body(self, timestamp: int) -> bytes:
        return json.dumps({"type": self.event_type, "timestamp": timestamp, "data": self.payload}).encode()


def stable_id(*parts: object) -> str:
    """A webhook id derived from where the request came from, so retries reuse it."""
    return "msg_" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def allowed_hosts(conn: psycopg.Connection) -> set[str]:
    """Hosts exempt from the internal-address check: the setting plus the `webhook_allowlist` table."""
    rows = conn.execute("SELECT host FROM webhook_allowlist").fetchall()
    return set(settings.WEBHOOK_ALLOWLIST) | {host.lower() for (host,) in rows}


def check_target(url: str, allowed: set[str] = frozenset()) -> None:
    """Refuse URLs whose host resolves to an internal address, unless allow-listed."""
    host = urlsplit(url).hostname or ""
    if host.lower() in allowed:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        raise WebhookRefused(f"webhook host {host!r} does not resolve") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
            raise WebhookRefused(f"webhook host {host!r} resolves to internal address {ip}; not allow-listed")


class _Retry(Exception):
    pass


def _log(conn: psycopg.Connection, hook: Webhook, attempt: int, status: int | None, latency_ms: int,
         error: str, delivered: bool) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO webhook_delivery (webhook_id, url, event_type, attempt, status_code, latency_ms, error,"
        " delivered, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())",
        (hook.webhook_id, hook.url, hook.event_type, attempt, status, latency_ms, error[:500], delivered),
    )


def already_delivered(conn: psycopg.Connection, webhook_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM webhook_delivery WHERE webhook_id = %s AND delivered", (webhook_id,))
    return row.fetchone() is not None


def deliver(conn: psycopg.Connection, hook: Webhook, secret: str, attempts: int = ATTEMPTS,
            backoff: float = 1.0) -> dict[str, Any]:  # fmt: skip
    """Send once per webhook id, with retries; returns {webhook_id, status, attempts} or raises DeliveryFailed."""
    if already_delivered(conn, hook.webhook_id):
        return {"webhook_id": hook.webhook_id, "status": "already delivered", "attempts": 0}
    check_target(hook.url, allowed_hosts(conn))
    tries = 0

    def attempt() -> int:
        nonlocal tries
        tries += 1
        timestamp = int(time.time())
        body = hook.body(timestamp)
        headers = {"content-type": "application/json", "webhook-id": hook.webhook_id,
                   "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, hook.webhook_id, timestamp, body)}  # fmt: skip
        started = time.monotonic()
        try:
            response = httpx.post(hook.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            _log(conn, hook, tries, None, int((time.monotonic() - started) * 1000), type(error).__name__, False)
            raise _Retry(type(error).__name__) from None
        ok = response.is_success
        _log(conn, hook, tries, response.status_code, int((time.monotonic() - started) * 1000), "" if ok else response.text[:200], ok)
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retry(f"HTTP {response.status_code}")
        if not ok:
            raise DeliveryFailed(f"{hook.url} refused webhook {hook.webhook_id}: HTTP {response.status_code}")
        return response.status_code

    try:
        status = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            wait=tenacity.wait_exponential(multiplier=backoff, max=30),
            stop=tenacity.stop_after_attempt(attempts),
            reraise=True,
        )(attempt)
    except _Retry as error:
        raise DeliveryFailed(f"{hook.url} did not accept webhook {hook.webhook_id} after {tries} attempts: {error}") from None
    return {"webhook_id": hook.webhook_id, "status": status, "attempts": tries}


def from_kafka_message(message) -> dict[str, Any] | None:
    """`apply_function` of the webhook AssetWatcher: a `gpubroker.webhooks` message -> request, or None to skip."""
    try:
        request = json.loads(message.value())
        request.setdefault("webhook_id", stable_id(message.topic(), message.partition(), message.offset()))
        Webhook.from_request(request, request["webhook_id"])
        return request
    except (ValueError, TypeError, AttributeError, WebhookRefused):
        return None
