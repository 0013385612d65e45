"""Change detection throughput and latency on the stack's Flink cluster, with 100k and 1M offers in state.

A change job instance (flink/price_changes.py, parallelism 2, RocksDB, checkpoints every 10 s) runs on
topics of its own. For each state size N:
- load: N new offers (each gives one `availability_change`): events/s until the last output arrived;
- sustained: a backlog of `--changes` observations of known offers, every one a new price (one
  `price_change` each): events/s from the first send to the last output;
- latency: `--rate` changes/s for `--seconds`, paced: send -> `price_change` consumed, p50/p99.
Baseline, same run and machine: Kafka alone (the same backlog read straight back by one consumer),
the ceiling any consumer of the topic has. The job's restart count is read from the REST API.

Usage: .venv/bin/python bench/flink.py [--states 100000 1000000] [--changes 300000] [--rate 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from gpubroker import settings
from gpubroker.schema import derived_id, observation_id

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "flink"))
import cluster  # noqa: E402  flink/cluster.py

CONF = ROOT / ".stack" / "flink" / "conf"
KAFKA = settings.kafka_config()


def event(i: int, price: float, hour: int, old_price: float | None) -> tuple[bytes, bytes, str]:
    """(key, value, event_id) of an `offer_observed` event of offer i (gpubroker.schema.OfferObserved)."""
    at = f"2026-11-26T{hour:02d}:00:00.000000Z"
    event_id = observation_id("bench", f"o{i}", _time(hour))
    value = {"type": "offer_observed", "event_id": event_id, "provider": "bench", "offer_id": f"o{i}", "gpu": "H100",
             "gpu_form_factor": "SXM", "gpu_count": 8, "region": "Norway", "country": "NO", "continent": "EU",
             "price_per_hour": price, "price_per_gpu": round(price / 8, 4), "spot_price": None,
             "availability": "available", "available_count": 1, "old_price": old_price,
             "old_availability": None if old_price is None else "available", "observed_at": at}  # fmt: skip
    return f"bench:o{i}".encode(), orjson.dumps(value), event_id


def _time(hour: int):
    from datetime import datetime, timezone

    return datetime(2026, 11, 26, hour, tzinfo=timezone.utc)


def send(producer: Producer, topic: str, events, sent_at: dict | None = None) -> int:
    count = 0
    for key, value, event_id in events:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if sent_at is not None:
            sent_at[event_id] = time.time()
        count += 1
        if count % 20_000 == 0:
            producer.poll(0)
    return count


class Outputs:
    """Counts (and times) the job's output messages in a thread, from the topic's start."""

    def __init__(self, topic: str):
        self.count, self.received, self.last = 0, {}, 0.0
        self.consumer = Consumer(KAFKA | {"group.id": f"bench-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
        self.consumer.subscribe([topic])
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while self.running:
            for message in self.consumer.consume(10_000, timeout=0.2):
                if message.error():
                    continue
                now = time.time()
                self.count += 1
                self.last = now
                value = orjson.loads(message.value())
                self.received.setdefault(value["event_id"], now)

    def wait_for(self, count: int, timeout: float = 1800) -> float:
        """Until `count` messages came in; returns when the last of them arrived."""
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count} of {count} outputs after {timeout:.0f} s")
            time.sleep(0.05)
        return self.last

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.consumer.close()


def kafka_alone(topic: str, count: int) -> float:
    """Baseline: events/s one consumer reads `count` messages of `topic` straight from Kafka."""
    consumer = Consumer(KAFKA | {"group.id": f"bench-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < count:
        batch = [m for m in consumer.consume(10_000, timeout=1) if not m.error()]
        if batch and started is None:
            started = time.perf_counter()
        for message in batch:
            orjson.loads(message.value())  # as a consumer that reads the events would
        seen += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed


@contextlib.contextmanager
def topics(*names: str):
    admin = AdminClient(KAFKA)
    made = {n: f"bench.{n}.{uuid.uuid4().hex[:10]}" for n in names}
    for future in admin.create_topics([NewTopic(t, 3) for t in made.values()]).values():
        future.result(30)
    try:
        yield made
    finally:
        for future in admin.delete_topics(list(made.values())).values():
            with contextlib.suppress(Exception):
                future.result(30)


def measure(state: int, changes: int, rate: int, seconds: int, options: list[str] = ()) -> dict:
    assert changes <= 6 * state and seconds <= 39 and rate * seconds <= state, "event times would repeat"
    rest = cluster.rest_url(CONF)
    producer = Producer(KAFKA | {"linger.ms": 20, "compression.type": "zstd", "queue.buffering.max.messages": 1_000_000})
    with topics("observations", "changes") as made:
        name = f"bench-price-changes-{uuid.uuid4().hex[:8]}"
        job_id = cluster.submit(CONF, ROOT / "flink" / "price_changes.py", name,
                                ["--source-topic", made["observations"], "--changes-topic", made["changes"], "--group-id", name,
                                 *[a for o in options for a in ("--set", o)]])  # fmt: skip
        try:
            cluster.wait_running(rest, job_id, timeout=300)
            outputs = Outputs(made["changes"])
            started = time.time()  # load: N new offers
            send(producer, made["observations"], (event(i, 16.0, 12, None) for i in range(state)))
            producer.flush(120)
            load = state / (outputs.wait_for(state) - started)

            started = time.time()  # sustained: a backlog of changes to known offers (16 -> 15 -> 16 ... per round)
            send(producer, made["observations"], (event(i % state, 15.0 + (i // state) % 2, 13 + i // state,
                                                         16.0 - (i // state) % 2) for i in range(changes)))  # fmt: skip
            producer.flush(120)
            sustained = changes / (outputs.wait_for(state + changes) - started)
            baseline = kafka_alone(made["observations"], state + changes)

            sent_at: dict[str, float] = {}  # latency: paced changes
            for second in range(seconds):
                tick = time.monotonic()
                first = (second * rate) % state
                send(producer, made["observations"],
                     (event((first + j) % state, 14.0 - second / 100, 20 + second // 10, 15.0) for j in range(rate)), sent_at)  # fmt: skip
                producer.flush(10)
                time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
            outputs.wait_for(state + changes + len(sent_at), timeout=300)
            time.sleep(1)
            latencies = sorted(outputs.received[derived_id(e, "price_change")] - t for e, t in sent_at.items())
            outputs.close()
            restarts = cluster.restarts(rest, job_id)
            checkpoints = cluster.checkpoints(rest, job_id)
        finally:
            cluster.cancel(rest, job_id)
    return {"state": state, "load": load, "sustained": sustained, "kafka_alone": baseline,
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
            "restarts": restarts, "checkpoints": checkpoints["counts"],
            "state_bytes": (checkpoints["latest"] or {}).get("state_size") or (checkpoints["latest"] or {}).get("checkpointed_size")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--changes", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=2000, help="paced changes per second for the latency run")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Flink option for the job")
    args = parser.parse_args()
    print("| offers in state | load (new offers) | sustained changes | Kafka alone (baseline) | latency p50 / p99 | restarts | checkpoints ok/failed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for state in args.states:
        r = measure(state, args.changes, args.rate, args.seconds, args.set)
        print(f"| {r['state']:,} | {r['load']:,.0f}/s | {r['sustained']:,.0f}/s | {r['kafka_alone']:,.0f}/s "
              f"| {r['p50_ms']:,.0f} / {r['p99_ms']:,.0f} ms | {r['restarts']} "
              f"| {r['checkpoints']['completed']}/{r['checkpoints']['failed']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
