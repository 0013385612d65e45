"""Who is asking (webapp/gateway/asgi.py, runtime.KeyDirectory): unknown keys, PostgreSQL down, proxies.

- An unknown key is a 401 counted against the caller's address (its free window); once that is
  full, the address's unseen keys get 429 with no PostgreSQL lookup.
- The key cache is an LRU that a flood of random keys cannot empty of known keys.
- PostgreSQL down: a key the worker has not seen gets 503 + Retry-After over HTTP, the same at a
  WebSocket handshake (close code 4503 where the server cannot answer in HTTP), and /metrics answers.
  "Down" is a real PostgreSQL of the test's own (a throwaway cluster under /tmp, see `own_postgres`)
  stopped under the webapp: the shared one keeps running for everyone else.
- Anonymous callers behind a proxy: X-Forwarded-For is believed only from trusted proxies
  (uvicorn's --forwarded-allow-ips, GPUBROKER_TRUSTED_PROXIES in the stack; none by default).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from tests.webapp_fixtures import make_key, offer_row, serving

ROOT = Path(__file__).resolve().parent.parent
SEED_FREE_LIMIT = 10


def asked_from(address: str) -> httpx.AsyncClient:
    """A client of the whole application whose requests come from `address`."""
    from gpubroker_web.asgi import application

    transport = httpx.ASGITransport(app=application, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def random_key() -> str:
    from gateway import keys

    return keys.new_key()


@sync_to_async
def add_offers():
    from offers.models import Offer

    Offer.objects.bulk_create([offer_row("h1", price="2.50")])


# --- unknown keys ----------------------------------------------------------------------------------
async def test_unknown_keys_count_against_the_address_then_its_unseen_keys_get_429_unlooked_up(webapp):
    await add_offers()
    good = await sync_to_async(make_key)("pro")
    async with asked_from("198.51.100.7") as flood, asked_from("198.51.100.8") as neighbour:
        wrong = [await flood.get("/api/v1/offers", headers={"X-API-Key": random_key()}) for _ in range(11)]
        unseen_good = await flood.get("/api/v1/offers", headers={"X-API-Key": good})
        anonymous = await flood.get("/api/v1/offers")
        elsewhere = await neighbour.get("/api/v1/offers", headers={"X-API-Key": good})
    assert [a.status_code for a in wrong] == [401] * SEED_FREE_LIMIT + [429]
    assert [int(a.headers["ratelimit-remaining"]) for a in wrong[:SEED_FREE_LIMIT]] == list(range(9, -1, -1))
    assert "unknown or revoked API key" in wrong[0].json()["detail"]
    assert wrong[-1].json()["plan"] == "free" and 1 <= int(wrong[-1].headers["retry-after"]) <= 60
    # a valid key this worker has not seen is refused before any lookup (a lookup would admit it)
    assert unseen_good.status_code == 429 and 1 <= int(unseen_good.headers["retry-after"]) <= 60
    assert anonymous.status_code == 429  # the address's free window is full
    assert elsewhere.status_code == 200 and elsewhere.headers["ratelimit-limit"] == "100"


async def test_unknown_keys_on_a_websocket_count_against_the_address(webapp):
    from channels.testing import WebsocketCommunicator

    from gpubroker_web.asgi import application

    codes = []
    for _ in range(SEED_FREE_LIMIT + 1):
        ws = WebsocketCommunicator(application, "/ws/providers/", headers=[(b"x-api-key", random_key().encode())])
        codes.append((await ws.connect())[1])
    assert codes == [4401] * SEED_FREE_LIMIT + [4429]


async def test_a_flood_of_unknown_keys_never_evicts_the_known_ones(webapp, monkeypatch):
    """More random keys than the key cache holds (each really looked up): the known key stays
    recalled with no await, and the unknown ones take a bounded space of their own."""
    from gateway import runtime
    from gpubroker_web import db

    monkeypatch.setattr(runtime, "KEY_CACHE_ENTRIES", 500)  # the flood's size follows, the run stays short
    monkeypatch.setattr(runtime, "UNKNOWN_KEY_ENTRIES", 100)
    runtime.reset()
    good = await sync_to_async(make_key)("enterprise")
    directory = runtime.key_directory()
    known = await directory.lookup(good)
    flood, at_once = [random_key() for _ in range(runtime.KEY_CACHE_ENTRIES + 100)], db.MAX_SIZE  # one per connection
    for start in range(0, len(flood), at_once):
        assert not any(await asyncio.gather(*(directory.lookup(k) for k in flood[start : start + at_once])))
    assert known is not None and directory.recall(good) == known
    assert len(directory.unknown) == runtime.UNKNOWN_KEY_ENTRIES and len(directory.known) == 1


# --- PostgreSQL down -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], check=check, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


class OwnPostgres:
    """A throwaway PostgreSQL cluster (trust auth, loopback, a free port), ours alone to stop."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="gpubroker-gw-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        as_postgres("initdb", "--no-sync", "--auth=trust", "-U", "postgres", "-D", str(self.dir / "data"))

    def start(self) -> None:
        as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "start", "-o",
                    f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")  # fmt: skip

    def stop(self) -> None:
        as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop", check=False)  # if still up
        shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=2"


@pytest.fixture
async def own_postgres(transactional_db, isolated_redis, monkeypatch):
    """The request path pointed at a PostgreSQL of the test's own, running (stop it with `.stop()`)."""
    from gpubroker_web import db

    cluster = OwnPostgres()
    cluster.start()
    monkeypatch.setattr(db, "conninfo", cluster.conninfo)
    try:
        yield cluster
    finally:
        await db.close()  # the test's event loop's pool, opened on our cluster
        cluster.remove()


async def test_postgres_down_unseen_keys_get_503_over_http_and_websocket_and_metrics_answer(own_postgres):
    from channels.testing import WebsocketCommunicator

    from gpubroker_web.asgi import application

    with serving() as url:
        async with httpx.AsyncClient(base_url=url) as http:
            ready = await http.get("/readyz")
            own_postgres.stop()  # under the running webapp, its pooled connection open
            api = await http.get("/api/v1/offers", headers={"Authorization": f"Bearer {random_key()}"})
            page = await http.get("/", params={"gpu": "H100"}, headers={"X-API-Key": random_key()})
            metrics = await http.get("/metrics")
        with pytest.raises(websockets.InvalidStatus) as handshake:
            await connect(url.replace("http", "ws") + "/ws/providers/", additional_headers={"X-API-Key": random_key()})
    ws = WebsocketCommunicator(application, "/ws/providers/", headers=[(b"x-api-key", random_key().encode())])
    connected, code = await ws.connect(timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"]["postgres"]  # it was talking to our PostgreSQL
    assert api.status_code == 503 and api.headers["retry-after"].isdigit(), api.text
    assert "database is unavailable" in api.json()["detail"]
    assert page.status_code == 503 and page.headers["retry-after"].isdigit()
    assert "<h1>Temporarily unavailable</h1>" in page.text
    refused = handshake.value.response
    assert refused.status_code == 503 and refused.headers["retry-after"].isdigit()
    assert "database is unavailable" in json.loads(refused.body)["detail"]
    assert (connected, code) == (False, 4503)  # where the server cannot answer a handshake in HTTP
    assert metrics.status_code == 200 and "gpubroker_http_requests_total" in metrics.text


# --- proxies ---------------------------------------------------------------------------------------
async def anonymous_answers(url: str, forwarded_for: list[str]) -> dict[str, list[int]]:
    """The statuses of 11 anonymous requests per X-Forwarded-For value, in turn."""
    answers: dict[str, list[int]] = {}
    async with httpx.AsyncClient(base_url=url) as http:
        for address in forwarded_for:
            answers[address] = [(await http.get("/api/v1/gpus", headers={"X-Forwarded-For": address})).status_code
                                for _ in range(SEED_FREE_LIMIT + 1)]  # fmt: skip
    return answers


async def test_without_trusted_proxies_x_forwarded_for_cannot_choose_the_window(transactional_db, isolated_redis):
    with serving() as url:  # the stack's default: no trusted proxy
        answers = await anonymous_answers(url, ["203.0.113.1", "203.0.113.2"])
    assert answers["203.0.113.1"] == [200] * SEED_FREE_LIMIT + [429]
    assert answers["203.0.113.2"] == [429] * (SEED_FREE_LIMIT + 1)  # the same peer, the same window


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_window(transactional_db, isolated_redis):
    with serving(trusted_proxies="127.0.0.1") as url:  # this test is the proxy
        answers = await anonymous_answers(url, ["203.0.113.1", "203.0.113.2", "127.0.0.1, 203.0.113.1"])
    assert answers["203.0.113.1"] == answers["203.0.113.2"] == [200] * SEED_FREE_LIMIT + [429]
    assert answers["127.0.0.1, 203.0.113.1"] == [429] * (SEED_FREE_LIMIT + 1)  # the client is the first untrusted hop


def test_the_stack_and_compose_take_trusted_proxies_from_one_setting_trusting_none_by_default():
    stack = (ROOT / "astro" / "local" / "stack.sh").read_text()
    compose = (ROOT / "astro" / "docker-compose.yaml").read_text()
    flag = re.compile(r"""--forwarded-allow-ips[ =]["']\$\{GPUBROKER_TRUSTED_PROXIES:-\}["']""")
    assert flag.search(stack.split("start webapp ", 1)[1].split("\n  start ", 1)[0]), "stack.sh's uvicorn"
    assert flag.search(next(line for line in compose.splitlines() if "uvicorn gpubroker_web.asgi" in line)), "compose"
