"""Webhook signing, SSRF checks and delivery, against real local HTTP(S) receivers and real PostgreSQL.

Names like `webhook.test` resolve through the delivery's resolver seam (the one thing a test cannot
get from real DNS); everything after it — the TCP connection, TLS, HTTP — is real.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import itertools
import json
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gpubroker import webhooks

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A local webhook endpoint: answers with the queued statuses (then 200) and bodies (then none),
    and keeps what it got; `/endless` answers 200 with a body that never ends."""

    def __init__(self):
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []
        self.received: list[dict] = []
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"]), Route("/endless", self.endless, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append({"headers": dict(request.headers), "body": body})
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(self.bodies.pop(0) if self.bodies else b"", status_code=status,
                        headers={"location": self.url} if 300 <= status < 400 else None)  # fmt: skip

    async def endless(self, request: Request) -> Response:
        await request.body()

        async def forever():
            while True:
                yield b"x" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(forever())


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.should_exit = True


def allow(pg, host: str) -> None:
    """Allow-list a host the way an operator would (a `webhook_allowlist` row, test database)."""
    pg.execute("INSERT INTO webhook_allowlist (host, note, added_at) VALUES (%s, 'test receiver', now())", (host,))


@pytest.fixture
def inbox(receiver, pg):
    receiver.statuses.clear(), receiver.received.clear()
    allow(pg, "127.0.0.1")
    return receiver


def resolving(*answers: list[str]):
    """A resolver seam answering each lookup with the next answer (the last one repeats)."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    resolve.calls = calls
    return resolve


def test_signature_matches_the_standard_webhooks_reference_vector():
    body = b'{"test": 2432232314}'
    assert webhooks.sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


# --- which targets are refused ---------------------------------------------------------------
INTERNAL = {
    "127.0.0.1": "loopback", "::1": "loopback", "10.1.2.3": "private", "172.16.5.4": "private",
    "192.168.0.10": "private", "169.254.169.254": "link-local", "fd00:ec2::254": "private",
    "fe80::1": "link-local", "100.64.0.1": "carrier-grade NAT", "fc00::1": "private",
    "224.0.0.1": "multicast", "ff02::1": "multicast", "240.0.0.1": "reserved", "0.0.0.0": "unspecified",
    "::": "unspecified", "192.0.0.8": "IETF protocol assignments",
    "::ffff:10.0.0.1": "IPv4-mapped form of 10.0.0.1, private",
    "::ffff:127.0.0.1": "IPv4-mapped form of 127.0.0.1, loopback",
    "2002:a00:1::": "6to4 form of 10.0.0.1, private",
    "2002:a9fe:a9fe::1": "6to4 form of 169.254.169.254, link-local",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo form of 10.0.0.1, private",  # client address XOR 0xffffffff
    "64:ff9b::a00:1": "NAT64 form of 10.0.0.1, private",
    "64:ff9b::7f00:1": "NAT64 form of 127.0.0.1, loopback",
    "64:ff9b:1::a00:1": "reserved",  # local-use NAT64 prefix
}  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888", "64:ff9b::808:808"]


def literal_url(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


@pytest.mark.parametrize(("address", "reason"), INTERNAL.items())
def test_internal_ip_literals_are_refused_unless_allow_listed(address, reason):
    with pytest.raises(webhooks.WebhookRefused, match=f"internal address \\({reason}"):
        webhooks.check_url(literal_url(address))
    webhooks.check_url(literal_url(address), allowed={address})


@pytest.mark.parametrize(("address", "reason"), INTERNAL.items())
def test_names_resolving_to_internal_addresses_are_refused_unless_allow_listed(address, reason):
    with pytest.raises(webhooks.WebhookRefused, match=f"'hooks.example.com' resolves to .* \\({reason}"):
        webhooks.pin("https://hooks.example.com/x", resolver=resolving([address]))
    pinned = webhooks.pin("https://hooks.example.com/x", {"hooks.example.com"}, resolving([address]))
    assert pinned.address == ipaddress.ip_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_and_are_pinned(address):
    assert webhooks.check_url(literal_url(address)).host == address
    pinned = webhooks.pin("https://hooks.example.com:8443/x?a=1", resolver=resolving([address, "9.9.9.9"]))
    assert (str(pinned.address), pinned.host) == (address, "hooks.example.com")
    assert pinned.connect_url.port == 8443 and pinned.connect_url.query == b"a=1"


def test_one_internal_address_among_public_ones_refuses_the_host():
    with pytest.raises(webhooks.WebhookRefused, match="resolves to 10.0.0.7"):
        webhooks.pin("https://hooks.example.com/x", resolver=resolving(["8.8.8.8", "10.0.0.7"]))


def test_a_host_that_does_not_resolve_is_refused():
    with pytest.raises(webhooks.WebhookRefused, match="does not resolve"):
        webhooks.pin("https://nowhere.invalid/x")  # the real system resolver


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://2130706433/", "numeric host encoding"), ("http://0x7f000001/", "numeric host encoding"),
     ("http://017700000001/", "numeric host encoding"), ("http://127.1/", "numeric host encoding"),
     ("http://0x7f.0.0.1/", "numeric host encoding"), ("http://0177.0.0.1/", "Invalid IPv4"),
     ("http://127.0.0.01/", "Invalid IPv4"), ("http://134744072/", "numeric host encoding"),
     ("http://1.2.3.4.5/", "numeric host encoding"), ("http://hooks.example.com./", "ends in a dot"),
     ("http://localhost./", "ends in a dot"), ("ftp://hooks.example.com/x", "must be http or https"),
     ("file:///etc/passwd", "must be http or https"), ("gopher://hooks.example.com/", "must be http or https"),
     ("http://user:pw@hooks.example.com/", "user name or password"), ("http://a.com\\@127.0.0.1/", "user name"),
     ("http://127.0.0.1:80@evil.example/", "user name"), ("http://ex%61mple.com/", "not a valid host name"),
     ("http://[fe80::1%25eth0]/", "zone identifiers"), ("http:///x", "has no host"), ("http://a..b/", "not a valid host")],
)  # fmt: skip
def test_static_checks_refuse_with_a_clear_reason(url, reason):
    with pytest.raises(webhooks.WebhookRefused, match=reason):
        webhooks.check_url(url)
    with pytest.raises(webhooks.WebhookRefused, match=reason):  # the allow-list does not exempt them
        webhooks.check_url(url, allowed={"127.0.0.1", "localhost", "hooks.example.com", "2130706433"})


@pytest.mark.parametrize(
    ("request_", "field"),
    [({"webhook_url": "ftp://x/y", "event_type": "test", "payload": {}}, "webhook_url"),
     ({"webhook_url": "http://0x7f000001/", "event_type": "test", "payload": {}}, "webhook_url"),
     ({"webhook_url": "https://example.com", "event_type": "birthday", "payload": {}}, "event_type"),
     ({"webhook_url": "https://example.com", "event_type": "test", "payload": [1]}, "payload"),
     ({"event_type": "test", "payload": {}}, "webhook_url")],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field(request_, field):
    with pytest.raises(webhooks.WebhookRefused, match=f"webhook request refused: {field}"):
        webhooks.Webhook.from_request(request_, "msg_1")


# --- delivery ---------------------------------------------------------------------------------
def test_delivery_to_an_internal_host_is_refused_until_it_is_allow_listed(pg, receiver):
    hook = webhooks.Webhook("msg_inside", receiver.url, "test", {})
    with pytest.raises(webhooks.WebhookRefused, match="internal address"):
        webhooks.deliver(pg, hook, SECRET)
    allow(pg, "127.0.0.1")
    assert webhooks.deliver(pg, hook, SECRET)["status"] == 200


def test_delivery_retries_a_500_signs_and_logs_every_attempt_once_per_id(pg, inbox):
    inbox.statuses[:] = [500]
    hook = webhooks.Webhook("msg_abc", inbox.url, "price_change", {"offer_id": "o1", "new_price": 1.5})
    result = webhooks.deliver(pg, hook, SECRET, backoff=0.05)
    assert result == {"webhook_id": "msg_abc", "status": 200, "attempts": 2}
    last = inbox.received[-1]
    timestamp = int(last["headers"]["webhook-timestamp"])
    assert last["headers"]["webhook-id"] == "msg_abc"
    assert last["headers"]["webhook-signature"] == webhooks.sign(SECRET, "msg_abc", timestamp, last["body"])
    assert json.loads(last["body"]) == {"type": "price_change", "timestamp": timestamp,
                                        "data": {"offer_id": "o1", "new_price": 1.5}}  # fmt: skip
    log = pg.execute("SELECT attempt, status_code, delivered FROM webhook_delivery ORDER BY id").fetchall()
    assert log == [(1, 500, False), (2, 200, True)]

    assert webhooks.deliver(pg, hook, SECRET)["status"] == "already delivered"
    assert len(inbox.received) == 2  # idempotent: not sent again


def test_a_4xx_is_final_and_repeated_failures_raise(pg, inbox):
    inbox.statuses[:] = [410]
    with pytest.raises(webhooks.DeliveryFailed, match="HTTP 410"):
        webhooks.deliver(pg, webhooks.Webhook("msg_gone", inbox.url, "test", {}), SECRET, backoff=0.05)
    inbox.statuses[:] = [503, 503, 503]
    with pytest.raises(webhooks.DeliveryFailed, match="after 3 attempts: HTTP 503"):
        webhooks.deliver(pg, webhooks.Webhook("msg_down", inbox.url, "test", {}), SECRET, attempts=3, backoff=0.05)


def test_a_host_that_stops_resolving_is_retried_not_refused(pg, inbox):
    resolver = resolving([], ["127.0.0.1"])  # DNS down for the first attempt
    hook = webhooks.Webhook("msg_dns", f"http://hooks.example.com:{inbox.port}/hook", "test", {})
    allow(pg, "hooks.example.com")
    assert webhooks.deliver(pg, hook, SECRET, backoff=0.01, resolver=resolver)["attempts"] == 2
    with pytest.raises(webhooks.DeliveryFailed, match="after 2 attempts: webhook host 'nowhere.invalid' does not resolve"):
        webhooks.deliver(pg, webhooks.Webhook("msg_nodns", "http://nowhere.invalid/x", "test", {}), SECRET, attempts=2, backoff=0.01)


def test_a_redirect_is_not_followed_and_fails_the_delivery(pg, inbox):
    inbox.statuses[:] = [302]
    with pytest.raises(webhooks.DeliveryFailed, match="redirect \\(HTTP 302\\)"):
        webhooks.deliver(pg, webhooks.Webhook("msg_moved", inbox.url, "test", {}), SECRET, backoff=0.05)
    assert len(inbox.received) == 1  # the Location (the same URL) was not requested again


def test_an_endless_response_is_cut_after_64_kib(pg, inbox):
    hook = webhooks.Webhook("msg_big", inbox.url.replace("/hook", "/endless"), "test", {})
    started = time.monotonic()
    assert webhooks.deliver(pg, hook, SECRET, timeout=5)["status"] == 200  # read 64 KiB of it, then hung up
    assert time.monotonic() - started < 4


class Drip:
    """A raw TCP server that answers every request one byte at a time, forever (a slowloris)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    @staticmethod
    def drip(conn: socket.socket):
        conn.recv(65536)
        try:
            for byte in itertools.chain(b"HTTP/1.1 200 OK\r\nX-Slow: ", itertools.repeat(ord("a"))):
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            conn.close()


def test_a_slow_drip_hits_the_total_timeout_of_the_attempt(pg):
    allow(pg, "127.0.0.1")
    drip = Drip()
    started = time.monotonic()
    with pytest.raises(webhooks.DeliveryFailed, match="no answer within 1 s"):
        webhooks.deliver(pg, webhooks.Webhook("msg_drip", drip.url, "test", {}), SECRET, attempts=1, timeout=1.0)
    assert time.monotonic() - started < 3  # a byte every 0.1 s never trips a per-read timeout


def test_dns_rebinding_between_attempts_is_caught_at_the_next_attempt(pg, receiver):
    """The name resolves to a public address first (the attempt fails: nothing answers there), then to
    the loopback receiver: the second attempt is refused before any connection."""
    receiver.received.clear()
    resolver = resolving(["192.88.99.1"], ["127.0.0.1"])  # 192.88.99.1: a public, unannounced address
    hook = webhooks.Webhook("msg_rebind", f"http://rebind.example.com:{receiver.port}/hook", "test", {})
    with pytest.raises(webhooks.WebhookRefused, match="resolves to 127.0.0.1 \\(loopback\\)"):
        webhooks.deliver(pg, hook, SECRET, backoff=0.01, timeout=1.0, resolver=resolver)
    assert resolver.calls == ["rebind.example.com", "rebind.example.com"]  # resolved once per attempt
    assert receiver.received == []
    log = pg.execute("SELECT attempt, status_code, error FROM webhook_delivery ORDER BY id").fetchall()
    assert [(a, s) for a, s, _ in log] == [(1, None), (2, None)] and log[1][2].startswith("refused:")


# --- HTTPS to the pinned address, Host and SNI of the name ----------------------------------
def self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class TlsReceiver:
    """An HTTPS receiver on 127.0.0.2 only, with a certificate for `webhook.test`; keeps the SNI
    name, Host header and local address of each request."""

    def __init__(self, tmp_path):
        cert, key = self_signed("webhook.test")
        (tmp_path / "cert.pem").write_bytes(cert), (tmp_path / "key.pem").write_bytes(key)
        self.client_context = ssl.create_default_context(cadata=cert.decode())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        self.sni: list[str | None] = []
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self.requests: list[dict] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                requests.append({"host": self.headers["host"], "local": self.connection.getsockname()[0]})
                self.send_response(200), self.send_header("content-length", "0"), self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_https_goes_to_the_pinned_address_with_host_sni_and_certificate_of_the_name(pg, tmp_path):
    tls = TlsReceiver(tmp_path)
    allow(pg, "webhook.test"), allow(pg, "other.test")  # both resolve to loopback
    resolver = resolving(["127.0.0.2"])
    hook = webhooks.Webhook("msg_tls", f"https://webhook.test:{tls.port}/hook", "test", {})
    result = webhooks.deliver(pg, hook, SECRET, resolver=resolver, verify=tls.client_context)
    assert result["status"] == 200
    assert tls.requests == [{"host": f"webhook.test:{tls.port}", "local": "127.0.0.2"}]
    assert tls.sni == ["webhook.test"]

    # The certificate is checked against the name, not the pinned IP: another name is refused.
    other = webhooks.Webhook("msg_other", f"https://other.test:{tls.port}/hook", "test", {})
    with pytest.raises(webhooks.DeliveryFailed, match="ConnectError"):
        webhooks.deliver(pg, other, SECRET, attempts=1, resolver=resolver, verify=tls.client_context)
    assert len(tls.requests) == 1
    tls.server.shutdown()


# --- requests from Kafka ----------------------------------------------------------------------
def message(value: bytes, offset: int = 7):
    """A stand-in for confluent_kafka.Message: the four accessors the apply_function reads."""
    return SimpleNamespace(value=lambda: value, topic=lambda: "gpubroker.webhooks", partition=lambda: 0, offset=lambda: offset)


def test_kafka_messages_become_requests_or_are_skipped():
    good = webhooks.from_kafka_message(message(b'{"webhook_url": "https://example.com/h", "event_type": "test", "payload": {}}'))
    assert good["webhook_id"] == webhooks.stable_id("gpubroker.webhooks", 0, 7)
    assert webhooks.from_kafka_message(message(b"not json")) is None
    assert webhooks.from_kafka_message(message(b"[1]")) is None
    assert webhooks.from_kafka_message(message(b'{"event_type": "test"}')) is None
    assert webhooks.from_kafka_message(message(b'{"webhook_url": "http://2130706433/", "event_type": "test", "payload": {}}')) is None


def test_a_kafka_request_to_an_internal_address_is_refused_at_delivery(pg, receiver):
    receiver.received.clear()
    request = webhooks.from_kafka_message(message(json.dumps(
        {"webhook_url": f"http://hooks.example.com:{receiver.port}/hook", "event_type": "test", "payload": {}}).encode()))  # fmt: skip
    hook = webhooks.Webhook.from_request(request, "unused")
    with pytest.raises(webhooks.WebhookRefused, match="resolves to 127.0.0.1 \\(loopback\\)"):
        webhooks.deliver(pg, hook, SECRET, resolver=resolving(["127.0.0.1"]))
    assert receiver.received == []
