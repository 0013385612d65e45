"""Circuit breaker under contention: one Lua script per transition (gpubroker.breaker) vs the optimistic
WATCH/MULTI read-modify-write it replaced (baseline, written here), same Redis, same threads.

Each guarded call is admit + record. The baseline reads a JSON state, then rewrites it in a
transaction retried whenever another worker wrote in between (its retries are counted).
Uses Redis database 12 (flushed). Usage: .venv/bin/python bench/breaker.py [--threads 8] [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import redis

from gpubroker import settings
from gpubroker.breaker import Breaker, snapshot_all

URL = settings.REDIS_URL.rsplit("/", 1)[0] + "/12"  # the stack's Redis (its credentials), database 12


def lua(calls: int) -> None:
    breaker = Breaker("bench", redis.Redis.from_url(URL))
    for _ in range(calls):
        with breaker.guard():
            pass


retries = 0


def watch_multi(calls: int) -> None:
    global retries
    client, key = redis.Redis.from_url(URL), "bench:watch"
    for _ in range(calls):
        json.loads(client.get(key) or "{}")  # may the call go ahead?
        while True:
            try:
                with client.pipeline() as pipe:
                    pipe.watch(key)
                    state = json.loads(pipe.get(key) or '{"outcomes": [], "successes": 0}')
                    state["outcomes"] = (state["outcomes"] + [True])[-20:]
                    state["successes"] += 1
                    pipe.multi()
                    pipe.set(key, json.dumps(state))
                    pipe.execute()
                    break
            except redis.WatchError:
                retries += 1


def run(work, threads: int, calls: int) -> float:
    workers = [threading.Thread(target=work, args=(calls,)) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    client = redis.Redis.from_url(URL)
    client.flushdb()
    total = args.threads * args.calls
    print(f"{args.threads} threads x {args.calls} guarded calls on one provider")
    rate = run(lua, args.threads, args.calls)
    counted = snapshot_all(client)["bench"].successes_total
    print(f"  Lua script (admit + record):  {rate:8.0f} calls/s, {counted}/{total} outcomes kept")
    rate = run(watch_multi, args.threads, args.calls)
    counted = json.loads(client.get("bench:watch"))["successes"]
    print(f"  WATCH/MULTI (read + rewrite): {rate:8.0f} calls/s, {counted}/{total} outcomes kept, {retries} retries")
    client.flushdb()


if __name__ == "__main__":
    main()
