"""The fault matrix (tests/README.md) on the running stack: a real service is stopped or killed, then
started again (`stack.sh stop SERVICE`, `stack.sh up --no-sync`), and nothing may be lost.

- Redis down: the API answers from each worker's L2 and PostgreSQL, the limiter falls back to a
  per-worker share (never unlimited), WebSocket clients are told (close 1012) and resume afterwards.
- Kafka down while the feed bridge runs: every change sent around the outage reaches the client once.
- PostgreSQL restarted under API load: 503 with Retry-After (never 500) while it is down, answers
  again within 10 s of it accepting connections.
- A webapp worker killed: its WebSocket clients reconnect, resume, and get what they missed.
- A checkout cloned again at the same path (a new Fernet key, the old metadata database): the stack
  makes that database again, and the triggerer's Kafka watcher delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sysconfig
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import websockets
from confluent_kafka import Producer
from cryptography.fernet import Fernet

from gpubroker import settings
from gpubroker.schema import PriceChange
from tests.test_e2e_webhooks import delivered, request_through_kafka, verified
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.stack
STACK = Path(__file__).resolve().parent.parent / "astro" / "local" / "stack.sh"
STATE = Path(os.environ.get("GPUBROKER_STATE") or Path(__file__).resolve().parent.parent / ".stack")
WEBAPP = "http://127.0.0.1:8000"
AIRFLOW = "http://127.0.0.1:8080"
WS = "ws://127.0.0.1:8000/ws/providers/"
CACHED = "/api/v1/offers?gpu=H100"


def stack(*args: str) -> None:
    subprocess.run(["bash", str(STACK), *args], check=True, capture_output=True, timeout=600)


@contextlib.contextmanager
def stopped(service: str):
    """The service stopped for the block, then the stack brought up again (whatever the block did)."""
    stack("stop", service)
    try:
        yield
    finally:
        stack("up", "--no-sync")


@contextlib.asynccontextmanager
async def stopped_meanwhile(service: str):
    """`stopped`, with stopping and starting in a thread: the event loop keeps answering the open
    sockets' keepalive pings while the stack restarts a service (tens of seconds on two cores)."""
    await asyncio.to_thread(stack, "stop", service)
    try:
        yield
    finally:
        await asyncio.to_thread(stack, "up", "--no-sync")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def price_change(offer_id: str, gpu: str = "H100") -> PriceChange:
    now = datetime.now(timezone.utc)
    return PriceChange(
        event_id=str(uuid.uuid4()), provider="vastai", offer_id=offer_id, gpu=gpu, gpu_form_factor=None, gpu_count=1,
        region="Norway", country=None, continent=None, old_price="2.0", new_price="1.5", price_per_gpu="1.5",
        change_percent=-25.0, direction="down", availability="available", observed_at=now, detected_at=now,
    )  # fmt: skip


def send_changes(*changes: PriceChange) -> None:
    producer = Producer(settings.kafka_config())
    for change in changes:
        producer.produce(settings.Topics.PRICE_CHANGES, change.model_dump_json().encode(),
                         key=f"{change.provider}:{change.offer_id}".encode())  # fmt: skip
    assert producer.flush(30) == 0


class Client:
    """A WebSocket client of the live feed, subscribed to one GPU; remembers its session and last event."""

    def __init__(self, key: str, channel: str):
        self.key, self.channel = key, channel
        self.session_id: str | None = None
        self.last_event_id: str | None = None
        self.ws = None

    async def open(self, resume: bool = False) -> dict:
        self.ws = await websockets.connect(WS, additional_headers={"Authorization": f"Bearer {self.key}"}, open_timeout=10)
        hello = json.loads(await self.ws.recv())
        assert hello["type"] == "connection_established"
        if resume:
            await self.ws.send(json.dumps({"type": "resume", "session_id": self.session_id, "last_event_id": self.last_event_id}))
            answer = await self.next()
            if answer.get("code") == "feed_unavailable":  # the protocol's "reconnect shortly"
                await self.ws.close()
                raise ConnectionRefusedError(answer["message"])
            assert answer["type"] == "resumed", answer
            return answer
        self.session_id = hello["session_id"]
        await self.ws.send(json.dumps({"type": "subscribe", "channels": [self.channel]}))
        assert (await self.next())["type"] == "subscribed"
        return hello

    async def reopen(self, within: float = 60.0) -> dict:
        """Reconnect and resume, retrying while the server is coming back."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.open(resume=True)
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def next(self, timeout: float = 10.0) -> dict:
        """The next frame that is not a heartbeat."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame["type"] != "heartbeat":
                if "id" in frame and frame["type"].endswith(("_update", "_alert")):
                    self.last_event_id = frame["id"]
                return frame

    async def events(self, count: int, timeout: float = 30.0) -> list[str]:
        """The offer ids of the next `count` events (then a moment more, to catch repeats)."""
        seen, deadline = [], time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                frame = await self.next(timeout=max(0.1, deadline - time.monotonic()))
                if frame["type"] == "price_update":
                    seen.append(frame["offer_id"])
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                frame = await self.next(timeout=1.0)
                if frame["type"] == "price_update":
                    seen.append(frame["offer_id"])
        return seen

    async def closed_with(self, timeout: float = 15.0) -> int | None:
        """Wait for the server to close the socket; its close code."""
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        return self.ws.close_code


def test_redis_down_the_api_serves_limits_fall_back_and_websockets_resume(stack_api_key):
    auth = {"Authorization": f"Bearer {stack_api_key}"}
    gpu = "H100"
    for _ in range(4):  # in both workers' L2
        assert httpx.get(WEBAPP + CACHED, headers=auth, timeout=10).status_code == 200

    async def scenario():
        client = Client(stack_api_key, f"gpu:{gpu}")
        await client.open()
        send_changes(price_change("before-redis-stop"))
        assert await client.events(1) == ["before-redis-stop"]
        with stopped("redis"):
            assert await client.closed_with() == 1012  # told: the feed restarts, reconnect and resume
            with httpx.Client(base_url=WEBAPP, timeout=10) as http:
                for _ in range(6):
                    cached = http.get(CACHED, headers=auth)
                    assert cached.status_code == 200 and cached.json()["items"], cached.text
                    assert cached.headers["ratelimit-limit"]  # decided by the fallback limiter
                uncached = http.get(f"/api/v1/offers?gpu={gpu}&max_price=9999.{uuid.uuid4().int % 1000:03d}", headers=auth)
                assert uncached.status_code == 200 and uncached.headers["x-cache"] == "origin"  # PostgreSQL answers
                anonymous = [http.get(CACHED) for _ in range(12)]  # free: 10 per minute, a per-worker share now
                refused = [r for r in anonymous if r.status_code == 429]
                assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)  # never unlimited
                assert {r.status_code for r in anonymous} <= {200, 429}
                assert http.get("/readyz").status_code == 503
        resumed = await client.reopen()
        assert resumed["subscriptions"] == [f"gpu:{gpu}"]  # the session outlived the outage (AOF)
        send_changes(price_change("after-redis-start"))
        assert await client.events(1) == ["after-redis-start"]
        await client.ws.close()

    asyncio.run(scenario())
    assert httpx.get(WEBAPP + "/readyz", timeout=10).status_code == 200


def test_kafka_down_while_the_bridge_runs_loses_no_change(stack_api_key):
    async def scenario():
        client = Client(stack_api_key, "gpu:A100")
        await client.open()
        before = [price_change(f"k-before-{i}", "A100") for i in range(20)]
        await asyncio.to_thread(send_changes, *before)
        async with stopped_meanwhile("kafka"):
            await asyncio.sleep(5)  # the bridge polls a broker that is gone
        after = [price_change(f"k-after-{i}", "A100") for i in range(20)]
        await asyncio.to_thread(send_changes, *after)
        seen = await client.events(40, timeout=90)
        assert sorted(seen) == sorted(c.offer_id for c in before + after)  # each once, none lost
        await client.ws.close()

    asyncio.run(scenario())


def test_postgres_restarted_under_api_load_gives_503s_not_500s_and_recovers_within_10_s(stack_api_key):
    auth = {"Authorization": f"Bearer {stack_api_key}"}
    answers: list[tuple[float, int, str | None]] = []  # (time, status, retry-after) of uncached requests
    back_at: list[float] = []
    done = threading.Event()

    def load():
        with httpx.Client(base_url=WEBAPP, headers=auth, timeout=10) as http:
            while not done.is_set():
                # a query nobody asked before: it must reach PostgreSQL
                response = http.get(f"/api/v1/offers?max_price=9999.{uuid.uuid4().int % 10**6:06d}")
                answers.append((time.monotonic(), response.status_code, response.headers.get("retry-after")))
                if not back_at and port_open(5432) and stopped_at:
                    back_at.append(time.monotonic())
                time.sleep(0.05)

    stopped_at: list[float] = []
    editable = next(Path(sysconfig.get_paths()["purelib"]).glob("__editable__.gpubroker-*.pth"))
    installed = editable.stat().st_ctime_ns
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        time.sleep(2)
        with stopped("postgres"):
            stopped_at.append(time.monotonic())
            time.sleep(5)
        restarted_at = datetime.now(timezone.utc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (answers and answers[-1][1] == 200 and back_at):
            time.sleep(0.2)
    finally:
        done.set()
        worker.join(30)
    statuses = {status for _, status, _ in answers}
    assert statuses <= {200, 503}, statuses  # never a 500
    down = [(t, retry) for t, status, retry in answers if status == 503]
    assert down and all(retry and int(retry) >= 1 for _, retry in down)
    recovered = next(t for t, status, _ in answers if status == 200 and t > down[-1][0])
    assert back_at and recovered - back_at[0] <= 10.0, f"answered {recovered - back_at[0]:.1f} s after PostgreSQL was back"
    assert airflow_heartbeats_after(restarted_at, within=180) == {"scheduler", "triggerer", "dag_processor"}
    # `up` left our installed package alone: a component restarting meanwhile must still import it
    assert editable.stat().st_ctime_ns == installed


def airflow_heartbeats_after(moment: datetime, within: float) -> set[str]:
    """Airflow's components that heartbeat after `moment` (Airflow's health endpoint), waiting up to
    `within` seconds: they exit when PostgreSQL goes away, and the stack starts them again."""
    components = {"scheduler", "triggerer", "dag_processor"}
    deadline, beating = time.monotonic() + within, set()
    while time.monotonic() < deadline and beating != components:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(f"{AIRFLOW}/api/v2/monitor/health", timeout=10).json()
            beating = {c for c in components if (beat := (health.get(c) or {}).get(f"latest_{c}_heartbeat"))
                       and datetime.fromisoformat(beat) > moment}  # fmt: skip
        time.sleep(2)
    return beating


def webapp_workers() -> list[int]:
    supervisor = int((STATE / "run" / "webapp.pid").read_text())
    out = subprocess.run(["pgrep", "-P", str(supervisor)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in out if "multiprocessing-fork" in Path(f"/proc/{pid}/cmdline").read_text()]


def test_a_killed_webapp_worker_s_websocket_clients_reconnect_resume_and_miss_nothing(stack_api_key):
    async def scenario():
        client = Client(stack_api_key, "gpu:RTX4090")
        await client.open()
        send_changes(price_change("w-before", "RTX4090"))
        assert await client.events(1) == ["w-before"]
        workers = webapp_workers()
        assert len(workers) >= 2
        for pid in workers:  # whichever holds the socket
            os.kill(pid, signal.SIGKILL)
        assert await client.closed_with() != 1000  # dropped, not closed politely
        send_changes(*(price_change(f"w-missed-{i}", "RTX4090") for i in range(5)))  # while no worker serves
        resumed = await client.reopen()  # uvicorn replaces the dead workers
        assert resumed["subscriptions"] == ["gpu:RTX4090"]
        assert sorted(await client.events(5)) == sorted(f"w-missed-{i}" for i in range(5))  # replayed, once each
        await client.ws.close()
        assert set(webapp_workers()).isdisjoint(workers)

    asyncio.run(scenario())


@pytest.fixture
def receiver(stack_webhook_allowlist):
    r = Receiver()
    stack_webhook_allowlist("127.0.0.1")
    yield r
    r.server.should_exit = True


def test_a_checkout_cloned_again_at_the_same_path_gets_an_airflow_whose_triggerer_works(receiver):
    """PostgreSQL's data outlives a deleted checkout (PG_HOME is outside it, named after its path), so a
    new clone there meets the old Airflow database with a new Fernet key: the old trigger rows cannot be
    decrypted, and a triggerer that meets one dies (CI saw every Kafka-triggered delivery missing)."""
    log = STATE / "logs" / "airflow-triggerer.log"
    stack("airflow", "down")
    try:
        seen = log.stat().st_size
        (STATE / "airflow" / "fernet.key").write_text(Fernet.generate_key().decode() + "\n")  # what a new clone makes
    finally:
        stack("up", "--no-sync")
    assert verified(delivered(receiver, request_through_kafka(receiver.url), within=240))
    with log.open(errors="replace") as f:
        f.seek(seen)
        assert "InvalidToken" not in f.read()
