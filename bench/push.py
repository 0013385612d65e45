"""Live-feed fan-out: price changes produced on Kafka reach 1, 1,000 and 10,000 WebSocket clients,
against the most this machine gives Python: the same clients on a bare broadcast server.

Each event is produced on `gpubroker.price-changes` (as the Flink job emits them) with its
`detected_at` set to the moment it is produced; every client notes when each event first arrives, by
event id: deliveries are counted once per (client, event id), repeats are counted apart as duplicates,
and an event of a channel the client did not ask for as foreign. The path measured is the product's:
Kafka -> feed bridge -> Redis stream -> each webapp worker -> sockets.

Clients subscribe to one GPU channel each (`gpu:<model>`, over `--models` models, round robin), so
every event reaches 1/models of them; `--everything` subscribes all of them to `price_updates`. They
run in `--processes` processes (the bench's own CPU is counted against the machine, not hidden), and
offer permessage-deflate as browsers do (the server decides). A refused or reset connect is tried
again, as real clients do, and counted.

Per run: the connects (seconds, retries, failures); the server's resident memory per connection
(its workers' RSS after the connects less before) and how much of it the workers give back once
every client has left; then the documented load (`--events` at `--rate`/s) and, for the ceiling,
the same five seconds at twice the rate, then four times..., until a step loses a frame, its p99
passes 1 s, or the rate reaches `--max-rate`. Each step's frames/s is the offered events/s times
the clients per event; the ceiling is the last step with every frame delivered once at p99 <= 1 s.

The same clients then do the same against a bare broadcast server on the `websockets` library
alone (bench's own, `bare_server`: no Django, no Redis, no Kafka; events reach its workers over a
pipe and go out with `websockets.broadcast`), with as many workers, sharing one port
(SO_REUSEPORT), and no compression, as the webapp runs it (astro/local/stack.sh).

`--burst` produces every event at once (e.g. 50,000 changes of 50,000 offers) and listens up to
90 s: the max column is then how long the feed took to deliver the whole burst (no ceiling steps).

Needs the running stack (`make up`) and its credentials (`set -a; . .stack/secrets.env; set +a`:
the API keys are made in its database). The server measured is the one at `--url` (the stack's
webapp by default); its workers are found by the port they listen on. Usage:
  .venv/bin/python bench/push.py [--clients 1,1000,10000] [--events 50] [--rate 10]
  .venv/bin/python bench/push.py --clients 100 --events 50000 --burst
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))

from confluent_kafka import Producer  # noqa: E402

from gpubroker import settings  # noqa: E402

MODELS = ["H100", "A100", "H200", "B200", "L40S", "L4", "A10", "V100", "RTX4090", "RTX3090"]
P99_GOAL = 1.0  # seconds
STEP_SECONDS = 5.0  # each ceiling step lasts as long as the documented load (50 events at 10/s)
SETTLE_SECONDS = 15.0  # after a step's last event, stragglers get this long (a burst: 90 s)


def raise_fd_limit() -> None:
    """One file descriptor per client: as many as the hard limit allows."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def event(model: str, offer_id: str) -> dict:
    now = datetime.now(timezone.utc).isoformat()
    return {
        "type": "price_change", "event_id": str(uuid.uuid4()), "provider": "vastai", "offer_id": offer_id,
        "gpu": model, "gpu_form_factor": None, "gpu_count": 1, "region": "Norway", "country": "NO", "continent": "EU",
        "old_price": 2.0, "new_price": 1.5, "price_per_gpu": 1.5, "change_percent": -25.0, "direction": "down",
        "availability": "available", "observed_at": now, "detected_at": now,
    }  # fmt: skip


# --- the clients ------------------------------------------------------------------------------------
class Tally:
    """What one process of clients saw: connects, and per step each event's first arrival."""

    def __init__(self):
        self.connected: Counter[str] = Counter()  # channel -> clients subscribed to it
        self.retried = self.failed = 0
        self.error = ""
        self.latencies: defaultdict[int, list[float]] = defaultdict(list)
        self.duplicates: Counter[int] = Counter()
        self.foreign: Counter[int] = Counter()

    def note(self, seen: set[str], model: str | None, data: dict, step: int) -> None:
        if data["event_id"] in seen:
            self.duplicates[step] += 1
        elif model is not None and data["gpu"] != model:
            self.foreign[step] += 1
        else:
            seen.add(data["event_id"])
            self.latencies[step].append(time.time() - datetime.fromisoformat(data["detected_at"]).timestamp())

    def counts(self) -> dict:
        return {"connected": dict(self.connected), "retried": self.retried, "failed": self.failed, "error": self.error,
                "delivered": {s: len(v) for s, v in self.latencies.items()}, "duplicates": dict(self.duplicates),
                "foreign": dict(self.foreign)}  # fmt: skip


def client_process(url: str, keys: list[str], channels: list[str], run: str, pipe) -> None:
    """One process of clients: connect, subscribe, note every bench event of this run until told to
    stop; answers the parent's `counts`, `latencies <step>` and `stop` over `pipe`.

    Kept cheap so the harness does not eat the CPU it measures: each client blocks in `recv`, frames
    are parsed with orjson, and the parent is answered only when it asks."""
    import websockets

    raise_fd_limit()
    tally, prefix, sockets = Tally(), f"bench-{run}-", set()
    connecting: dict[int, asyncio.Task] = {}  # clients not subscribed yet

    async def one(n: int, channel: str) -> None:
        for attempt in range(20):  # as a real client does: a refused or reset connect is tried again
            try:
                ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {keys[n % len(keys)]}"},
                                              max_queue=None, ping_interval=None, open_timeout=300)  # fmt: skip
                break
            except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as refused:
                if attempt == 19:
                    tally.failed += 1
                    tally.error = tally.error or repr(refused)
                    connecting.pop(n, None)
                    return
                tally.retried += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
        sockets.add(ws)
        async with ws:
            await ws.recv()
            await ws.send(orjson.dumps({"type": "subscribe", "channels": [channel]}).decode())
            await ws.recv()
            tally.connected[channel] += 1
            connecting.pop(n, None)
            model, seen = (channel[4:] if channel.startswith("gpu:") else None), set()
            async for raw in ws:
                frame = orjson.loads(raw)
                if frame["type"] == "price_update" and frame["offer_id"].startswith(prefix):
                    tally.note(seen, model, frame, int(frame["offer_id"].split("-")[2]))

    async def main() -> None:
        loop, stopped, tasks = asyncio.get_running_loop(), asyncio.Event(), []

        def answer() -> None:
            command, *args = pipe.recv()
            if command == "counts":
                pipe.send(tally.counts())
            elif command == "latencies":
                pipe.send(tally.latencies[args[0]])
            elif command == "give up":  # the parent stopped waiting: clients still connecting fail
                tally.failed += len(connecting) + len(channels) - len(tasks)
                tally.error = tally.error or "still connecting when the bench stopped waiting"
                for task in connecting.values():
                    task.cancel()
                connecting.clear()
                channels.clear()
                pipe.send(None)
            else:
                stopped.set()

        loop.add_reader(pipe.fileno(), answer)
        for n, channel in enumerate(list(channels)):  # connect in waves of 100, not all at once
            if n >= len(channels):
                break  # given up
            tasks.append(connecting.setdefault(n, asyncio.ensure_future(one(n, channel))))
            if n % 100 == 99:
                await asyncio.sleep(0.1)
        await stopped.wait()
        await asyncio.gather(*(ws.close() for ws in sockets))  # goodbye, as a client that leaves says it
        for task in tasks:
            task.cancel()  # those still connecting
        await asyncio.gather(*tasks, return_exceptions=True)
        pipe.send("stopped")

    asyncio.run(main())


class Clients:
    """The client processes of one run, asked over pipes."""

    def __init__(self, url: str, keys: list[str], channels: list[str], processes: int, run: str):
        context = multiprocessing.get_context("spawn")  # not forked: a fork would copy the Kafka producer
        self.pipes, self.workers = [], []
        for share in (channels[i::processes] for i in range(processes)):
            if share:
                ours, theirs = context.Pipe()
                self.pipes.append(ours)
                self.workers.append(context.Process(target=client_process, args=(url, keys, share, run, theirs)))
        for worker in self.workers:
            worker.start()

    def ask(self, *command) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def counts(self) -> dict:
        found = self.ask("counts")
        merged = {"connected": Counter(), "retried": 0, "failed": 0, "error": "", "delivered": Counter(),
                  "duplicates": Counter(), "foreign": Counter()}  # fmt: skip
        for one in found:
            for name in ("connected", "delivered", "duplicates", "foreign"):
                merged[name].update(one[name])
            merged["retried"] += one["retried"]
            merged["failed"] += one["failed"]
            merged["error"] = merged["error"] or one["error"]
        return merged

    def latencies(self, step: int) -> list[float]:
        return sorted(x for found in self.ask("latencies", step) for x in found)

    def stop(self) -> None:
        self.ask("stop")
        for worker in self.workers:
            worker.join(60)


# --- the servers --------------------------------------------------------------------------------------
def rss(pids: list[int]) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def listening_workers(port: int) -> list[int]:
    """The processes serving `port`: each listener's, or its supervisor's children when the socket is
    its supervisor's (uvicorn --workers; psutil names one process per socket)."""
    def listening(process: psutil.Process) -> bool:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp"))

    found = set()
    for pid in {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port} - {None}:
        supervisor = psutil.Process(pid).parent()
        shared = supervisor is not None and listening(supervisor)
        found |= {child.pid for child in supervisor.children() if listening(child)} if shared else {pid}
    return sorted(found)


class Feed:
    """The product: events go to Kafka, the feed bridge appends them to the stream, the workers fan out."""

    name = "feed"

    def __init__(self, url: str):
        self.url, self.pids = url, listening_workers(urlsplit(url).port or 80)
        self.producer = Producer(settings.kafka_config() | {"linger.ms": 0})

    def publish(self, model: str, offer_id: str) -> None:
        self.producer.produce(settings.Topics.PRICE_CHANGES, key=f"vastai:{offer_id}", value=orjson.dumps(event(model, offer_id)))
        self.producer.poll(0)

    def flush(self) -> None:
        self.producer.flush(30)

    def close(self) -> None:
        self.flush()


def bare_server(port: int, events) -> None:
    """One worker of the bare broadcast server: the feed's protocol as far as the bench uses it (hello,
    subscribe, events) on the `websockets` library alone; events arrive on the `events` pipe."""
    import websockets
    from websockets.asyncio.server import serve

    raise_fd_limit()
    members: defaultdict[str, set] = defaultdict(set)
    hello, subscribed = b'{"type":"connection_established"}'.decode(), b'{"type":"subscribed"}'.decode()

    async def handler(ws) -> None:
        await ws.send(hello)
        channels: list[str] = []
        try:
            async for message in ws:
                channels += orjson.loads(message)["channels"]
                for channel in channels:
                    members[channel].add(ws)
                await ws.send(subscribed)
        except websockets.ConnectionClosed:
            pass  # the client went away
        finally:
            for channel in channels:
                members[channel].discard(ws)

    def broadcast() -> None:
        channels, frame = events.recv()
        websockets.broadcast(set().union(*(members[c] for c in channels)), frame)

    async def main() -> None:
        asyncio.get_running_loop().add_reader(events.fileno(), broadcast)
        async with serve(handler, "127.0.0.1", port, reuse_port=True, compression=None, max_queue=None,
                         ping_interval=20, ping_timeout=20) as server:  # fmt: skip
            await server.serve_forever()

    asyncio.run(main())


class Bare:
    """The ceiling: the same clients and events on `bare_server`, with `workers` workers on one port."""

    name = "bare websockets"

    def __init__(self, workers: int):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            self.pipes.append(ours)
            self.processes.append(context.Process(target=bare_server, args=(port, theirs), daemon=True))
        for process in self.processes:
            process.start()
        self.url, self.pids = f"ws://127.0.0.1:{port}/", [p.pid for p in self.processes]
        while len(listening_workers(port)) < workers:
            time.sleep(0.2)

    def publish(self, model: str, offer_id: str) -> None:
        data = event(model, offer_id)
        frame = orjson.dumps({**data, "type": "price_update", "id": offer_id, "event_type": data["type"],
                              "timestamp": data["detected_at"]}).decode()  # the feed's frame, flat  # fmt: skip
        for pipe in self.pipes:
            pipe.send((("price_updates", f"gpu:{model}"), frame))

    def flush(self) -> None:
        pass  # sent as published

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
            process.join(10)


# --- one run ------------------------------------------------------------------------------------------
def percentile(ordered: list[float], q: float) -> float | None:
    return ordered[math.ceil(len(ordered) * q) - 1] if ordered else None


def step(server, clients: Clients, run: str, n: int, events: int, rate: float, burst: bool, models: int,
         connected: Counter) -> dict:  # fmt: skip
    """Produce `events` at `rate`/s (all at once for a burst), wait for their deliveries; the step's figures."""
    chosen = [MODELS[i % models] for i in range(events)]
    expected = sum(connected["price_updates"] + connected[f"gpu:{m}"] for m in chosen)
    started = time.monotonic()
    for i, model in enumerate(chosen):
        server.publish(model, f"bench-{run}-{n}-{i}")
        if not burst:
            time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    server.flush()
    deadline = time.monotonic() + (90 if burst else SETTLE_SECONDS)
    while (counts := clients.counts())["delivered"][n] < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    latencies = clients.latencies(n)
    return {
        "rate": rate, "events": events, "expected": expected, "delivered": len(latencies),
        "duplicates": counts["duplicates"][n], "foreign": counts["foreign"][n],
        "frames_s": expected / (events / rate) if not burst else None,
        "p50": statistics.median(latencies) if latencies else None, "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else None,
    }  # fmt: skip


def held(result: dict) -> bool:
    return (result["delivered"] == result["expected"] and not result["duplicates"] and not result["foreign"]
            and result["p99"] is not None and result["p99"] <= P99_GOAL)  # fmt: skip


def measure(server, args, clients_n: int, keys: list[str]) -> dict:
    """Connect `clients_n` clients to `server`, run the documented load and the ceiling steps, then
    let them go; connects, memory and every step's figures."""
    run, load = uuid.uuid4().hex[:8], os.getloadavg()[0]
    channels = ["price_updates" if args.everything else f"gpu:{MODELS[i % args.models]}" for i in range(clients_n)]
    before = rss(server.pids)
    clients = Clients(server.url, keys, channels, min(args.processes, clients_n), run)
    started = time.monotonic()
    while (sum((counts := clients.counts())["connected"].values()) + counts["failed"] < clients_n
           and time.monotonic() - started < 60 + clients_n / 20):  # fmt: skip
        time.sleep(1)
    if sum(counts["connected"].values()) + counts["failed"] < clients_n:
        clients.ask("give up")  # the rest would still be connecting while the events flow
        counts = clients.counts()
    connect_s, connected = time.monotonic() - started, counts["connected"]
    loaded = rss(server.pids)
    steps, rate, events = [], args.rate, args.events
    while True:
        steps.append(step(server, clients, run, len(steps), events, rate, args.burst, args.models, connected))
        peak = max(loaded, rss(server.pids))
        rate, events = rate * 2, int(round(rate * 2 * STEP_SECONDS))
        if args.burst or not held(steps[-1]) or rate > args.max_rate:
            break
    clients.stop()
    left = settled_rss(server)
    server.close()
    ceiling = next((s for s in reversed(steps) if held(s)), None)
    return {
        "server": server.name, "clients": clients_n, "connected": sum(connected.values()), "connect_s": connect_s,
        "retried": counts["retried"], "failed": counts["failed"], "error": counts["error"],
        "per_connection": (loaded - before) / max(1, sum(connected.values())), "peak": peak, "before": before,
        "left": left, "steps": steps, "ceiling": ceiling, "load": load,
    }  # fmt: skip


def settled_rss(server) -> int:
    """The workers' RSS once they have seen every client go and given back what they will (the feed
    does it a few seconds after a crowd left: feed/hub.py): no connection left, then 10 s without a drop."""
    port, deadline = urlsplit(server.url).port, time.monotonic() + 180
    while time.monotonic() < deadline and any(c.laddr.port == port for c in psutil.net_connections("tcp")
                                              if c.status == psutil.CONN_ESTABLISHED):  # fmt: skip
        time.sleep(1)
    lowest, steady = rss(server.pids), 0
    while steady < 10 and time.monotonic() < deadline:
        time.sleep(1)
        now = rss(server.pids)
        lowest, steady = (now, 0) if now < lowest - 2**20 else (min(lowest, now), steady + 1)
    return lowest


# --- report ---------------------------------------------------------------------------------------------
def ms(seconds: float | None) -> str:
    return f"{seconds * 1000:,.0f}" if seconds is not None else "-"


def row(r: dict) -> str:
    first, grown = r["steps"][0], r["peak"] - r["before"]
    given_back = f"{round((r['peak'] - r['left']) / 2**20):,} of {round(grown / 2**20):,} MiB" if grown >= 2**20 else "-"
    ceiling = f"{r['ceiling']['frames_s']:,.0f} (p99 {ms(r['ceiling']['p99'])} ms)" if r["ceiling"] and r["ceiling"]["frames_s"] else "-"
    return (f"| {r['clients']:,} | {r['server']} | {r['connected']:,} ({r['connect_s']:.0f}) | {r['retried']:,} / {r['failed']:,} "
            f"| {r['per_connection'] / 1024:,.1f} | {given_back} | {first['delivered']:,} / {first['expected']:,} "
            f"| {first['duplicates']:,} | {ms(first['p50'])} / {ms(first['p99'])} / {ms(first['max'])} "
            f"| {first['frames_s'] or 0:,.0f} | {ceiling} |")  # fmt: skip


def bench_keys(n: int) -> list[str]:
    def one() -> str:
        out = subprocess.run([sys.executable, "manage.py", "create_api_key", "--plan", "unlimited", "--name", "bench push"],
                             cwd=ROOT / "webapp", capture_output=True, text=True, check=True).stdout  # fmt: skip
        return out.strip().splitlines()[-1]

    return [one() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,1000,10000", help="comma-separated client counts, one run each")
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second produced")
    parser.add_argument("--max-rate", type=float, default=640.0, help="the ceiling steps stop at this many events/s")
    parser.add_argument("--models", type=int, default=10, help="GPU channels the clients spread over")
    parser.add_argument("--everything", action="store_true", help="every client subscribes to price_updates")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/providers/")
    parser.add_argument("--burst", action="store_true", help="produce every event at once, then listen 90 s")
    parser.add_argument("--key", help="API keys the clients share round robin, comma-separated (default: new ones)")
    parser.add_argument("--keys", type=int, default=1, help="how many new unlimited keys to make for them")
    args = parser.parse_args()
    raise_fd_limit()
    keys = args.key.split(",") if args.key else bench_keys(args.keys)
    workers = len(listening_workers(urlsplit(args.url).port or 80)) or 2
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; events {'all at once' if args.burst else f'at {args.rate:g}/s'}; "
          f"clients over {args.processes} processes, {len(keys)} key(s); {'price_updates' if args.everything else f'{args.models} GPU channels'}; "
          f"the feed at {args.url} ({workers} workers), the bare server with {workers}\n")  # fmt: skip
    print("| clients | server | connected (s) | connects retried / failed | RSS KiB / connection | RSS given back after "
          "| delivered / expected (by event id) | duplicates | p50 / p99 / max ms | frames/s | ceiling frames/s at p99 <= 1 s |\n"
          "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)  # fmt: skip
    details = []
    for clients_n in (int(c) for c in args.clients.split(",")):
        for make in (lambda: Feed(args.url), lambda: Bare(workers)):
            result = measure(make(), args, clients_n, keys)
            print(row(result), flush=True)
            details.append(result)
    print()
    for r in details:
        steps = "; ".join(f"{s['rate']:g}/s: {s['delivered']:,}/{s['expected']:,}, p99 {ms(s['p99'])} ms" for s in r["steps"])
        failed = f"; a failed connect: {r['error']}" if r["error"] else ""
        print(f"- {r['clients']:,} clients, {r['server']} (load {r['load']:.1f} at the start): {steps}{failed}")


if __name__ == "__main__":
    main()
