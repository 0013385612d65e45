"""Throughput and latency of the serving path, against baselines measured in the same run, with wrk.

Targets (issue #7): cached `GET /api/v1/offers?gpu=H100` with a valid key reaches >= 70% of the
webapp's own `/healthz` and >= 5% of a bare ASGI hello app on uvicorn (same worker count), with
p99 <= 25 ms at half its measured maximum rate. Measured twice: as wrk asks by default (no
Accept-Encoding: the full body) and as real HTTP clients ask (gzip accepted: the gzipped copy).
A second bare app baseline sends the webapp's offers answer itself, bytes and headers, with no work:
what the answer's size alone costs against the hello, a bound for the ratio to `/healthz`.

Needs the running stack's webapp (`make up`) and Debian's `wrk`. It starts the bare ASGI app itself
and makes unlimited API keys (named `bench`; four per wrk thread and keyed run) unless --key is given.

Usage: .venv/bin/python bench/api.py [--duration 10] [--connections 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = '''
import json
from pathlib import Path

HERE = Path(__file__).parent
HELLO = b'{"hello":"world"}'
HELLO_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"17")]
# /offers: the webapp's cached offers answer, byte for byte, with its headers: what sending it costs alone
OFFERS = (HERE / "offers.body").read_bytes()
OFFERS_HEADERS = [(k.encode(), v.encode()) for k, v in json.loads((HERE / "offers.headers").read_text())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers, body = (OFFERS_HEADERS, OFFERS) if scope["path"] == "/offers" else (HELLO_HEADERS, HELLO)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
'''
# The gateway's own work with no server and no socket: the webapp's ASGI application called in this
# process (one event loop, a send that keeps nothing), for /healthz and for the cached offers request.
IN_PROCESS = '''
import asyncio, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")
from gpubroker_web.asgi import application

KEY, REQUESTS = os.environ["BENCH_KEY"], int(sys.argv[1])  # the key not in argv: ps and errors show argv


def scope(path, query, headers):
    return {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "scheme": "http", "root_path": ""}


def once():  # a client that sends its request, then waits (Django listens for a disconnect)
    sent = []
    async def receive():
        if sent:
            await asyncio.Event().wait()
        sent.append(1)
        return {"type": "http.request", "body": b"", "more_body": False}
    return receive


async def send(message):
    pass


async def per_request(path, query, headers, n):
    started = time.perf_counter()
    for _ in range(n):
        await application(scope(path, query, headers), once(), send)
    return (time.perf_counter() - started) / n * 1e6


async def main():
    keyed = [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer " + KEY.encode())]
    await per_request("/api/v1/offers", b"gpu=H100", keyed, 100)  # into L2, a lease taken
    best = {"healthz": [], "offers": []}
    for _ in range(3):
        best["healthz"].append(await per_request("/healthz", b"", [], REQUESTS))
        best["offers"].append(await per_request("/api/v1/offers", b"gpu=H100", keyed, REQUESTS))
    print(min(best["healthz"]), min(best["offers"]))

asyncio.run(main())
'''
BARE = "bare ASGI hello (uvicorn)"
BARE_OFFERS = "bare ASGI, the offers answer's bytes and headers"
PLAIN = "cached /api/v1/offers?gpu=H100 + key"
# what browsers, curl --compressed, requests and httpx send: the gateway answers from its gzipped copy
GZIP = PLAIN + ", Accept-Encoding: gzip"
ACCEPT_GZIP = {"Accept-Encoding": "gzip"}
THREADS = 2  # wrk threads
KEYS_PER_THREAD = 4  # an unlimited key allows 100,000 requests a minute: a thread moves on to its next key
KEYED_RUNS = 4  # offers plain and gzipped, each at its peak and at half of it
PER_KEY = 90_000  # after this many requests, so no run up to 36k req/s per thread for 10 s is refused
# wrk: thread i asks with keys i, i+THREADS, ... of BENCH_KEYS (if given), PER_KEY requests each; with
# BENCH_RATE, each connection pauses between its requests (`delay()`) for that total rate. Every run,
# keyed or not, builds its requests through the same request() so the Lua cost is the same in each.
SCRIPT = f"""
local keys, threads, per_key = {{}}, 0, {PER_KEY}
for key in string.gmatch(os.getenv("BENCH_KEYS") or "", "[^,]+") do keys[#keys + 1] = key end
function setup(thread)
  threads = threads + 1
  thread:set("first", threads)
end
local mine, sent, bytes = {{}}, 0, nil
function init(args)
  for i = first, #keys, {THREADS} do mine[#mine + 1] = keys[i] end
end
function request()
  if sent % per_key == 0 then
    local key = mine[math.floor(sent / per_key) % math.max(#mine, 1) + 1]
    if key then wrk.headers["Authorization"] = "Bearer " .. key end
    bytes = wrk.format()
  end
  sent = sent + 1
  return bytes
end
local rate, connections = tonumber(os.getenv("BENCH_RATE") or ""), tonumber(os.getenv("BENCH_CONNECTIONS"))
if rate then
  function delay() return 1000 * connections / rate end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, duration: int, connections: int, headers: dict[str, str], script: str | None = None,
        env: dict[str, str] | None = None) -> dict:  # fmt: skip
    """Run wrk once; requests/s, latency percentiles (ms) and non-2xx count."""
    command = ["wrk", "-t", str(THREADS), "-c", str(connections), "-d", f"{duration}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    percentiles = {p: _ms(v, unit) for p, v, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": percentiles.get("50"), "p99": percentiles.get("99"), "non_2xx": int(bad.group(1)) if bad else 0}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bench_keys(count: int) -> list[str]:
    """`count` fresh unlimited keys from the webapp's own command (the last line of each call's output),
    made in one process."""
    make = ("from django.core.management import call_command\n"
            f"for _ in range({count}): call_command('create_api_key', plan='unlimited', name='bench')")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", make],
                         cwd=ROOT / "webapp", capture_output=True, text=True, check=True).stdout  # fmt: skip
    lines = out.splitlines()
    made = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("store it now")]  # the key follows
    assert len(made) == count, f"made {len(made)} keys of {count}"  # not `out`: it holds the keys
    return made


def in_process(key: str, requests: int = 20_000) -> tuple[float, float]:
    """Microseconds a request of /healthz and of the cached offers take in the webapp's application
    alone, the best of three rounds (IN_PROCESS)."""
    path = os.pathsep.join([*(str(ROOT / d) for d in ("webapp", "include", "plugins")),
                            *filter(None, [os.environ.get("PYTHONPATH")])])  # fmt: skip
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(requests)], capture_output=True, text=True, check=True,
                         cwd=ROOT / "webapp", env={**os.environ, "PYTHONPATH": path, "BENCH_KEY": key}).stdout  # fmt: skip
    healthz, offers = (float(v) for v in out.split()[-2:])
    return healthz, offers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webapp", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GPUBROKER_WEB_WORKERS", "2")),
                        help="uvicorn workers of the bare app (match the webapp's)")  # fmt: skip
    parser.add_argument("--key", help="an API key for every run (default: a new unlimited one per run, as the plan "
                                      "allows 100,000 requests a minute)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    # KEYS_PER_THREAD keys of their own per wrk thread in each keyed run, and one for the looks around them
    per_run = THREADS * KEYS_PER_THREAD
    made = iter(bench_keys(KEYED_RUNS * per_run + 2) if not args.key else [args.key] * (KEYED_RUNS * per_run + 2))
    fresh_keys = lambda: ",".join(next(made) for _ in range(per_run))  # noqa: E731
    auth = {"Authorization": f"Bearer {next(made)}"}
    offers = f"{args.webapp}/api/v1/offers?gpu=H100"
    warm = httpx.get(offers, headers=auth, timeout=30)
    warm.raise_for_status()

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare.py").write_text(BARE_APP)
        as_wrk_asks = httpx.get(offers, headers=auth | {"Accept-Encoding": "identity"}, timeout=30)
        (Path(tmp) / "offers.body").write_bytes(as_wrk_asks.content)
        sent = [(k, v) for k, v in as_wrk_asks.headers.items() if k not in ("date", "server")]  # uvicorn adds those
        (Path(tmp) / "offers.headers").write_text(json.dumps(sent))
        script = str(Path(tmp) / "bench.lua")
        Path(script).write_text(SCRIPT)
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), "--workers",
                                 str(args.workers), "--no-access-log", "--log-level", "warning"], cwd=tmp)  # fmt: skip
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            def run(url: str, keys: str = "", headers: dict | None = None, rate: float | None = None) -> dict:
                env = {"BENCH_KEYS": keys, "BENCH_CONNECTIONS": str(args.connections)}
                return wrk(url, args.duration, args.connections, headers or {}, script,
                           env | ({"BENCH_RATE": str(rate)} if rate else {}))  # fmt: skip

            results = {
                BARE: run(f"http://127.0.0.1:{port}/"),
                BARE_OFFERS: run(f"http://127.0.0.1:{port}/offers"),
                "webapp /healthz": run(f"{args.webapp}/healthz"),
                PLAIN: run(offers, fresh_keys()),
                GZIP: run(offers, fresh_keys(), ACCEPT_GZIP),
            }
            for name in (PLAIN, GZIP):
                results[f"{name}, at half its peak"] = run(offers, fresh_keys(), ACCEPT_GZIP if name == GZIP else {},
                                                           rate=results[name]["rps"] / 2)  # fmt: skip
        finally:
            bare.terminate()
            bare.wait(10)

    inside = in_process(next(made))
    zipped = int(httpx.get(offers, headers=auth | ACCEPT_GZIP, timeout=30).headers["content-length"])
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s; webapp and bare app: {args.workers} uvicorn workers;"
          f" offers body {len(warm.content)} bytes, {zipped} gzipped; {os.cpu_count()} CPUs\n")  # fmt: skip
    print("| target | requests/s | p50 ms | p99 ms | non-2xx |\n| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non_2xx']} |")
    bare_rps, health_rps = results[BARE]["rps"], results["webapp /healthz"]["rps"]
    print()
    if refused := [name for name, r in results.items() if r["non_2xx"]]:
        print(f"NOT VALID: non-2xx answers in {', '.join(refused)} (a rate limit? a key from --key?)")
    for name in (PLAIN, GZIP):
        peak, p99 = results[name]["rps"], results[f"{name}, at half its peak"]["p99"]
        for baseline, ratio, goal in (("healthz", peak / health_rps, 0.70), ("bare ASGI", peak / bare_rps, 0.05)):
            print(f"{name} / {baseline}: {ratio:.1%} (goal >= {goal:.0%}) {'ok' if ratio >= goal else 'MISSED'}")
        print(f"{name}: p99 at {peak / 2:,.0f} req/s (half its peak): {p99:.2f} ms (goal <= 25 ms) "
              f"{'ok' if p99 <= 25 else 'MISSED'}")  # fmt: skip
    ceiling = results[BARE_OFFERS]["rps"] / bare_rps
    print(f"the answer alone: {BARE_OFFERS} / {BARE}: {ceiling:.1%} (sending its bytes and headers, no work at all); "
          f"{PLAIN} / {BARE_OFFERS}: {results[PLAIN]['rps'] / results[BARE_OFFERS]['rps']:.1%}")  # fmt: skip
    # Machine time a request (all cores: the workers, wrk, the kernel): at 70% of /healthz's rate an
    # offers request may take healthz's / 0.7; what the answer alone takes of that is not the gateway's.
    per_request = {name: os.cpu_count() * 1e6 / r["rps"] for name, r in results.items()}
    budget = per_request["webapp /healthz"] / 0.7 - per_request[BARE_OFFERS]
    print(f"the gateway's budget at 70% of /healthz: {per_request['webapp /healthz'] / 0.7:.1f} us of machine time a "
          f"request, {per_request[BARE_OFFERS]:.1f} of them the answer alone: {budget:.1f} us for its work. That work "
          f"alone, in process (no server, no socket): {inside[1] - inside[0]:.1f} us (cached offers {inside[1]:.1f} us, "
          f"/healthz {inside[0]:.1f} us)")  # fmt: skip


if __name__ == "__main__":
    main()
