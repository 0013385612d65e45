"""Throughput and latency of the serving path, against baselines measured in the same run, with wrk.

Targets (issue #7): cached `GET /api/v1/offers?gpu=H100` with a valid key reaches >= 70% of the
webapp's own `/healthz` and >= 5% of a bare ASGI hello app on uvicorn (same worker count), with
p99 <= 25 ms at half its measured maximum rate. Measured twice: as wrk asks by default (no
Accept-Encoding: the full body) and as real HTTP clients ask (gzip accepted: the gzipped copy).
Two more bare app baselines send the webapp's offers answer itself (plain and gzipped), bytes and
headers, with no work: what the answer alone costs, so the bench can say how much of the time that
70% of `/healthz` allows is left for the gateway's work (auth, rate limit, cache, metrics). Then the
hot path in stages (STAGES_APP): the cached answer alone, then with the key, then with the rate
limit, then the whole gateway, each against /healthz on the same server: what each step costs.

Needs the running stack's webapp (`make up`), its credentials in the environment (`set -a;
. .stack/secrets.env; set +a`: the keys are made in its database) and Debian's `wrk`. It starts the bare ASGI app itself
and makes unlimited API keys (named `bench`; four per wrk thread and keyed run) unless --key is given.

Usage: .venv/bin/python bench/api.py [--duration 10] [--connections 32] [--workers 2] [--rounds 3]
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
# /offers and /offers.gz: the webapp's cached offers answer as wrk asks for it and gzipped, byte for
# byte, with its headers: what sending it costs alone
ANSWERS = {f"/{name}": ([(k.encode(), v.encode()) for k, v in json.loads((HERE / f"{name}.headers").read_text())],
                        (HERE / f"{name}.body").read_bytes()) for name in ("offers", "offers.gz")}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers, body = ANSWERS.get(scope["path"], (HELLO_HEADERS, HELLO))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
'''
# The gateway's hot path in stages, served by uvicorn like the webapp: what each step costs under load.
# A bench double of Gateway.api made of the gateway's own methods: /answer/<path> is Gateway.cached
# alone (L2, then L1, then Django); /key/<path> first recalls the client's key; /limit/<path> also
# takes a slot of the worker's rate-limit lease, with its RateLimit headers. Other paths, and a key or
# a slot that needs an await to get (the first requests), go to the webapp's own application.
STAGES_APP = '''
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")
from gpubroker_web.asgi import application
from gateway import runtime
from gateway.asgi import Answered, Gateway

gateway = application if isinstance(application, Gateway) else application.app  # under OpenTelemetry's


async def app(scope, receive, send):
    stage, _, rest = scope.get("path", "").lstrip("/").partition("/")
    if scope["type"] != "http" or stage not in ("answer", "key", "limit"):
        return await application(scope, receive, send)
    scope, limit_headers = {**scope, "path": "/" + rest}, []
    if stage != "answer":
        client = gateway.known_client(scope)
        if client is None:
            return await application(scope, receive, send)
        if stage == "limit":
            decision = runtime.limiter().leased(client.identity)
            if decision is None:
                return await application(scope, receive, send)
            limit_headers = decision.headers()
    state = {"data_version": runtime.limiter().shared.data_version}
    await gateway.cached(scope, receive, Answered(send), limit_headers, state)
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
BARE_GZIP = BARE_OFFERS + ", gzipped"
PLAIN = "cached /api/v1/offers?gpu=H100 + key"
# what browsers, curl --compressed, requests and httpx send: the gateway answers from its gzipped copy
GZIP = PLAIN + ", Accept-Encoding: gzip"
ACCEPT_GZIP = {"Accept-Encoding": "gzip"}
# the stages of STAGES_APP, each with what it adds, and the whole gateway last
STAGES = (("/answer", "the cached answer alone (Gateway.cached)"), ("/key", "+ the key recalled"),
          ("/limit", "+ a leased rate-limit slot and its headers"), ("", "+ the rest: the whole gateway"))  # fmt: skip
THREADS = 2  # wrk threads
KEYS_PER_THREAD = 4  # an unlimited key allows 100,000 requests a minute: a thread moves on to its next key
KEYED_RUNS = 4  # offers plain and gzipped, each at its peak and at half of it (and the stages, each round)
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
    made_keys = subprocess.run([sys.executable, "manage.py", "shell", "-c", make],
                               cwd=ROOT / "webapp", capture_output=True, text=True)  # fmt: skip
    if made_keys.returncode:  # stderr only: stdout holds the keys made before the failure
        sys.exit(f"{made_keys.stderr}\ncould not make bench keys: is the stack up (make up) and are its credentials "
                 "in the environment (set -a; . .stack/secrets.env; set +a)?")  # fmt: skip
    lines = made_keys.stdout.splitlines()
    made = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("store it now")]  # the key follows
    assert len(made) == count, f"made {len(made)} keys of {count}"  # not `out`: it holds the keys
    return made


def webapp_path() -> str:
    """PYTHONPATH for the webapp's modules (and the caller's own)."""
    return os.pathsep.join([*(str(ROOT / d) for d in ("webapp", "include", "plugins")),
                            *filter(None, [os.environ.get("PYTHONPATH")])])  # fmt: skip


def serve(app: str, url: str, workers: int, cwd: str, path: str | None = None) -> subprocess.Popen:
    """uvicorn serving `app` at `url` (started and answering)."""
    port = url.rsplit(":", 1)[1]
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--port", port, "--workers", str(workers),
                               "--no-access-log", "--log-level", "warning"], cwd=cwd,
                              env={**os.environ, **({"PYTHONPATH": path} if path else {})})  # fmt: skip
    for _ in range(300):
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"{app} did not start at {url}")


def in_process(key: str, requests: int = 20_000) -> tuple[float, float]:
    """Microseconds a request of /healthz and of the cached offers take in the webapp's application
    alone, the best of three rounds (IN_PROCESS)."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(requests)], capture_output=True, text=True, check=True,
                         cwd=ROOT / "webapp", env={**os.environ, "PYTHONPATH": webapp_path(), "BENCH_KEY": key}).stdout  # fmt: skip
    healthz, offers = (float(v) for v in out.split()[-2:])
    return healthz, offers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webapp", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GPUBROKER_WEB_WORKERS", "2")),
                        help="uvicorn workers of the bare app (match the webapp's)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the stages (each stage's best is shown)")
    parser.add_argument("--key", help="an API key for every run (default: a new unlimited one per run, as the plan "
                                      "allows 100,000 requests a minute)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    # KEYS_PER_THREAD keys of their own per wrk thread in each keyed run, and one for the looks around them
    per_run, keyed_runs = THREADS * KEYS_PER_THREAD, KEYED_RUNS + len(STAGES) * args.rounds
    made = iter(bench_keys(keyed_runs * per_run + 2) if not args.key else [args.key] * (keyed_runs * per_run + 2))
    fresh_keys = lambda: ",".join(next(made) for _ in range(per_run))  # noqa: E731
    auth = {"Authorization": f"Bearer {next(made)}"}
    offers = f"{args.webapp}/api/v1/offers?gpu=H100"
    warm = httpx.get(offers, headers=auth, timeout=30)
    warm.raise_for_status()

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare.py").write_text(BARE_APP)
        for name, encoding in (("offers", "identity"), ("offers.gz", "gzip")):
            with httpx.stream("GET", offers, headers=auth | {"Accept-Encoding": encoding}, timeout=30) as answer:
                (Path(tmp) / f"{name}.body").write_bytes(b"".join(answer.iter_raw()))  # as sent: not decoded
            sent = [(k, v) for k, v in answer.headers.items() if k not in ("date", "server")]  # uvicorn adds those
            (Path(tmp) / f"{name}.headers").write_text(json.dumps(sent))
        script = str(Path(tmp) / "bench.lua")
        Path(script).write_text(SCRIPT)
        (Path(tmp) / "stages.py").write_text(STAGES_APP)
        bare, stages = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        servers = [serve("bare:app", bare, args.workers, tmp),
                   serve("stages:app", stages, args.workers, tmp, os.pathsep.join([tmp, webapp_path()]))]  # fmt: skip
        try:
            def run(url: str, keys: str = "", headers: dict | None = None, rate: float | None = None) -> dict:
                env = {"BENCH_KEYS": keys, "BENCH_CONNECTIONS": str(args.connections)}
                return wrk(url, args.duration, args.connections, headers or {}, script,
                           env | ({"BENCH_RATE": str(rate)} if rate else {}))  # fmt: skip

            results = {
                BARE: run(f"{bare}/"),
                BARE_OFFERS: run(f"{bare}/offers"),
                BARE_GZIP: run(f"{bare}/offers.gz"),
                "webapp /healthz": run(f"{args.webapp}/healthz"),
                PLAIN: run(offers, fresh_keys()),
                GZIP: run(offers, fresh_keys(), ACCEPT_GZIP),
            }
            for name in (PLAIN, GZIP):
                results[f"{name}, at half its peak"] = run(offers, fresh_keys(), ACCEPT_GZIP if name == GZIP else {},
                                                           rate=results[name]["rps"] / 2)  # fmt: skip
            for _ in range(20):  # each worker's L2 and Django warm (a connection each: either worker answers)
                httpx.get(f"{stages}/api/v1/offers?gpu=H100", headers=auth, timeout=30).raise_for_status()
            ladder: dict[str, dict] = {}  # each stage's best of --rounds, the rounds interleaved: noise only slows
            for _ in range(args.rounds):
                for stage, name in (("/healthz", "/healthz"), *STAGES):
                    url, keys = (f"{stages}/healthz", "") if stage == "/healthz" else \
                        (f"{stages}{stage}/api/v1/offers?gpu=H100", fresh_keys())  # fmt: skip
                    ladder[name] = max(ladder.get(name, {"rps": 0}), run(url, keys), key=lambda r: r["rps"])
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)

    inside = in_process(next(made))
    zipped = int(httpx.get(offers, headers=auth | ACCEPT_GZIP, timeout=30).headers["content-length"])
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s; webapp and bare app: {args.workers} uvicorn workers;"
          f" offers body {len(warm.content)} bytes, {zipped} gzipped; {os.cpu_count()} CPUs\n")  # fmt: skip
    print("| target | requests/s | p50 ms | p99 ms | non-2xx |\n| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non_2xx']} |")
    bare_rps, health_rps = results[BARE]["rps"], results["webapp /healthz"]["rps"]
    print()
    if refused := [name for name, r in {**results, **ladder}.items() if r["non_2xx"]]:
        print(f"NOT VALID: non-2xx answers in {', '.join(refused)} (a rate limit? a key from --key?)")
    for name in (PLAIN, GZIP):
        peak, p99 = results[name]["rps"], results[f"{name}, at half its peak"]["p99"]
        for baseline, ratio, goal in (("healthz", peak / health_rps, 0.70), ("bare ASGI", peak / bare_rps, 0.05)):
            print(f"{name} / {baseline}: {ratio:.1%} (goal >= {goal:.0%}) {'ok' if ratio >= goal else 'MISSED'}")
        print(f"{name}: p99 at {peak / 2:,.0f} req/s (half its peak): {p99:.2f} ms (goal <= 25 ms) "
              f"{'ok' if p99 <= 25 else 'MISSED'}")  # fmt: skip
    # Machine time a request (all cores: the workers, wrk, the kernel): at 70% of /healthz's rate an
    # offers request may take healthz's / 0.7; what the answer alone takes of that is not the gateway's.
    per_request = {name: os.cpu_count() * 1e6 / r["rps"] for name, r in results.items()}
    allowed = per_request["webapp /healthz"] / 0.7
    for name, alone in ((PLAIN, BARE_OFFERS), (GZIP, BARE_GZIP)):
        print(f"{name}: the answer alone ({alone}) is {results[alone]['rps'] / bare_rps:.1%} of the bare hello; at 70% "
              f"of /healthz a request may take {allowed:.1f} us of machine time, the answer alone takes "
              f"{per_request[alone]:.1f}: {allowed - per_request[alone]:.1f} us left for the gateway's work "
              f"(it takes {per_request[name] - per_request[alone]:.1f})")  # fmt: skip
    print(f"\nThe hot path in stages (STAGES_APP, on another {args.workers}-worker uvicorn; {PLAIN.split(' + ')[0]} "
          f"as wrk asks; each stage's best of {args.rounds} rounds):\n")  # fmt: skip
    print("| stage | requests/s | of its /healthz | non-2xx |\n| --- | ---: | ---: | ---: |")
    for name, r in ladder.items():
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] / ladder['/healthz']['rps']:.1%} | {r['non_2xx']} |")
    print(f"\nthe gateway's work alone, in process (no server, no socket): {inside[1] - inside[0]:.1f} us "
          f"(cached offers {inside[1]:.1f} us, /healthz {inside[0]:.1f} us)")

if __name__ == "__main__":
    main()
