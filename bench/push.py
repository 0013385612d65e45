"""Live-feed fan-out: N price changes produced on Kafka reach 1, 1,000 and 10,000 WebSocket clients.

Each event is produced on `gpubroker.price-changes` (as the Flink job emits them) with its
`detected_at` set to the moment it is produced; every client notes when each event arrives. Reported
per run: deliveries / expected, and Kafka -> client latency p50 / p99 over every delivery. The path
measured is the product's: Kafka -> feed bridge -> Redis stream -> each webapp worker -> sockets.

Clients subscribe to one GPU channel each (`gpu:<model>`, over `--models` models, round robin), so
every event reaches 1/models of them; `--everything` subscribes all of them to `price_updates`.
They run in `--processes` processes (the bench's own CPU is counted against the machine, not hidden).

`--burst` produces every event at once (e.g. 50,000 changes of 50,000 offers) and listens up to
90 s: the max column is then how long the feed took to deliver the whole burst.

Needs the running stack (`make up`). Usage:
  .venv/bin/python bench/push.py [--clients 1,1000,10000] [--events 50] [--rate 10]
  .venv/bin/python bench/push.py --clients 100 --events 50000 --burst
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))

from confluent_kafka import Producer  # noqa: E402

from gpubroker import settings  # noqa: E402

MODELS = ["H100", "A100", "H200", "B200", "L40S", "L4", "A10", "V100", "RTX4090", "RTX3090"]


def raise_fd_limit() -> None:
    """One file descriptor per client: as many as the hard limit allows."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def event(model: str, n: int) -> dict:
    now = datetime.now(timezone.utc).isoformat()
    return {
        "type": "price_change", "event_id": str(uuid.uuid4()), "provider": "vastai", "offer_id": f"bench-{n}",
        "gpu": model, "gpu_form_factor": None, "gpu_count": 1, "region": "Norway", "country": "NO", "continent": "EU",
        "old_price": 2.0, "new_price": 1.5, "price_per_gpu": 1.5, "change_percent": -25.0, "direction": "down",
        "availability": "available", "observed_at": now, "detected_at": now,
    }  # fmt: skip


def client_process(url: str, key: str, channels: list[str], ready, stop, results) -> None:
    """One process of clients: connect, subscribe, note every event's arrival until told to stop.

    Kept cheap so the harness does not eat the CPU it measures: each client blocks in `recv` (no
    per-second timeout task), connections are reported to the parent once a second (a Manager call
    is a blocking round trip), and one watcher polls the stop flag for all of them."""
    import websockets

    raise_fd_limit()
    latencies: list[float] = []
    connected = retried = 0

    async def one(channel: str) -> None:
        nonlocal connected, retried
        for attempt in range(20):  # as a real client does: a refused or reset connect is tried again
            try:
                ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"},
                                              max_queue=None, ping_interval=None, open_timeout=300)  # fmt: skip
                break
            except (OSError, websockets.exceptions.InvalidHandshake) as refused:
                if attempt == 19:
                    raise refused
                retried += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
        async with ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "subscribe", "channels": [channel]}))
            await ws.recv()
            connected += 1
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "price_update" and frame["data"]["offer_id"].startswith("bench-"):
                    latencies.append(time.time() - datetime.fromisoformat(frame["data"]["detected_at"]).timestamp())

    async def report_until_stopped(tasks: list[asyncio.Task]) -> None:
        reported = 0
        while not await asyncio.to_thread(stop.wait, 1.0):
            if connected > reported:
                ready.put(connected - reported)
                reported = connected
        for task in tasks:
            task.cancel()

    async def main() -> None:
        tasks: list[asyncio.Task] = []
        watcher = asyncio.ensure_future(report_until_stopped(tasks))
        for i in range(0, len(channels), 100):  # connect in waves, not all at once
            tasks += [asyncio.ensure_future(one(c)) for c in channels[i : i + 100]]
            await asyncio.sleep(0.1)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await watcher
        failures = [r for r in outcomes if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        if failures:
            print(f"  {len(failures)} clients failed, e.g. {failures[0]!r}", file=sys.stderr)
        results.put((latencies, len(failures), retried))

    asyncio.run(main())


def run(clients: int, events: int, rate: float, key: str, url: str, processes: int, everything: bool, models: int,
        burst: bool = False) -> dict:  # fmt: skip
    channels = ["price_updates" if everything else f"gpu:{MODELS[i % models]}" for i in range(clients)]
    # spawned, not forked: a fork would copy the previous run's Kafka producer and its librdkafka threads
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    ready, results, stop = manager.Queue(), manager.Queue(), manager.Event()
    shares = [channels[i::processes] for i in range(processes)]
    workers = [context.Process(target=client_process, args=(url, key, share, ready, stop, results))
               for share in shares if share]  # fmt: skip
    for w in workers:
        w.start()
    connected, started = 0, time.monotonic()
    while connected < clients and time.monotonic() - started < 60 + clients / 20:
        try:
            connected += ready.get(timeout=1)
        except Exception:  # noqa: BLE001 (queue.Empty through the manager proxy)
            pass
    connect_seconds = time.monotonic() - started
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "linger.ms": 5 if burst else 0})
    chosen = [MODELS[n % models] for n in range(events)]
    expected = sum(sum(1 for c in channels if c in ("price_updates", f"gpu:{m}")) for m in chosen)
    for n, model in enumerate(chosen):
        producer.produce(settings.Topics.PRICE_CHANGES, key=f"vastai:bench-{n}", value=json.dumps(event(model, n)))
        producer.poll(0)
        if not burst:
            time.sleep(1 / rate)
    producer.flush(30)
    time.sleep(90 if burst else 15)  # stragglers; a burst gets its minute and more
    stop.set()
    gathered = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
    manager.shutdown()
    latencies = sorted(x for found, _, _ in gathered for x in found)
    return {
        "clients": clients, "connected": connected, "connect_s": connect_seconds, "events": events,
        "delivered": len(latencies), "expected": expected, "max": latencies[-1] if latencies else None,
        "failed": sum(f for _, f, _ in gathered), "retried": sum(r for _, _, r in gathered),
        "p50": statistics.median(latencies) if latencies else None,
        "p99": latencies[math.ceil(len(latencies) * 0.99) - 1] if latencies else None,
    }  # fmt: skip


def bench_key() -> str:
    out = subprocess.run([sys.executable, "manage.py", "create_api_key", "--plan", "unlimited", "--name", "bench push"],
                         cwd=ROOT / "webapp", capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,1000,10000", help="comma-separated client counts, one run each")
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second produced")
    parser.add_argument("--models", type=int, default=10, help="GPU channels the clients spread over")
    parser.add_argument("--everything", action="store_true", help="every client subscribes to price_updates")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/providers/")
    parser.add_argument("--burst", action="store_true", help="produce every event at once, then listen 90 s")
    parser.add_argument("--key")
    args = parser.parse_args()
    raise_fd_limit()
    key = args.key or bench_key()
    print(f"{os.cpu_count()} CPUs; events {'all at once' if args.burst else f'at {args.rate}/s'}; clients over {args.processes} processes; "
          f"{'price_updates' if args.everything else f'{args.models} GPU channels'}\n")  # fmt: skip
    print("| clients | connected (s to connect) | connects retried / failed | events | delivered / expected | p50 ms "
          "| p99 ms | max ms |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for clients in (int(c) for c in args.clients.split(",")):
        r = run(clients, args.events, args.rate, key, args.url, min(args.processes, clients), args.everything, args.models,
                args.burst)  # fmt: skip
        p50, p99, top = (f"{r[k] * 1000:,.0f}" if r[k] is not None else "-" for k in ("p50", "p99", "max"))
        print(f"| {clients:,} | {r['connected']:,} ({r['connect_s']:.0f}) | {r['retried']:,} / {r['failed']:,} | {r['events']:,} | {r['delivered']:,} / {r['expected']:,} "
              f"| {p50} | {p99} | {top} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
