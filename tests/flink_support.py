"""Helpers for the stream tests: topics of their own, producing events, reading a topic to the end,
and running a Flink job instance on the stack's session cluster (or a cluster of the test's own).

Test jobs read and write their own uniquely named topics, so the live topics that the stack's jobs,
bridge and WebSockets consume never see test traffic.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from gpubroker import settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "flink"))
import cluster  # noqa: E402  flink/cluster.py: standard library only

STACK_CONF = ROOT / ".stack" / "flink" / "conf"
PARTITIONS = 3


@contextlib.contextmanager
def topics(*names: str) -> Iterator[dict[str, str]]:
    """Fresh topics (3 partitions and the cluster's replication, like the stack's) named
    `test.<name>.<uuid>`; deleted afterwards."""
    admin = AdminClient(settings.kafka_config())
    made = {name: f"test.{name}.{uuid.uuid4().hex[:12]}" for name in names}
    for future in admin.create_topics([NewTopic(t, PARTITIONS) for t in made.values()]).values():
        future.result(30)
    try:
        yield made
    finally:
        for future in admin.delete_topics(list(made.values())).values():
            with contextlib.suppress(KafkaException):
                future.result(30)


def producer() -> Producer:
    return Producer(settings.kafka_config() | {"linger.ms": 20, "compression.type": "zstd",
                                               "queue.buffering.max.messages": 500_000})  # fmt: skip


def produce(topic: str, events: Iterable, kafka: Producer | None = None, partition: int | None = None) -> int:
    """Send events (pydantic models with a `key`) keyed as the store sends them; returns how many."""
    kafka = kafka or producer()
    count = 0
    for event in events:
        extra = {} if partition is None else {"partition": partition}
        kafka.produce(topic, key=event.key.encode(), value=event.model_dump_json().encode(), **extra)
        count += 1
        if count % 10_000 == 0:
            kafka.poll(0)
    kafka.flush(60)
    return count


def read(topic: str, until, timeout: float, quiet: float = 3.0) -> list[tuple[str, dict]]:
    """(key, value) of every message on `topic` from the start, polled until `until(messages)` holds and
    the topic stayed quiet for `quiet` seconds (so a wrong extra message is seen too), or `timeout`."""
    consumer = Consumer(settings.kafka_config() | {"group.id": f"test-{uuid.uuid4()}", "auto.offset.reset": "earliest",
                                                   "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    messages: list[tuple[str, dict]] = []
    deadline, last = time.monotonic() + timeout, time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = [m for m in consumer.consume(5000, timeout=0.5) if not m.error()]
            messages += [(m.key().decode(), json.loads(m.value())) for m in batch]
            if batch:
                last = time.monotonic()
            elif until(messages) and time.monotonic() - last >= quiet:
                break
    finally:
        consumer.close()
    return messages


def stack_rest() -> str:
    rest = cluster.rest_url(STACK_CONF) if (STACK_CONF / "config.yaml").exists() else settings.FLINK_REST_URL
    if not cluster.up(rest):
        raise RuntimeError(f"the stack's Flink cluster is not running at {rest}: run `make up`")
    return rest


@contextlib.contextmanager
def job(script: str, conf: Path = STACK_CONF, env: dict | None = None, **arguments: str) -> Iterator[str]:
    """A job instance (flink/<script>.py) on the cluster of `conf`, running until the block ends;
    arguments become `--name value` job arguments, `env` its settings. Yields the job id."""
    name = f"test-{script}-{uuid.uuid4().hex[:8]}"
    args = [a for key, value in arguments.items() for a in (f"--{key.replace('_', '-')}", value)]
    args += ["--group-id", name]
    rest = cluster.rest_url(conf)
    job_id = cluster.submit(conf, ROOT / "flink" / f"{script}.py", name, args, env=env)
    try:
        cluster.wait_running(rest, job_id, timeout=180)
        yield job_id
    finally:
        with contextlib.suppress(OSError):
            cluster.cancel(rest, job_id)


class OwnCluster:
    """A standalone session cluster of the test's own (JobManager + 2 TaskManagers with 2 slots each),
    configured and started exactly as the stack's (flink/cluster.py, the distribution's scripts), on
    free ports with its state under `state`; stopped (by pid) when the test ends."""

    def __init__(self, state: Path, rest_port: int, rpc_port: int):
        self.state, self.rest = state, f"http://127.0.0.1:{rest_port}"
        self.conf = cluster.write_conf(state, rest_port, rpc_port, slots=2)
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, role: str, name: str) -> None:
        env = os.environ | {"FLINK_CONF_DIR": str(self.conf), "FLINK_LOG_DIR": str(self.state / "log")}
        log = open(self.state / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(cluster.process_command(role), env=env, stdout=log, stderr=log,
                                                start_new_session=True)  # fmt: skip

    def __enter__(self) -> OwnCluster:
        self.start("jobmanager", "jobmanager")
        cluster.wait_until(lambda: cluster.up(self.rest), 180, "the test JobManager")
        for n in (1, 2):
            self.start("taskmanager", f"taskmanager-{n}")
        cluster.wait_until(lambda: cluster.get(self.rest, "/overview")["taskmanagers"] == 2, 180, "2 TaskManagers")
        return self

    def task_manager_pids(self) -> dict[str, int]:
        """TaskManager resource id (as the REST API names it) -> the pid of its JVM."""
        found = {}
        for tm in cluster.get(self.rest, "/taskmanagers")["taskmanagers"]:
            for name in ("taskmanager-1", "taskmanager-2"):
                process = self.processes[name]
                if process.poll() is None and tm["id"] in (self.state / f"{name}.log").read_text(errors="replace"):
                    found[tm["id"]] = process.pid
        return found

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def __exit__(self, *exc) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
