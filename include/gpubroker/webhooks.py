"""Webhook delivery in the Standard Webhooks format (https://www.standardwebhooks.com/), SSRF-safe.

Each request carries `webhook-id`, `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the secret `whsec_<base64 key>`).
A delivery is tried up to 5 times with exponential backoff on 5xx, 429 and network errors; every
attempt is logged in `webhook_delivery`; a webhook id that was delivered once is never sent again.

Where a webhook may go (a webhook URL comes from users and from anyone who can write to the
`gpubroker.webhooks` topic, so it must not reach inside our network):
- `check_url(url)`, static, no DNS: http(s) only; no user name or password; a host name of plain
  labels, not ending in a dot; an IP only as a canonical literal (`127.1`, `2130706433`,
  `0x7f000001`, `017700000001`... are refused) and only a public one.
- `pin(url)`, at every attempt: resolve the host once and refuse it if ANY address is not public:
  loopback, private, link-local (cloud metadata 169.254.169.254, fd00:ec2::254), shared 100.64/10,
  unique-local, multicast, reserved, unspecified, and IPv6 forms that embed a private IPv4
  (IPv4-mapped, 6to4, Teredo, NAT64). The connection then goes to that checked address, with the
  original Host header, TLS SNI and certificate check (so a DNS answer that changes between the
  check and the connection, or between attempts, cannot redirect the request).
- Allow-list: the only exemption from the address checks, and each entry has one owner (the
  `webhook_allowlist` table, `manage.py webhook_allowlist add HOST [--key K | --plan P]`, read at
  each delivery): an API key (its alert rules), a plan (the alert rules of its keys), or nobody:
  the operator's own webhooks, which have no alert rule (DAG-run conf, other producers on the
  topic), with GPUBROKER_WEBHOOK_ALLOWLIST. A key holder can never aim a rule at a host allowed for
  someone else.
Alert webhooks (`alert_rule_id` in the request, webapp/alerts/) are signed with their rule's own
secret, read from `alert_rules` at delivery (the secret never travels on Kafka); the request's URL
must be the rule's, and a deleted rule's webhooks are refused.
Per attempt: redirects are not followed (a 3xx is a failed delivery), at most 64 KiB of the
response is read (raw, never decompressed), and the whole attempt — connect, TLS, send, read —
has a 10 s deadline. Environment proxies are ignored (they would bypass the pinned address). The
delivery log keeps the status and a short excerpt of a refusing answer (`EXCERPT_CHARS`), all its
owner is shown (`GET /api/v1/alerts/{id}/deliveries`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import httpx
import psycopg
import pydantic
import tenacity

from gpubroker import settings

__all__ = [
    "DeliveryFailed", "HostUnresolved", "Pinned", "Webhook", "WebhookRefused", "WebhookRequest", "allowed_hosts",
    "check_url", "deliver", "excerpt", "from_kafka_message", "not_public", "pin", "sign", "stable_id", "system_resolver",
]  # fmt: skip

TIMEOUT_SECONDS = 10.0  # the whole attempt
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 64  # of a refusing answer's body, kept in the delivery log
ATTEMPTS = 5
EventType = Literal["price_update", "price_change", "availability_change", "anomaly", "health_update", "quarantine",
                    "test"]
EVENT_TYPES = get_args(EventType)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) -> addresses, as getaddrinfo gives them

log = logging.getLogger(__name__)


class WebhookRefused(ValueError):
    """A request that must not be sent: bad URL, disallowed target, unknown event type."""


class HostUnresolved(WebhookRefused):
    """The webhook's host does not resolve (now): delivery retries it, unlike other refusals."""


class DeliveryFailed(RuntimeError):
    """The target did not accept the webhook after every attempt."""


# --- where a webhook may go ------------------------------------------------------------------
# Special-purpose blocks (IANA registries) named in refusals; Python 3.11's `is_global` misses the last two.
_NOT_GLOBAL = {ipaddress.ip_network(block): name for block, name in [
    ("100.64.0.0/10", "carrier-grade NAT"), ("192.0.0.0/24", "IETF protocol assignments"),
    ("64:ff9b:1::/48", "local-use NAT64")]}  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")


def not_public(ip: IPAddress) -> str | None:
    """Why an address may not be a webhook target, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = {"IPv4-mapped": ip.ipv4_mapped, "6to4": ip.sixtofour,
                    "NAT64": ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None,
                    "Teredo": ip.teredo[1] if ip.teredo else None}  # fmt: skip
        for form, v4 in embedded.items():
            if v4 is not None and (why := not_public(v4)):
                return f"{form} form of {v4}, {why}"
        if ip in _NAT64:
            return None  # a public IPv4 behind the well-known NAT64 prefix (DNS64 networks)
    for why in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{why}"):
            return why.replace("_", "-")
    for block, name in _NOT_GLOBAL.items():
        if ip in block:
            return f"{name}, {block}"
    return None if ip.is_global else "not a public address"


def _parse(url: str) -> httpx.URL:
    """The URL as httpx will send it, refused unless http(s), without userinfo, with a plain host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise WebhookRefused(f"webhook URL {url!r} is not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https"):
        raise WebhookRefused(f"webhook URL must be http or https, got {parsed.scheme or 'no'} scheme in {url!r}")
    if parsed.userinfo:
        raise WebhookRefused("webhook URL must not carry a user name or password")
    host = _host(parsed)
    if not host:
        raise WebhookRefused(f"webhook URL {url!r} has no host")
    if host.endswith("."):
        raise WebhookRefused(f"webhook host {host!r} ends in a dot; write it without the trailing dot")
    _literal(host)
    return parsed


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii").lower()  # IDNA-encoded by httpx


def _literal(host: str) -> IPAddress | None:
    """The IP a host spells, None for a name; refuses numeric encodings and malformed names."""
    if ":" in host:
        if "%" in host:
            raise WebhookRefused(f"webhook host {host!r}: IPv6 zone identifiers are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise WebhookRefused(f"webhook host {host!r} is not a valid IPv6 address") from None
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # browsers and inet_aton read any such host as an IPv4
        try:
            return ipaddress.IPv4Address(host)  # canonical dotted decimal only
        except ValueError:
            raise WebhookRefused(f"webhook host {host!r} is a numeric host encoding; write the address "
                                 "as four decimal numbers (a.b.c.d)") from None  # fmt: skip
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise WebhookRefused(f"webhook host {host!r} is not a valid host name")
    return None


def check_url(url: str, allowed: Collection[str] = frozenset()) -> httpx.URL:
    """Static checks, no DNS (for a URL given to the API): raises WebhookRefused with the reason."""
    parsed = _parse(url)
    host = _host(parsed)
    literal = _literal(host)
    if literal is not None and host not in allowed and (why := not_public(literal)):
        raise WebhookRefused(f"webhook host {host!r} is an internal address ({why}); not allow-listed")
    return parsed


def system_resolver(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


@dataclass(frozen=True)
class Pinned:
    """A checked webhook URL and the checked address its connection must go to."""

    url: httpx.URL
    address: IPAddress

    @property
    def host(self) -> str:
        return _host(self.url)

    @property
    def connect_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))


def pin(url: str, allowed: Collection[str] = frozenset(), resolver: Resolver = system_resolver) -> Pinned:
    """Check the URL, resolve its host once and refuse it unless every address is public (or the
    host is allow-listed); returns the address to connect to."""
    parsed = check_url(url, allowed)
    host = _host(parsed)
    literal = _literal(host)
    if literal is not None:
        return Pinned(parsed, literal)
    try:
        addresses = [ipaddress.ip_address(a) for a in resolver(host, parsed.port or {"http": 80, "https": 443}[parsed.scheme])]
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise HostUnresolved(f"webhook host {host!r} does not resolve")
    if host not in allowed:
        for address in addresses:
            if why := not_public(address):
                raise WebhookRefused(f"webhook host {host!r} resolves to {address} ({why}); not allow-listed")
    return Pinned(parsed, addresses[0])


def allowed_hosts(conn: psycopg.Connection, key_id: int | None = None) -> set[str]:
    """Hosts exempt from the internal-address check for one owner: the alert rules of API key
    `key_id` (entries of that key or of its plan), or, with None, the operator's own webhooks
    (GPUBROKER_WEBHOOK_ALLOWLIST and the entries without an owner)."""
    if key_id is None:
        rows = conn.execute("SELECT host FROM webhook_allowlist WHERE key_id IS NULL AND plan IS NULL").fetchall()
        return set(settings.WEBHOOK_ALLOWLIST) | {host.lower() for (host,) in rows}
    rows = conn.execute("SELECT a.host FROM webhook_allowlist a JOIN api_keys k ON k.id = %s"
                        " WHERE a.key_id = k.id OR a.plan = k.plan", (key_id,)).fetchall()  # fmt: skip
    return {host.lower() for (host,) in rows}


# --- what a webhook is -----------------------------------------------------------------------
def _well_formed(url: str) -> str:
    _parse(url)  # the allow-list-independent checks; addresses are checked at delivery
    return url


class WebhookRequest(pydantic.BaseModel):
    """A delivery request (DAG-run conf or a `gpubroker.webhooks` message)."""

    model_config = pydantic.ConfigDict(frozen=True)

    webhook_url: Annotated[str, pydantic.AfterValidator(_well_formed)]
    event_type: EventType
    payload: dict[str, Any]
    webhook_id: str | None = None
    alert_rule_id: int | None = None  # sign with this alert rule's secret (webapp/alerts)


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    event_type: str
    payload: dict[str, Any]
    alert_rule_id: int | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any], default_id: str) -> Webhook:
        """Validate a delivery request; raises WebhookRefused naming the bad field."""
        try:
            valid = WebhookRequest.model_validate(request)
        except pydantic.ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors())
            raise WebhookRefused(f"webhook request refused: {problems}") from None
        return cls(valid.webhook_id or default_id, valid.webhook_url, valid.event_type, valid.payload,
                   valid.alert_rule_id)  # fmt: skip

    def body(self, timestamp: int) -> bytes:
        return json.dumps({"type": self.event_type, "timestamp": timestamp, "data": self.payload}).encode()


def stable_id(*parts: object) -> str:
    """A webhook id derived from where the request came from, so retries reuse it."""
    return "msg_" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# --- sending ---------------------------------------------------------------------------------
async def _post(target: Pinned, body: bytes, headers: dict[str, str], timeout: float,
                verify: ssl.SSLContext | bool) -> tuple[int, bytes]:  # fmt: skip
    """POST to the pinned address (Host and SNI of the original name); at most 64 KiB read;
    the whole exchange within `timeout` seconds. Returns (status, start of the body)."""
    headers = {**headers, "host": target.url.netloc.decode("ascii"), "accept-encoding": "identity"}
    async with asyncio.timeout(timeout):
        async with httpx.AsyncClient(verify=verify, trust_env=False, follow_redirects=False, timeout=timeout) as client:
            request = client.build_request("POST", target.connect_url, content=body, headers=headers,
                                           extensions={"sni_hostname": target.host})  # fmt: skip
            response = await client.send(request, stream=True)
            received = b""
            try:
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    return response.status_code, received[:MAX_RESPONSE_BYTES]


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


def rule_owner(conn: psycopg.Connection, hook: Webhook) -> tuple[str, int]:
    """The signing secret and the API key of an alert webhook's rule; WebhookRefused when the rule
    is gone or the request's URL is not the rule's (a message on the topic cannot borrow a rule's
    secret, nor its owner's allow-list)."""
    row = conn.execute("SELECT webhook_url, secret, key_id FROM alert_rules WHERE id = %s", (hook.alert_rule_id,)).fetchone()
    if row is None:
        raise WebhookRefused(f"alert rule {hook.alert_rule_id} no longer exists")
    if row[0] != hook.url:
        raise WebhookRefused(f"webhook URL is not the one of alert rule {hook.alert_rule_id}")
    return row[1], row[2]


def excerpt(body: bytes) -> str:
    """The start of an answer's body as its owner is shown it: `EXCERPT_CHARS` printable characters."""
    text = body[: EXCERPT_CHARS * 4].decode(errors="replace")
    return "".join(c if c.isprintable() else " " for c in text)[:EXCERPT_CHARS]


def deliver(conn: psycopg.Connection, hook: Webhook, secret: str, attempts: int = ATTEMPTS, backoff: float = 1.0,
            *, timeout: float = TIMEOUT_SECONDS, resolver: Resolver = system_resolver,
            verify: ssl.SSLContext | bool = True) -> dict[str, Any]:  # fmt: skip
    """Send once per webhook id, with retries; returns {webhook_id, status, attempts}.

    Raises WebhookRefused when the target is refused (checked again at every attempt) and
    DeliveryFailed when it does not accept (or its host never resolved). `resolver` and `verify` (a TLS context or True for the
    system's CAs) are seams for tests; `timeout` bounds each whole attempt, in seconds.
    """
    if already_delivered(conn, hook.webhook_id):
        return {"webhook_id": hook.webhook_id, "status": "already delivered", "attempts": 0}
    owner = None
    if hook.alert_rule_id is not None:
        try:
            secret, owner = rule_owner(conn, hook)
        except WebhookRefused as refused:
            _log(conn, hook, 1, None, 0, f"refused: {refused}", False)
            raise
    allowed = allowed_hosts(conn, owner)
    tries = 0

    def attempt() -> int:
        nonlocal tries
        tries += 1
        try:
            target = pin(hook.url, allowed, resolver)
        except HostUnresolved as unresolved:  # DNS may be down for a moment: try again later
            _log(conn, hook, tries, None, 0, str(unresolved), False)
            raise _Retry(str(unresolved)) from None
        except WebhookRefused as refused:
            _log(conn, hook, tries, None, 0, f"refused: {refused}", False)
            raise
        timestamp = int(time.time())
        body = hook.body(timestamp)
        headers = {"content-type": "application/json", "webhook-id": hook.webhook_id,
                   "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, hook.webhook_id, timestamp, body)}  # fmt: skip
        started = time.monotonic()
        try:
            status, received = asyncio.run(_post(target, body, headers, timeout, verify))
        except (httpx.HTTPError, TimeoutError) as error:
            why = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else type(error).__name__
            _log(conn, hook, tries, None, int((time.monotonic() - started) * 1000), why, False)
            raise _Retry(why) from None
        ok = 200 <= status < 300
        _log(conn, hook, tries, status, int((time.monotonic() - started) * 1000), "" if ok else excerpt(received), ok)
        if status >= 500 or status == 429:
            raise _Retry(f"HTTP {status}")
        if 300 <= status < 400:
            raise DeliveryFailed(f"{hook.url} answered webhook {hook.webhook_id} with a redirect (HTTP {status}); "
                                 "redirects are not followed: give the final URL")  # fmt: skip
        if not ok:
            raise DeliveryFailed(f"{hook.url} refused webhook {hook.webhook_id}: HTTP {status}")
        return status

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
    """`apply_function` of the webhook AssetWatcher: a `gpubroker.webhooks` message -> request, or None
    to skip it. The URL's static checks run here; its addresses are checked at delivery, as for REST."""
    try:
        request = json.loads(message.value())
        request.setdefault("webhook_id", stable_id(message.topic(), message.partition(), message.offset()))
        Webhook.from_request(request, request["webhook_id"])
        return request
    except (ValueError, TypeError, AttributeError) as skipped:  # WebhookRefused is a ValueError
        log.warning("skipping gpubroker.webhooks message at offset %s: %s", message.offset(), skipped)
        return None
