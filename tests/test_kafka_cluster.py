"""Three Kafka brokers (`GPUBROKER_KAFKA_BROKERS=3`): one killed during a sync and a burst loses nothing
and repeats nothing.

The cluster is the test's own, started by the stack's own script (`stack.sh kafka up` with another
state directory and ports: three KRaft nodes, replication factor 3, min.insync.replicas 2, SASL and
ACLs), so the stack's Kafka is untouched. As the `pipeline` principal, the pipeline's producer sends
a burst while the outbox relay publishes what a vendor sync lands; the broker leading a partition of
`gpubroker.price-updates` is killed (SIGKILL) a few seconds into the burst, the sync runs while it is
down, and it is started again afterwards and rejoins every partition's in-sync replicas. Every burst
message and every event of the sync's outbox is then on its topic exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from gpubroker import events, relay, settings
from gpubroker.settings import Topics
from gpubroker_provider import sync
from tests.conftest import REPLAY_KEY, ROOT

STACK = ROOT / "astro" / "local" / "stack.sh"
BURST = 20_000
BURST_SECONDS = 10.0
NODES = ("kafka", "kafka-2", "kafka-3")  # broker id n is stack.sh's service NODES[n - 1]


def free_port_base() -> int:
    """A port P with P..P+5 free on loopback: three nodes' client and controller ports."""
    for base in range(39100, 40000, 10):
        with contextlib.ExitStack() as held:
            sockets = [held.enter_context(socket.socket()) for _ in range(6)]
            try:
                for offset, s in enumerate(sockets):
                    s.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise RuntimeError("no six free ports between 39100 and 40000")


@dataclass
class Cluster:
    state: Path
    env: dict[str, str]
    bootstrap: str
    secrets: dict[str, str] = field(default_factory=dict)

    def stack(self, *args: str) -> None:
        done = subprocess.run(["bash", str(STACK), *args], env=self.env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"stack.sh {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"

    def config(self, principal: str) -> dict:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": principal, "sasl.password": self.secrets[f"KAFKA_PASSWORD_{principal.upper()}"]}  # fmt: skip

    def kill(self, broker: int) -> None:
        pid = int((self.state / "run" / f"{NODES[broker - 1]}.pid").read_text())
        os.killpg(pid, signal.SIGKILL)  # the JVM dies at once: no controlled shutdown, no leader handover


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    state = tmp_path_factory.mktemp("kafka-cluster")
    base = free_port_base()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBROKER_", "KAFKA_", "REDIS_"))}
    env |= {"GPUBROKER_STATE": str(state), "GPUBROKER_PORT_KAFKA": str(base), "GPUBROKER_KAFKA_BROKERS": "3"}
    made = Cluster(state, env, ",".join(f"127.0.0.1:{base + 2 * i}" for i in range(3)))
    try:
        made.stack("kafka", "up")
        lines = (state / "secrets.env").read_text().splitlines()
        made.secrets = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
        yield made
    finally:
        made.stack("kafka", "down")


def partitions(admin: AdminClient, topic: str) -> dict[int, tuple[int, list[int]]]:
    """Partition -> (leader, in-sync replicas)."""
    found = admin.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: (m.leader, sorted(m.isrs)) for p, m in found.items()}


def read_everything(config: dict, topic: str) -> list[dict]:
    """Every message on `topic`, from its first offset to its end."""
    consumer = Consumer(config | {"group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False})
    count = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(count)}
    consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
    got, at, deadline = [], dict.fromkeys(ends, 0), time.monotonic() + 120
    while any(at[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for message in consumer.consume(10_000, timeout=1):
            if not message.error():
                got.append(json.loads(message.value()))
                at[message.partition()] = message.offset() + 1
    consumer.close()
    assert all(at[p] >= ends[p] for p in ends), (at, ends)
    return got


@pytest.fixture
def vastai_sync(pg_url, replay, isolated_redis, tmp_path, monkeypatch):
    """sync.sync_provider("vastai") against the in-process replay server and the test database."""
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VASTAI", json.dumps(
        {"conn_type": "gpubroker_vastai", "host": replay.vendor_url("vastai"), "password": REPLAY_KEY}))  # fmt: skip
    return lambda: sync.sync_provider("vastai")


def test_a_broker_killed_during_a_sync_and_a_burst_loses_and_repeats_nothing(cluster, vastai_sync, pg, monkeypatch):
    admin = AdminClient(cluster.config("admin"))
    layout = partitions(admin, Topics.PRICE_UPDATES)
    assert all(len(isr) == 3 for _, isr in layout.values())  # replication factor 3, all in sync
    victim = layout[0][0]
    led = {p for p, (leader, _) in layout.items() if leader == victim}
    monkeypatch.setattr(settings, "KAFKA_BOOTSTRAP", cluster.bootstrap)  # the pipeline's clients, as the pipeline
    monkeypatch.setattr(settings, "KAFKA_USER", "pipeline")
    monkeypatch.setattr(settings, "KAFKA_PASSWORD", cluster.secrets["KAFKA_PASSWORD_PIPELINE"])

    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll": 0.5}, daemon=True)
    relaying.start()
    burst_ids = [str(uuid.uuid4()) for _ in range(BURST)]
    delivered: list[tuple[float, float, int, str | None]] = []  # (sent, acknowledged, partition, error)

    def acknowledged(error, message, sent: float) -> None:
        delivered.append((sent, time.monotonic(), message.partition(), error and str(error)))

    def send_burst() -> None:
        producer = events.producer()  # the relay's own settings: idempotent, acks=all
        started = time.monotonic()
        for n, event_id in enumerate(burst_ids):
            producer.produce(Topics.PRICE_UPDATES, key=event_id.encode(), value=json.dumps({"type": "burst", "event_id": event_id}),
                             on_delivery=functools.partial(acknowledged, sent=time.monotonic()))  # fmt: skip
            producer.poll(0)
            time.sleep(max(0.0, started + BURST_SECONDS * n / BURST - time.monotonic()))
        assert producer.flush(120) == 0

    bursting = threading.Thread(target=send_burst)
    bursting.start()
    while len(delivered) < BURST // 4:
        time.sleep(0.05)
    cluster.kill(victim)
    killed = time.monotonic()
    summary = vastai_sync()  # lands while a broker is dead; the relay publishes as it commits
    bursting.join(180)
    deadline = time.monotonic() + 120
    while pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    relaying.join(30)
    restarted = time.monotonic()
    cluster.stack("kafka", "up")  # starts the one node that is down; it catches up
    while any(len(isr) < 3 for _, isr in partitions(admin, Topics.PRICE_UPDATES).values()):
        assert time.monotonic() - restarted < 180, partitions(admin, Topics.PRICE_UPDATES)
        time.sleep(1)
    healed = time.monotonic()

    assert summary["landed"] > 0
    assert [d for d in delivered if d[3]] == [] and len(delivered) == BURST  # every burst message acknowledged
    # sent to a partition of the dead broker after it died, and acknowledged before it was back: a new leader took it
    during = [(sent, acked) for sent, acked, partition, _ in delivered if killed < sent and acked < restarted and partition in led]
    assert during, "no write reached a partition of the killed broker while it was down"
    outbox = pg.execute("SELECT topic, event_id::text FROM event_outbox WHERE published_at IS NOT NULL").fetchall()
    assert pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0] == 0
    assert len(outbox) >= summary["landed"]  # an offer_observed per landed offer, and the sync's provider call
    on_kafka = {topic: Counter(m["event_id"] for m in read_everything(cluster.config("admin"), topic))
                for topic in {topic for topic, _ in outbox} | {Topics.PRICE_UPDATES}}  # fmt: skip
    burst_seen = Counter({i: on_kafka[Topics.PRICE_UPDATES][i] for i in burst_ids})
    assert set(burst_seen.values()) == {1}  # each once: nothing lost, nothing repeated
    assert {(topic, event_id): on_kafka[topic][event_id] for topic, event_id in outbox} == dict.fromkeys(outbox, 1)
    print(f"\nkilled broker {victim} (leader of partitions {sorted(led)}) after {BURST // 4} of {BURST} messages; "
          f"its partitions took writes again {min(acked for _, acked in during) - killed:.1f} s later; "
          f"slowest acknowledgement {max(acked - sent for sent, acked, _, _ in delivered):.1f} s; "
          f"{len(outbox)} outbox events of the sync ({summary['landed']} offers) and {BURST} burst messages on "
          f"Kafka once each; the restarted broker was back in every ISR {healed - restarted:.1f} s after `kafka up`")
