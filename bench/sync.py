"""A manual sync of every vendor on the running stack (`make up`), timed as a user sees it.

Triggers `gpubroker_data_sync` (every vendor, from the replay server) `--runs` times (all but the
last warm the workers up) through Airflow's REST API, as the UI's "Trigger" does, and reports:

- **trigger -> success**: from the REST call that triggers the run to the moment the run is seen
  `success` (polled every 0.2 s): what a user waits. The goal (issue #20): <= 30 s on 2 cores, warm.
  Airflow's own start -> end is printed beside it; the difference is the scheduler's pick-up;
- **groups**: the run's `sync_providers` tasks (at most 8, one wave), each syncing its vendors in turn:
  their task durations, and the other tasks (`providers`, `refresh_cache`);
- **per stage over the vendors** (max and median, seconds, from each vendor's `gate_reports.timings`):
  fetch, normalise, gate, land, and each vendor's own CPU; the **gate's cost** per vendor against its
  own stages (fetch..land), and whether it dominates them; `/dq/` shows the same from the latest report;
- **floor**: what the machine allows at best, the run's fixed overhead (its first and last tasks) plus
  the vendors' own CPU over the cores (the sync processes' CPU alone: a low floor if anything).

Usage: set -a; . .stack/secrets.env; set +a; .venv/bin/python bench/sync.py [--runs 2] [--timeout 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpubroker import store  # noqa: E402
from gpubroker_provider.airflow_api import TERMINAL, AirflowApi  # noqa: E402

DAG, GROUP_TASK = "gpubroker_data_sync", "sync_providers"
STAGES = ("fetch", "normalise", "gate", "land")
GOAL_SECONDS = 30


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def seconds(start: str | None, end: str | None) -> float:
    return (when(end) - when(start)).total_seconds() if start and end else float("nan")


def sync(api: AirflowApi, timeout: float) -> dict:
    """One run, triggered and watched over REST: what the user waited, its tasks, each vendor's stages."""
    api.wait_for_dag(DAG)
    started = time.monotonic()
    run_id = api.trigger(DAG)
    while (state := api.run(DAG, run_id)["state"]) not in TERMINAL:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{DAG} run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(0.2)
    waited = time.monotonic() - started
    run, tis = api.run(DAG, run_id), api.task_instances(DAG, run_id)
    with store.connect() as conn:
        reports = conn.execute(
            "SELECT DISTINCT ON (provider) provider, timings FROM gate_reports WHERE run_at BETWEEN %s AND %s"
            " ORDER BY provider, run_at DESC",
            (when(run["start_date"]), when(run["end_date"])),
        ).fetchall()
    groups = {ti["rendered_map_index"]: ti["duration"] or float("nan") for ti in tis if ti["task_id"] == GROUP_TASK}
    others = {ti["task_id"]: ti["duration"] or 0.0 for ti in tis if ti["task_id"] != GROUP_TASK}
    vendors = {provider: {s: timings.get(s, float("nan")) for s in (*STAGES, "cpu")} for provider, timings in reports}
    for stages in vendors.values():
        stages["own"] = sum(stages[s] for s in STAGES if stages[s] == stages[s])
    return {"state": state, "waited": waited, "airflow": seconds(run["start_date"], run["end_date"]),
            "groups": groups, "others": others, "vendors": vendors}  # fmt: skip


def show(label: str, result: dict) -> None:
    v = result["vendors"]
    print(f"\n{label}: {result['state']}, trigger -> success {result['waited']:.1f} s (Airflow's start -> end "
          f"{result['airflow']:.1f} s), {len(v)} vendors landed in {len(result['groups'])} groups, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for group, duration in sorted(result["groups"].items(), key=lambda g: -g[1]):
        print(f"  group {duration:6.2f} s  {group}")
    for task, duration in result["others"].items():
        print(f"  {task:<22}{duration:6.2f} s")
    print(f"  {'stage':<16}{'max':>8}{'median':>8}  slowest")
    for stage in (*STAGES, "cpu", "own"):
        values = {name: s[stage] for name, s in v.items() if s[stage] == s[stage]}  # drop NaN
        if values:
            slowest = max(values, key=values.get)
            print(f"  {stage:<16}{values[slowest]:>8.2f}{statistics.median(values.values()):>8.2f}  {slowest}")


def show_gate_cost(result: dict) -> None:
    """Each vendor's gate seconds against its own stages (fetch..land), largest share first."""
    v = {name: s for name, s in result["vendors"].items() if s["own"] > 0 and s["gate"] == s["gate"]}
    if not v:
        return
    share = {name: s["gate"] / s["own"] for name, s in v.items()}
    print(f"\n  {'gate cost':<16}{'gate':>8}{'own':>8}  share of the vendor's fetch..land")
    for name in sorted(v, key=share.get, reverse=True):
        print(f"  {name:<16}{v[name]['gate']:>8.2f}{v[name]['own']:>8.2f}  {share[name]:.0%}")
    median = statistics.median(share.values())
    print(f"  median share {median:.0%}: the gate {'dominates' if median > 0.5 else 'does not dominate'} a vendor's own stages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="full syncs; all but the last warm up")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    api = AirflowApi()
    for i in range(args.runs):
        result = sync(api, args.timeout)
        show(f"sync of every vendor {i + 1}/{args.runs}{' (warm-up)' if i < args.runs - 1 else ''}", result)
    show_gate_cost(result)
    cpu = sum(s["cpu"] for s in result["vendors"].values() if s["cpu"] == s["cpu"])
    fixed = sum(result["others"].values())
    floor = fixed + cpu / os.cpu_count()
    print(f"\nthe vendors' own stages took {cpu:.1f} s of CPU: floor {fixed:.1f} s (the run's other tasks) + "
          f"{cpu:.1f} / {os.cpu_count()} cores = {floor:.1f} s")  # fmt: skip
    print(f"trigger -> success {result['waited']:.1f} s: goal <= {GOAL_SECONDS} s warm "
          f"{'met' if result['waited'] <= GOAL_SECONDS else 'MISSED'}")  # fmt: skip
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
