"""Freshness on the running stack: landing commit -> Kafka, commit -> WebSocket client, and a vendor's
sync trigger -> client.

1. **Landings** (`--landings` of `--offers` offers each, `--rate` a second): each one lands through
   `store.land`, the sync's own landing, in one transaction, every price changed. The outbox relay
   publishes it (`landed_at`: the commit's time, from PostgreSQL); a Kafka consumer on
   `gpubroker.price-updates` and a WebSocket client subscribed to the bench's region note when each
   event arrives. Reported: commit -> Kafka and commit -> client, p50 / p99 / max, over every event
   (the client path: Kafka -> Flink price_changes -> Kafka -> feed bridge -> Redis -> webapp -> socket).
   The bench's offers are of a provider of its own (`freshness-bench`), deleted afterwards.
2. **Syncs** (`--syncs` rounds, `--vendor`): the replay server's recording of the vendor gets a new
   price for one offer (`PUT /__replay__/...`), its sync DAG `gpubroker_sync_<vendor>` is triggered
   through Airflow's REST API, and a WebSocket client subscribed to `provider:<vendor>` waits for
   that offer's `price_update`. Reported per round: trigger -> client, and commit -> client.
   Goals (issue #20): commit -> Kafka p99 <= 100 ms, commit -> client p99 <= 1 s, trigger -> client <= 45 s.

Needs the running stack (`make up`) and its credentials in the environment:
  set -a; . .stack/secrets.env; set +a
  .venv/bin/python bench/freshness.py [--landings 300 --rate 5 --offers 10] [--syncs 5 --vendor vastai]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "plugins"))

import httpx  # noqa: E402
import websockets  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from gpubroker import settings, store  # noqa: E402
from gpubroker.schema import Offer  # noqa: E402
from gpubroker_provider.airflow_api import AirflowApi  # noqa: E402

BENCH = "freshness-bench"  # the landings' provider and region: nobody else's
WS_URL = settings.WEBAPP_URL.replace("http", "ws", 1) + "/ws/providers/"
REPLAY_URL = settings.REPLAY_URL or "http://127.0.0.1:8765"


def age_ms(landed_at: str | None, received: float) -> float | None:
    """Milliseconds from a landing's commit (ISO time) to a wall-clock receipt."""
    return None if landed_at is None else (received - datetime.fromisoformat(landed_at).timestamp()) * 1000


def summary(name: str, values: list[float], goal_ms: float) -> str:
    if not values:
        return f"{name:<26} no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    verdict = "met" if p99 <= goal_ms else "MISSED"
    return (f"{name:<26} n={len(values):<6} p50 {statistics.median(ordered):8.1f} ms  p99 {p99:8.1f} ms  "
            f"max {ordered[-1]:8.1f} ms   (goal p99 <= {goal_ms:g} ms: {verdict})")  # fmt: skip


# --- 1. landings --------------------------------------------------------------------------------
def kafka_tail() -> Consumer:
    """A consumer of gpubroker.price-updates positioned at its end now."""
    consumer = Consumer(settings.kafka_config() | {"group.id": f"bench-{uuid.uuid4()}", "enable.auto.commit": False})
    topic = settings.Topics.PRICE_UPDATES
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions]
    consumer.assign([TopicPartition(topic, p, end) for p, end in zip(partitions, ends)])
    return consumer


def consume_kafka(consumer: Consumer, ages: list[float], stop: threading.Event) -> None:
    while not stop.is_set():
        message = consumer.poll(0.2)  # returns as soon as a message is there (consume() waits to fill a batch)
        received = time.time()
        if message is None or message.error() or not message.key().startswith(BENCH.encode()):
            continue
        ages.append(age_ms(json.loads(message.value())["landed_at"], received))
    consumer.close()


async def listen(channel: str, key: str, until: float, frames: list[tuple[float, dict]], ready: asyncio.Event) -> None:
    """Every price_update frame on `channel`, with when it arrived, until `until` (monotonic)."""
    async with websockets.connect(WS_URL, additional_headers={"Authorization": f"Bearer {key}"}) as socket:
        await socket.send(json.dumps({"type": "subscribe", "channels": [channel]}))
        while (left := until - time.monotonic()) > 0:
            try:
                frame = json.loads(await asyncio.wait_for(socket.recv(), left))
            except TimeoutError:
                break
            if frame["type"] == "subscribed":
                ready.set()
            elif frame["type"] == "price_update":
                frames.append((time.time(), frame))


def bench_offers(count: int, price: Decimal, at: datetime) -> list[Offer]:
    return [Offer(provider=BENCH, offer_id=f"{BENCH}-{i}", instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                  gpu_count=1, gpu_memory_gb=80, price_per_hour=price + Decimal(i) / 100, region=BENCH,
                  availability="available", observed_at=at) for i in range(count)]  # fmt: skip


def land(price: Decimal, offers: int) -> None:
    at = datetime.now(timezone.utc)
    with store.connect() as conn:
        store.land(conn, BENCH, bench_offers(offers, price, at), at)


async def landings(args: argparse.Namespace, key: str) -> None:
    land(Decimal("1.00"), args.offers)  # the region exists before the client subscribes to it
    kafka_ages: list[float] = []
    stop = threading.Event()
    consumer = threading.Thread(target=consume_kafka, args=(kafka_tail(), kafka_ages, stop), daemon=True)
    consumer.start()
    frames: list[tuple[float, dict]] = []
    ready = asyncio.Event()
    duration = args.landings / args.rate
    client = asyncio.create_task(listen(f"region:{BENCH}", key, time.monotonic() + duration + 20, frames, ready))
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(1)
    started = time.monotonic()
    for i in range(args.landings):
        await asyncio.to_thread(land, Decimal("2.00") + Decimal(i % 50) / 10, args.offers)
        await asyncio.sleep(max(0.0, started + (i + 1) / args.rate - time.monotonic()))
    expected = args.landings * args.offers
    deadline = time.monotonic() + 20
    while (len(kafka_ages) < expected + args.offers or len(frames) < expected) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    stop.set()
    client.cancel()
    client_ages = [age_ms(f.get("landed_at"), t) for t, f in frames if f["provider"] == BENCH]
    print(f"landings: {args.landings} of {args.offers} offers at {args.rate}/s; "
          f"Kafka got {len(kafka_ages)} events, the client {len(client_ages)} price updates (expected {expected})")
    print(summary("commit -> Kafka", [a for a in kafka_ages if a is not None], 100))
    print(summary("commit -> WebSocket client", [a for a in client_ages if a is not None], 1000))


def clean_up() -> None:
    with store.connect() as conn, conn.transaction():
        for table in ("offers", "price_history", "provider_status"):
            conn.execute(f"DELETE FROM {table} WHERE provider = %s", (BENCH,))


# --- 2. syncs -------------------------------------------------------------------------------------
def changed_recording(vendor: str, step: int) -> tuple[str, str, bytes]:
    """(payload name, offer id, body): the vendor's main recording with one offer's price changed."""
    if vendor != "vastai":
        raise SystemExit("--vendor: only vastai's recording is changed by this bench so far")
    body = json.loads((ROOT / "plugins/gpubroker_provider/replay/recordings/vastai/bundles.json").read_text())
    first = body["offers"][0]
    first["dph_total"] = round(first["dph_total"] * (1 + 0.05 * step), 4)
    return "bundles.json", str(first["id"]), json.dumps(body).encode()


async def syncs(args: argparse.Namespace, key: str) -> None:
    airflow, dag_id = AirflowApi(), f"gpubroker_sync_{args.vendor}"
    results = []
    for step in range(1, args.syncs + 1):
        payload, offer_id, body = changed_recording(args.vendor, step)
        httpx.put(f"{REPLAY_URL}/__replay__/{args.vendor}/{payload}", content=body).raise_for_status()
        frames: list[tuple[float, dict]] = []
        ready = asyncio.Event()
        client = asyncio.create_task(listen(f"provider:{args.vendor}", key, time.monotonic() + 120, frames, ready))
        await asyncio.wait_for(ready.wait(), 10)
        triggered = time.time()
        run_id = await asyncio.to_thread(airflow.trigger, dag_id)
        while not (mine := [(t, f) for t, f in frames if offer_id in f["offer_id"]]) and not client.done():
            await asyncio.sleep(0.1)
        client.cancel()
        if not mine:
            print(f"sync {step}: no price_update for offer {offer_id} within 120 s (run {run_id})")
            continue
        received, frame = mine[0]
        results.append(received - triggered)
        print(f"sync {step}: trigger -> client {received - triggered:6.1f} s, commit -> client "
              f"{age_ms(frame['landed_at'], received):7.1f} ms  ({run_id})")  # fmt: skip
        await asyncio.to_thread(airflow.wait, dag_id, run_id, 120)
    httpx.delete(f"{REPLAY_URL}/__replay__").raise_for_status()
    if results:
        print(f"trigger -> client: max {max(results):.1f} s over {len(results)} syncs (goal <= 45 s: "
              f"{'met' if max(results) <= 45 else 'MISSED'})")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landings", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="landings a second")
    parser.add_argument("--offers", type=int, default=10, help="offers per landing, every price changed")
    parser.add_argument("--syncs", type=int, default=5, help="vendor sync rounds (0: none)")
    parser.add_argument("--vendor", default="vastai")
    args = parser.parse_args()
    if not (key := settings.WEBAPP_API_KEY):
        raise SystemExit("GPUBROKER_WEBAPP_API_KEY is not set: run `set -a; . .stack/secrets.env; set +a` first")
    try:
        if args.landings:
            await landings(args, key)
    finally:
        clean_up()
    if args.syncs:
        await syncs(args, key)


if __name__ == "__main__":
    asyncio.run(main())
