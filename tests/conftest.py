"""Shared fixtures. Services are the real ones started by `make test` (astro/local/stack.sh)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import uuid
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import redis
import uvicorn
from confluent_kafka import Consumer, TopicPartition

from gpubroker import settings, store
from gpubroker_provider.replay.server import create_app
from tests.webapp_fixtures import KEYS_USED, api, live_webapp, unlimited_key, webapp  # noqa: F401 (fixtures)

# Airflow reads its config on import: keep the test process's Airflow home out of the user's.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="gpubroker-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

ROOT = Path(__file__).resolve().parent.parent
STACK_REPLAY_URL = "http://127.0.0.1:8765"
REPLAY_KEY = "replay-key"
RECORDINGS = ROOT / "plugins" / "gpubroker_provider" / "replay" / "recordings"
STATE = Path(os.environ.get("GPUBROKER_STATE") or ROOT / ".stack")


def stack_secrets() -> dict[str, str]:
    """The local stack's generated credentials (`.stack/secrets.env`, mode 600, written by
    astro/local/stack.sh): PostgreSQL role passwords, the database URLs, the webapp's secret key, the
    Kafka principals' and Redis users' passwords, and the operator's (admin's) Kafka and Redis settings."""
    path = STATE / "secrets.env"
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


# The stack's settings the tests take from secrets.env (unless given in the environment), so that
# they and every process they start connect as the stack's operator: its database role, and Kafka's
# and Redis's admin (tests create topics, read every topic and empty Redis databases).
AS_THE_OPERATOR = {"GPUBROKER_DATABASE_URL": "DATABASE_URL", "GPUBROKER_KAFKA_USER": "KAFKA_USER",
                   "GPUBROKER_KAFKA_PASSWORD": "KAFKA_PASSWORD", "GPUBROKER_REDIS_URL": "REDIS_URL"}  # fmt: skip


def _connect_as_the_stack() -> None:
    """Take AS_THE_OPERATOR's settings from secrets.env. pytest-django read Django's settings before
    this file, so their connection settings are updated too (in place, before any connection is opened)."""
    secrets = stack_secrets()
    for name, attribute in AS_THE_OPERATOR.items():
        if name not in os.environ and name in secrets:
            os.environ[name] = secrets[name]
            setattr(settings, attribute, secrets[name])
            if name == "GPUBROKER_DATABASE_URL":
                from django.conf import settings as django_settings

                parts = urlsplit(secrets[name])
                django_settings.DATABASES["default"].update(USER=unquote(parts.username), PASSWORD=unquote(parts.password))


_connect_as_the_stack()


def stack_logs(*services: str, lines: int = 25) -> str:
    """The last lines of stack services' logs, for a failure message: all CI shows of the stack."""
    noise = ("|FAIL|rdkafka", "Exception received:")  # the Kafka client's retries while the broker is away
    tails = []
    for service in services:
        log = STATE / "logs" / f"{service}.log"
        kept = [line for line in log.read_text(errors="replace").splitlines() if line.strip()
                and not any(n in line for n in noise)] if log.exists() else ["(no log)"]  # fmt: skip
        tails.append(f"--- {service} (last {lines} lines) ---")
        tails.extend(line[:300] for line in kept[-lines:])
    return "\n".join(tails)


def kafka_tail(topic: str) -> Consumer:
    """A consumer positioned at the topic's current end: it sees every message produced from now on,
    whoever produces it and however soon (no group rebalance, no "latest" offset race)."""
    consumer = Consumer(settings.kafka_config() | {"group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions]
    consumer.assign([TopicPartition(topic, p, end) for p, end in zip(partitions, ends)])
    return consumer


def recording(vendor: str, name: str) -> dict:
    return json.loads((RECORDINGS / vendor / name).read_text())


class Replay:
    """A replay server: swap a vendor payload, queue faults, then put the recordings back."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def vendor_url(self, vendor: str) -> str:
        return f"{self.base_url}/{vendor}"

    def put(self, vendor: str, name: str, payload) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        httpx.put(f"{self.base_url}/__replay__/{vendor}/{name}", content=body).raise_for_status()

    def faults(self, vendor: str, *faults: dict) -> None:
        httpx.post(f"{self.base_url}/__replay__/{vendor}/faults", json=list(faults)).raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.base_url}/__replay__").raise_for_status()


@pytest.fixture(scope="session")
def replay_server():
    """An in-process replay server on a free port, so vendor tests need no stack and share no state."""
    config = uvicorn.Config(create_app(api_key=REPLAY_KEY), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Replay(f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def replay(replay_server):
    replay_server.reset()
    yield replay_server
    replay_server.reset()


@pytest.fixture
def stack_replay():
    """The running stack's replay server (port 8765), the one Airflow's connections point at."""
    server = Replay(STACK_REPLAY_URL)
    try:
        httpx.get(f"{server.base_url}/__replay__/health", timeout=2).raise_for_status()
    except httpx.HTTPError as error:
        pytest.fail(f"the stack's replay server is not running ({error}); run the tests with `make test`")
    server.reset()
    yield server
    server.reset()


STACK_KEY_NAME = "tests against the running stack"


@pytest.fixture(scope="session")
def stack_api_key() -> str:
    """An unlimited API key in the running stack's database (stored as `create_api_key` stores it),
    so tests asking the stack's webapp are not rate-limited as one anonymous IP; revoked afterwards."""
    import hashlib
    import secrets

    key = "gpb_" + secrets.token_urlsafe(32)
    KEYS_USED.add(key)
    with store.connect() as conn:
        conn.execute(
            "INSERT INTO api_keys (name, plan, digest, prefix, created_at) VALUES (%s, 'unlimited', %s, %s, now())",
            (STACK_KEY_NAME, hashlib.sha256(key.encode()).hexdigest(), key[:12]),
        )
    yield key
    with store.connect() as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE digest = %s", (hashlib.sha256(key.encode()).hexdigest(),))


@pytest.fixture(scope="module")
def stack_webhook_allowlist():
    """Allow-list hosts as webhook targets in the running stack's database, for one test module: for
    the operator's own webhooks, or for the alert rules of API key `key`; entries that were not there
    before are removed again afterwards."""
    added: list[int] = []

    def allow(host: str, key: str | None = None) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest() if key else None
        with store.connect() as conn:
            row = conn.execute(
                "INSERT INTO webhook_allowlist (host, key_id, note, added_at)"
                " VALUES (%s, (SELECT id FROM api_keys WHERE digest = %s), 'tests', now()) ON CONFLICT DO NOTHING RETURNING id",
                (host, digest),
            ).fetchone()
        if row:
            added.append(row[0])

    yield allow
    with store.connect() as conn:
        conn.execute("DELETE FROM webhook_allowlist WHERE id = ANY(%s)", (added,))


# A Redis database of the tests' own, as the admin (GPUBROKER_TEST_REDIS_DB lets two test runs share one Redis).
ISOLATED_REDIS = urlsplit(settings.REDIS_URL)._replace(path=f"/{os.environ.get('GPUBROKER_TEST_REDIS_DB', '15')}").geturl()


@pytest.fixture
def isolated_redis(monkeypatch):
    """The real Redis, in a database of its own (emptied before and after), as the settings' Redis:
    the running stack's health checks and breakers (database 0) cannot interfere."""
    client = redis.Redis.from_url(ISOLATED_REDIS)
    client.flushdb()
    monkeypatch.setattr(settings, "REDIS_URL", ISOLATED_REDIS)
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """No persistent connections in tests: threads of async tests must not hold the test DB open."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture
def pg_url(transactional_db, settings) -> str:
    """psycopg URL of pytest-django's test database (migrated by the webapp's migrations)."""
    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def pg(pg_url):
    with store.connect(pg_url) as conn:
        yield conn
