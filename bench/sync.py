"""A full 25-vendor replay sync on the running stack (`make up`): its wall time, per-stage times, and
the wall time against the slowest provider's own sync.

Triggers `gpubroker_data_sync` in the stack's Airflow (every provider, from the replay server) `--runs`
times (the first warms the workers unless `--runs 1`), then once for the slowest provider alone:

- **wall**: the DAG run's start to end (Airflow's own timestamps, not our polling);
- **per stage**, over the 25 providers (max and median, seconds): queue (task queued -> started),
  fetch, normalise, gate, land (each provider's `gate_reports.timings`), task overhead (task
  duration - those stages: process start, imports, XCom), and the DAG's other tasks;
- **gate cost per provider**: the GX gate's seconds against the provider's own stages (fetch..land),
  and whether it dominates them (more than half, for the median provider); `/dq/` shows the same
  per provider from its latest gate report;
- **bound**: the issue's target `wall <= 1.2 x slowest provider's own fetch..land + fixed overhead`,
  with the fixed overhead measured as the single-provider run's wall minus that provider's own stages;
- **floor**: what the machine allows at best, `fixed overhead + (CPU of every provider's own stages)
  / cores` (`gate_reports.timings.cpu`: the sync processes' CPU alone, not PostgreSQL's or the
  replay server's, so a floor that is low if anything). Where the floor is above the bound, no
  arrangement of the same per-provider work meets the bound on this machine.

Usage: .venv/bin/python bench/sync.py [--runs 2] [--timeout 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpubroker import store  # noqa: E402
from gpubroker_provider.airflow_api import AirflowApi  # noqa: E402

DAG, TASK = "gpubroker_data_sync", "sync_provider"
STAGES = ("fetch", "normalise", "gate", "land")


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def seconds(start: str | None, end: str | None) -> float:
    return (when(end) - when(start)).total_seconds() if start and end else float("nan")


def sync(api: AirflowApi, conf: dict, timeout: float) -> dict:
    """One DAG run: its wall time, its tasks and each provider's stage timings."""
    run_id = api.trigger(DAG, conf)
    state = api.wait(DAG, run_id, timeout)
    run = api.run(DAG, run_id)
    tis = api.task_instances(DAG, run_id)
    with store.connect() as conn:
        reports = conn.execute(
            "SELECT DISTINCT ON (provider) provider, outcome, timings FROM gate_reports"
            " WHERE run_at BETWEEN %s AND %s ORDER BY provider, run_at DESC",
            (when(run["start_date"]), when(run["end_date"])),
        ).fetchall()
    providers = {}
    for ti in (t for t in tis if t["task_id"] == TASK):
        name = ti["rendered_map_index"]
        timings = next((t for p, _, t in reports if p == name), {})
        own = sum(timings.get(s, 0.0) for s in STAGES)
        providers[name] = {"state": ti["state"], "queue": seconds(ti["queued_when"], ti["start_date"]),
                           "task": ti["duration"] or float("nan"), "own": own,
                           **{s: timings.get(s, float("nan")) for s in STAGES}}  # fmt: skip
        providers[name]["overhead"] = providers[name]["task"] - own
        providers[name]["cpu"] = timings.get("cpu", float("nan"))
    others = {t["task_id"]: t["duration"] or 0.0 for t in tis if t["task_id"] != TASK}
    return {"state": state, "wall": seconds(run["start_date"], run["end_date"]), "providers": providers, "others": others}


def show(label: str, result: dict) -> None:
    p = result["providers"]
    print(f"\n{label}: {result['state']}, wall {result['wall']:.1f} s, {len(p)} providers "
          f"({sum(v['state'] == 'success' for v in p.values())} landed), load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  {'stage':<16}{'max':>8}{'median':>8}  slowest")
    for stage in ("queue", *STAGES, "overhead", "task"):
        values = {name: v[stage] for name, v in p.items() if v[stage] == v[stage]}  # drop NaN
        if values:
            slowest = max(values, key=values.get)
            print(f"  {stage:<16}{values[slowest]:>8.2f}{statistics.median(values.values()):>8.2f}  {slowest}")
    for task, duration in result["others"].items():
        print(f"  {task:<16}{duration:>8.2f}")


def show_gate_cost(result: dict) -> None:
    """Each provider's gate seconds against its own stages (fetch..land), largest share first."""
    p = {name: v for name, v in result["providers"].items() if v["own"] > 0 and v["gate"] == v["gate"]}
    if not p:
        return
    share = {name: v["gate"] / v["own"] for name, v in p.items()}
    print(f"\n  {'gate cost':<16}{'gate':>8}{'own':>8}  share of the provider's fetch..land")
    for name in sorted(p, key=share.get, reverse=True):
        print(f"  {name:<16}{p[name]['gate']:>8.2f}{p[name]['own']:>8.2f}  {share[name]:.0%}")
    median = statistics.median(share.values())
    print(f"  median share {median:.0%}: the gate {'dominates' if median > 0.5 else 'does not dominate'} a provider's own stages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="full syncs; all but the last warm up")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    api = AirflowApi()
    for i in range(args.runs):
        full = sync(api, {}, args.timeout)
        show(f"full sync {i + 1}/{args.runs}{' (warm-up)' if i < args.runs - 1 else ''}", full)
    show_gate_cost(full)
    slowest = max(full["providers"], key=lambda name: full["providers"][name]["own"])
    alone = sync(api, {"providers": [slowest]}, args.timeout)
    show(f"{slowest} alone", alone)
    own = alone["providers"][slowest]["own"]
    fixed = alone["wall"] - own
    bound = 1.2 * own + fixed
    print(f"\nslowest provider in the full sync: {slowest}, own fetch..land {full['providers'][slowest]['own']:.2f} s there, "
          f"{own:.2f} s alone; fixed overhead (its run alone: wall - own) {fixed:.1f} s")  # fmt: skip
    cpu = sum(v["cpu"] for v in full["providers"].values())
    floor = fixed + cpu / os.cpu_count()
    print(f"the providers' own stages took {cpu:.2f} s of CPU in the full sync: floor {fixed:.1f} + {cpu:.2f} / "
          f"{os.cpu_count()} cores = {floor:.1f} s, {'above' if floor > bound else 'within'} the bound")  # fmt: skip
    print(f"full sync wall {full['wall']:.1f} s vs bound 1.2 x {own:.2f} + {fixed:.1f} = {bound:.1f} s: "
          f"{'within' if full['wall'] <= bound else 'OVER'}; target <= 45 s warm: {'met' if full['wall'] <= 45 else 'NOT met'}; "
          f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    return 0 if full["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
