"""What an hour of scheduled syncs at the vendors' cadences costs the machine, in CPU-seconds.

Two windows on the running stack, each `--minutes` long, with nothing else running (stop the other
benches and tests first):
1. **syncs on**: every `gpubroker_sync_<vendor>` DAG unpaused, running on its cadence (marketplaces
   every 5 minutes, clouds and pages hourly, lists daily) — what `make up` runs;
2. **syncs paused**: the same stack with those DAGs paused (health checks, cache warming, Flink,
   the webapp and Airflow's own loops go on as before).
The machine's busy CPU time is read from /proc/stat (user + nice + system + irq + softirq, every
process included: task processes, the scheduler, PostgreSQL, Kafka, Flink). The syncs' cost is the
difference between the windows, scaled to an hour; the goal (issue #20) is at most 10% of the
machine: 0.10 x cores x 3600 CPU-seconds an hour (720 on 2 cores). A window shorter than an hour
sees a share of the hourly vendors (each syncs at its own minute): the runs counted in each window
are printed, and the cost is scaled by runs, not only by time.

  set -a; . .stack/secrets.env; set +a
  .venv/bin/python bench/cadence.py --minutes 60      # two hours in all; --minutes 20 for a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "plugins"))

from gpubroker.vendors import VENDORS  # noqa: E402
from gpubroker_provider.airflow_api import AirflowApi  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (/proc/stat's first line)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def sync_runs(api: AirflowApi, since: datetime) -> int:
    """Scheduled sync runs that started since `since` (any state)."""
    total = 0
    for slug in VENDORS:
        runs = api._call("GET", f"/dags/gpubroker_sync_{slug}/dagRuns",
                         params={"run_after_gte": since.isoformat(), "run_type": "scheduled", "limit": 100})  # fmt: skip
        total += runs["total_entries"]
    return total


def window(api: AirflowApi, minutes: float, paused: bool) -> tuple[float, int]:
    for slug in VENDORS:
        api.set_paused(f"gpubroker_sync_{slug}", paused)
    started_at, cpu = datetime.now(timezone.utc), busy_seconds()
    time.sleep(minutes * 60)
    used = busy_seconds() - cpu
    runs = sync_runs(api, started_at)
    print(f"syncs {'paused' if paused else 'on    '}: {used:8.1f} CPU-s in {minutes:g} min "
          f"({used / (minutes * 60 * CORES):6.1%} of {CORES} cores), {runs} scheduled sync runs")  # fmt: skip
    return used, runs


def expected_runs_per_hour() -> float:
    return sum(3600 / v.cadence for v in VENDORS.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60, help="length of each window")
    args = parser.parse_args()
    api = AirflowApi()
    try:
        on, runs = window(api, args.minutes, paused=False)
        off, _ = window(api, args.minutes, paused=True)
    finally:
        for slug in VENDORS:
            api.set_paused(f"gpubroker_sync_{slug}", False)
    per_hour = expected_runs_per_hour()
    cost = (on - off) * (per_hour / runs if runs else 60 / args.minutes)
    budget = 0.10 * CORES * 3600
    print(f"{len(VENDORS)} vendors: {per_hour:.0f} scheduled syncs an hour; measured {runs} in {args.minutes:g} min")
    print(f"the syncs cost {cost:.0f} CPU-s an hour = {cost / (CORES * 3600):.1%} of the machine "
          f"(goal <= 10%: {budget:.0f} CPU-s): {'met' if cost <= budget else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
