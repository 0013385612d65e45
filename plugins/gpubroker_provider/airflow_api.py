"""A small client for the Airflow 3 REST API: trigger a DAG run and wait for its end.

Used by `make up` (the first sync) and by tests that drive the running Airflow.
`python -m gpubroker_provider.airflow_api trigger DAG_ID [--conf JSON] [--wait SECONDS]`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

TERMINAL = {"success", "failed"}


def stack_password(username: str) -> str:
    """The local stack's generated Airflow password for `username` (astro/local/stack.sh keeps it in
    .stack/airflow/passwords.json; GPUBROKER_STATE moves .stack)."""
    state = Path(os.environ.get("GPUBROKER_STATE") or Path(__file__).resolve().parents[2] / ".stack")
    try:
        return json.loads((state / "airflow" / "passwords.json").read_text())[username]
    except (OSError, ValueError, KeyError):
        raise RuntimeError(f"no Airflow password for {username!r} in {state}/airflow/passwords.json: "
                           "start the stack with `make up`, or pass the password") from None  # fmt: skip


class AirflowApi:
    def __init__(self, base_url: str | None = None, username: str = "admin", password: str | None = None):
        self.http = httpx.Client(base_url=base_url or os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080"), timeout=30)
        password = stack_password(username) if password is None else password
        token = self.http.post("/auth/token", json={"username": username, "password": password})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"/api/v2{path}", **kwargs)
        if response.is_error:
            raise RuntimeError(f"Airflow API {method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the DAG processor has parsed `dag_id`."""
        deadline = time.monotonic() + timeout
        while self.http.get(f"/api/v2/dags/{dag_id}").status_code == 404:
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG {dag_id} not parsed after {timeout:.0f}s")
            time.sleep(1)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def runs(self, dag_id: str, state: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params={"state": state})["dag_runs"]

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.set_paused(dag_id, False)
        run = self._call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.run(dag_id, run_id)["state"]) not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(1)
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]


def main() -> int:
    parser = argparse.ArgumentParser(description="Trigger an Airflow DAG run and wait for it.")
    parser.add_argument("command", choices=["trigger"])
    parser.add_argument("dag_id")
    parser.add_argument("--conf", type=json.loads, default={})
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the run to end (0: don't)")
    args = parser.parse_args()
    api = AirflowApi()
    run_id = api.trigger(args.dag_id, args.conf)
    print(f"triggered {args.dag_id}: {run_id}")
    if not args.wait:
        return 0
    started = time.monotonic()
    state = api.wait(args.dag_id, run_id, args.wait)
    print(f"{args.dag_id} {run_id}: {state} in {time.monotonic() - started:.1f}s")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
