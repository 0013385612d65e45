"""Soak: REST, WebSocket and SSE together at a steady rate for minutes; errors and webapp memory.

Run by hand against the running stack (`make up`), not in CI. For `--minutes` (10 by default):
- REST: `--rate` requests/s (default 500, about half the cached offers maximum of bench/api.py on
  2 cores) over a mix of cached and uncached offer searches, providers and cheapest answers;
- WebSocket: `--sockets` clients subscribed to GPU channels; SSE: `--streams` event streams;
- Kafka: `--events` price changes per second, so the live clients get traffic.

Errors counted: REST answers that are not 2xx, WebSocket and SSE clients that were dropped. Memory:
the summed RSS of the webapp's workers one minute in (warm) and at the end; growth must stay < 10%.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--rate 500] [--sockets 200] [--streams 20] [--events 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil
import websockets
from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))
from gpubroker import settings  # noqa: E402

GPUS = ["H100", "A100", "RTX4090", "L40S", "H200"]
STATE = ROOT / ".stack"


def webapp_rss() -> int:
    """Bytes of resident memory of the webapp's uvicorn workers (the supervisor's children)."""
    supervisor = psutil.Process(int((STATE / "run" / "webapp.pid").read_text()))
    return sum(child.memory_info().rss for child in supervisor.children())


def paths() -> list[str]:
    gpu = random.choice(GPUS)
    return random.choice([
        f"/api/v1/offers?gpu={gpu}", f"/api/v1/offers?gpu={gpu}&sort=price_per_gpu", "/api/v1/providers",
        f"/api/v1/gpus/{gpu}/cheapest", f"/api/v1/offers?max_price={random.randint(1, 400) / 10}",  # uncached mostly
    ])  # fmt: skip


class Soak:
    def __init__(self, args, key: str):
        self.args, self.key = args, key
        self.auth = {"Authorization": f"Bearer {key}"}
        self.until = time.monotonic() + args.minutes * 60
        self.rest = {"ok": 0, "errors": 0}
        self.live = {"ws_frames": 0, "ws_dropped": 0, "sse_events": 0, "sse_dropped": 0}

    async def rest_load(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=self.args.webapp, headers=self.auth, limits=limits, timeout=10) as http:
            tick = 1 / self.args.rate
            pending: set[asyncio.Task] = set()
            next_at = time.monotonic()
            while time.monotonic() < self.until:
                task = asyncio.ensure_future(self.one(http))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += tick
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*pending, return_exceptions=True)

    async def one(self, http: httpx.AsyncClient) -> None:
        try:
            ok = (await http.get(paths())).is_success
        except httpx.HTTPError:
            ok = False
        self.rest["ok" if ok else "errors"] += 1

    async def socket(self, n: int) -> None:
        url = self.args.webapp.replace("http", "ws", 1) + "/ws/providers/"
        try:
            async with websockets.connect(url, additional_headers=self.auth, open_timeout=60) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "subscribe", "channels": [f"gpu:{GPUS[n % len(GPUS)]}"]}))
                while time.monotonic() < self.until:
                    try:
                        await asyncio.wait_for(ws.recv(), 1.0)
                        self.live["ws_frames"] += 1
                    except asyncio.TimeoutError:
                        continue
        except (OSError, websockets.exceptions.WebSocketException):
            self.live["ws_dropped"] += 1

    async def stream(self, n: int) -> None:
        try:
            async with httpx.AsyncClient(base_url=self.args.webapp, headers=self.auth, timeout=None) as http:
                async with http.stream("GET", f"/api/v1/stream?channels=gpu:{GPUS[n % len(GPUS)]}") as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        self.live["sse_events"] += line.startswith("id:")
                        if time.monotonic() > self.until:
                            return
        except httpx.HTTPError:
            self.live["sse_dropped"] += 1

    async def events(self) -> None:
        producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
        while time.monotonic() < self.until:
            now = datetime.now(timezone.utc).isoformat()
            for _ in range(self.args.events):
                gpu, offer = random.choice(GPUS), f"soak-{uuid.uuid4().hex[:8]}"
                producer.produce(settings.Topics.PRICE_CHANGES, key=f"vastai:{offer}", value=json.dumps({
                    "type": "price_change", "event_id": str(uuid.uuid4()), "provider": "vastai", "offer_id": offer,
                    "gpu": gpu, "gpu_form_factor": None, "gpu_count": 1, "region": "Norway", "country": "NO",
                    "continent": "EU", "old_price": 2.0, "new_price": 1.5, "price_per_gpu": 1.5, "change_percent": -25.0,
                    "direction": "down", "availability": "available", "observed_at": now, "detected_at": now,
                }))  # fmt: skip
            producer.poll(0)
            await asyncio.sleep(1)
        producer.flush(10)

    async def run(self) -> dict:
        tasks = [asyncio.ensure_future(self.rest_load()), asyncio.ensure_future(self.events())]
        tasks += [asyncio.ensure_future(self.socket(n)) for n in range(self.args.sockets)]
        tasks += [asyncio.ensure_future(self.stream(n)) for n in range(self.args.streams)]
        await asyncio.sleep(min(60, self.args.minutes * 30))
        warm = webapp_rss()
        await asyncio.gather(*tasks)
        return {"warm_rss": warm, "end_rss": webapp_rss()}


def bench_key() -> str:
    out = subprocess.run([sys.executable, "manage.py", "create_api_key", "--plan", "unlimited", "--name", "soak"],
                         cwd=ROOT / "webapp", capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webapp", default="http://127.0.0.1:8000")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=500, help="REST requests per second")
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--events", type=int, default=5, help="price changes per second on Kafka")
    parser.add_argument("--key", help="an API key (default: create an unlimited one)")
    args = parser.parse_args()
    soak = Soak(args, args.key or bench_key())
    started = time.monotonic()
    memory = asyncio.run(soak.run())
    minutes = (time.monotonic() - started) / 60
    rest_total = soak.rest["ok"] + soak.rest["errors"]
    growth = memory["end_rss"] / memory["warm_rss"] - 1
    dropped = soak.live["ws_dropped"] + soak.live["sse_dropped"]
    print(f"| minutes | REST requests (req/s) | REST errors | WebSocket frames | SSE events | live clients dropped | webapp RSS warm -> end |\n"
          f"| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
          f"| {minutes:.1f} | {rest_total:,} ({rest_total / (minutes * 60):,.0f}) | {soak.rest['errors']} | {soak.live['ws_frames']:,} "
          f"| {soak.live['sse_events']:,} | {dropped} | {memory['warm_rss'] / 2**20:,.0f} -> {memory['end_rss'] / 2**20:,.0f} MiB ({growth:+.1%}) |")  # fmt: skip
    ok = soak.rest["errors"] == 0 and dropped == 0 and growth < 0.10
    print("error rate 0 and RSS growth < 10%:", "ok" if ok else "MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
