"""Soak: REST, WebSocket and SSE together at a steady rate for minutes; errors and webapp memory.

Run by hand against the running stack (`make up`), not in CI. First the REST mix's maximum is measured
(wrk, unpaced, `--probe` seconds); then for `--minutes` (10 by default):
- REST: wrk paced at half that maximum (or `--rate`), over a mix of cached and uncached offer
  searches, providers and cheapest answers (a Lua script picks each request); wrk, a kept load
  generator, because a Python client tops out at a few hundred requests/s on 2 cores;
- WebSocket: `--sockets` clients subscribed to GPU channels; SSE: `--streams` event streams;
- Kafka: `--events` price changes per second, so the live clients get traffic.

Errors counted (warm-up included): REST answers that are not 2xx and wrk's socket errors, WebSocket and
SSE clients that were dropped. Memory: the summed RSS of the webapp's workers after `--warmup` minutes
of the same load (freshly started workers grow while their caches fill) and at the end, printed each
minute; growth must stay < 10%. Requests rotate over several unlimited keys (each allows 100,000 a minute).

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--warmup 2] [--rate N] [--sockets 200] [--streams 20] [--events 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
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


# One request of the REST mix per call; `delay` paces each connection to SOAK_RATE requests/s in all.
MIX = """
local gpus, keys = {"H100", "A100", "RTX4090", "L40S", "H200"}, {}
for key in string.gmatch(os.getenv("SOAK_KEYS"), "[^,]+") do keys[#keys + 1] = key end
local rate, connections = tonumber(os.getenv("SOAK_RATE")), tonumber(os.getenv("SOAK_CONNECTIONS"))
math.randomseed(os.time())
function request()
  local gpu, pick = gpus[math.random(#gpus)], math.random(5)
  local path = ({"/api/v1/offers?gpu=" .. gpu, "/api/v1/offers?gpu=" .. gpu .. "&sort=price_per_gpu", "/api/v1/providers",
                 "/api/v1/gpus/" .. gpu .. "/cheapest", "/api/v1/offers?max_price=" .. math.random(1, 400) / 10})[pick]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. keys[math.random(#keys)]})
end
if rate > 0 then function delay() return 1000 * connections / rate end end
"""
CONNECTIONS = 32


async def wrk_mix(url: str, seconds: float, rate: float, keys: list[str], script: str) -> dict:
    """The REST mix for `seconds` (rate 0: as fast as it goes): requests, errors, requests/s."""
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{int(seconds)}s", "-s", script, url,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "SOAK_KEYS": ",".join(keys), "SOAK_RATE": str(rate),
                                             "SOAK_CONNECTIONS": str(CONNECTIONS)})  # fmt: skip
    out = (await process.communicate())[0].decode()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return {"requests": requests, "errors": errors, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}


class Soak:
    def __init__(self, args, keys: list[str], script: str):
        self.args, self.keys, self.script = args, keys, script
        self.auth = {"Authorization": f"Bearer {keys[0]}"}
        self.until = time.monotonic() + (args.warmup + args.minutes) * 60
        self.rest = {"requests": 0, "errors": 0, "rps": 0.0}
        self.live = {"ws_frames": 0, "ws_dropped": 0, "sse_events": 0, "sse_dropped": 0}

    async def rest_load(self) -> None:
        self.rest = await wrk_mix(self.args.webapp, self.until - time.monotonic(), self.args.rate, self.keys, self.script)

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
        producer = Producer(settings.kafka_config())
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
        total = self.args.warmup + self.args.minutes
        for _ in range(int(self.args.warmup)):  # fresh workers fill their L2 and allocator arenas first
            await asyncio.sleep(60)
            print(f"  {total - (self.until - time.monotonic()) / 60:4.1f} min (warm-up): webapp RSS "
                  f"{webapp_rss() / 2**20:,.0f} MiB", flush=True)  # fmt: skip
        await asyncio.sleep((self.args.warmup % 1) * 60)
        warm = webapp_rss()
        while time.monotonic() < self.until - 30:  # the curve, to tell a warm-up from a leak
            await asyncio.sleep(60)
            print(f"  {total - (self.until - time.monotonic()) / 60:4.1f} min: webapp RSS "
                  f"{webapp_rss() / 2**20:,.0f} MiB", flush=True)  # fmt: skip
        await asyncio.gather(*tasks)
        return {"warm_rss": warm, "end_rss": webapp_rss()}


def bench_key() -> str:
    out = subprocess.run([sys.executable, "manage.py", "create_api_key", "--plan", "unlimited", "--name", "soak"],
                         cwd=ROOT / "webapp", capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webapp", default="http://127.0.0.1:8000")
    parser.add_argument("--minutes", type=float, default=10, help="the measured soak, after the warm-up")
    parser.add_argument("--warmup", type=float, default=2, help="minutes of the same load before it, not measured")
    parser.add_argument("--rate", type=float, help="REST requests per second (default: half the measured maximum)")
    parser.add_argument("--probe", type=float, default=15, help="seconds of the unpaced run that measures the maximum")
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--events", type=int, default=5, help="price changes per second on Kafka")
    args = parser.parse_args()
    keys = [bench_key() for _ in range(4)]  # up to 400,000 requests a minute
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(MIX)
        script.flush()
        if args.rate is None:
            peak = asyncio.run(wrk_mix(args.webapp, args.probe, 0, keys, script.name))
            args.rate = peak["rps"] / 2
            print(f"REST mix maximum: {peak['rps']:,.0f} req/s ({peak['errors']} errors); soaking at {args.rate:,.0f} req/s")
        soak = Soak(args, keys[:max(1, math.ceil(args.rate * 60 / 90_000))], script.name)
        started = time.monotonic()
        memory = asyncio.run(soak.run())
    minutes = (time.monotonic() - started) / 60
    growth = memory["end_rss"] / memory["warm_rss"] - 1
    dropped = soak.live["ws_dropped"] + soak.live["sse_dropped"]
    print(f"| minutes in all | REST requests (req/s) | REST errors | WebSocket frames | SSE events | live clients dropped | webapp RSS after warm-up -> end |\n"
          f"| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
          f"| {minutes:.1f} | {soak.rest['requests']:,} ({soak.rest['rps']:,.0f}) | {soak.rest['errors']} | {soak.live['ws_frames']:,} "
          f"| {soak.live['sse_events']:,} | {dropped} | {memory['warm_rss'] / 2**20:,.0f} -> {memory['end_rss'] / 2**20:,.0f} MiB ({growth:+.1%}) |")  # fmt: skip
    ok = soak.rest["errors"] == 0 and dropped == 0 and growth < 0.10
    print("error rate 0 and RSS growth < 10%:", "ok" if ok else "MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
