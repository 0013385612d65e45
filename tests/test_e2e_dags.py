"""The DAGs run for real in the running Airflow (REST API), on the real services of `make test`."""

from __future__ import annotations

import copy
from contextlib import contextmanager
import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from gpubroker import settings
from gpubroker_provider.airflow_api import AirflowApi
from gpubroker_provider.vendors import VENDORS
from tests.conftest import kafka_tail, recording

pytestmark = pytest.mark.stack
WEB = "http://127.0.0.1:8000"
SYNC = "gpubroker_data_sync"


@pytest.fixture(scope="module")
def api():
    return AirflowApi()


def run(api: AirflowApi, dag_id: str, conf: dict | None = None, timeout: float = 600) -> tuple[str, list[dict], dict]:
    run_id = api.trigger(dag_id, conf)
    state = api.wait(dag_id, run_id, timeout)
    return state, api.task_instances(dag_id, run_id), api.run(dag_id, run_id)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


SYNC_TASK = "sync_providers"  # mapped over groups of providers (at most 8): one provider per group here


def ti(tis: list[dict], task_id: str, index: int = -1) -> dict:
    return next(t for t in tis if t["task_id"] == task_id and t["map_index"] == index)


def synced(tis: list[dict], group: str) -> dict:
    """The sync task of the group named `group` (its providers, comma-separated)."""
    return next(t for t in tis if t["task_id"] == SYNC_TASK and t["rendered_map_index"] == group)


@pytest.mark.parametrize("dag_id", ["gpubroker_health_checks", "gpubroker_cache_warming", "gpubroker_dq_report"])
def test_the_scheduled_dags_run_green(api, dag_id):
    state, tis, _ = run(api, dag_id)
    assert state == "success", [(t["task_id"], t["state"]) for t in tis]


def vastai_prices(key: str) -> dict[str, float]:
    response = httpx.get(f"{WEB}/api/v1/offers", params={"provider": "vastai", "per_page": 500},
                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    response.raise_for_status()
    return {i["offer_id"]: i["price_per_hour"] for i in response.json()["items"]}


def vastai_warnings(key: str) -> list[str]:
    return httpx.get(f"{WEB}/api/v1/offers", params={"provider": "vastai"}, headers={"Authorization": f"Bearer {key}"}).json()["warnings"]


def test_a_bad_batch_is_quarantined_while_the_others_land_and_an_approval_param_lands_it(api, stack_replay, stack_api_key):
    assert run(api, SYNC, {"providers": ["vastai", "lambda"]})[0] == "success"
    good = vastai_prices(stack_api_key)
    consumer = kafka_tail(settings.Topics.PROVIDER_EVENTS)

    bad = copy.deepcopy(recording("vastai", "bundles.json"))
    for row in bad["offers"]:
        row["dph_total"] *= 1000  # far outside every GPU's plausible band
    stack_replay.put("vastai", "bundles.json", bad)
    state, tis, dag_run = run(api, SYNC, {"providers": ["vastai", "lambda"]})
    syncs = {t["rendered_map_index"]: (t["state"], t["try_number"]) for t in tis if t["task_id"] == SYNC_TASK}
    assert syncs == {"vastai": ("failed", 1), "lambda": ("success", 1)}  # vastai fails red at once (no retry), lambda lands
    assert ti(tis, "announce_quarantines")["state"] == "success"  # and the DQ report is asked for
    assert vastai_prices(stack_api_key) == good  # nothing of the bad batch landed; the last good data stays served
    warnings = vastai_warnings(stack_api_key)
    assert warnings and "vastai: latest batch quarantined" in warnings[0]
    with psycopg.connect(settings.DATABASE_URL) as conn:
        quarantine_id, reason, raw_ref = conn.execute(
            "SELECT id, reason, raw_ref FROM quarantine WHERE provider = 'vastai' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        report = conn.execute(
            "SELECT outcome, rows_in, gate_dropped, failures FROM gate_reports WHERE quarantine_id = %s", (quarantine_id,)
        ).fetchone()
    assert reason.startswith("price_above_band") and raw_ref.startswith("file://")
    staged = raw_ref.removeprefix("file://")
    assert json.loads(open(staged).read().splitlines()[1])["offers"][0]["dph_total"] > 300  # the raw payload, as sent
    assert report[0] == "quarantined" and report[1] == len(good) and report[3][0]["reason"] == "price_above_band"
    events, deadline = [], time.monotonic() + 60
    while not events and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error() and message.key() == b"vastai":
            events.append(json.loads(message.value()))
    consumer.close()
    assert events and (events[0]["type"], events[0]["status"]) == ("quarantine", "stale")

    # the operator approves it through the DAG's Param: it lands, then vastai syncs (good again) as usual
    stack_replay.reset()
    state, tis, _ = run(api, SYNC, {"providers": ["lambda"], "approve_quarantine": quarantine_id})
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    assert sorted(t["rendered_map_index"] for t in tis if t["task_id"] == SYNC_TASK) == ["lambda", "vastai"]
    with psycopg.connect(settings.DATABASE_URL) as conn:
        (approved_at,) = conn.execute("SELECT approved_at FROM quarantine WHERE id = %s", (quarantine_id,)).fetchone()
        outcomes = conn.execute(
            "SELECT outcome FROM gate_reports WHERE provider = 'vastai' AND run_at >= %s ORDER BY run_at, id",
            (approved_at,),
        ).fetchall()
    assert approved_at is not None and [o for (o,) in outcomes][:2] == ["approved", "landed"]
    assert vastai_prices(stack_api_key) == good and vastai_warnings(stack_api_key) == []  # the good batch after it


@contextmanager
def health_checks_paused(api: AirflowApi):
    dag = "gpubroker_health_checks"
    api.set_paused(dag, True)
    try:
        deadline = time.monotonic() + 120
        while api.runs(dag, state="running") and time.monotonic() < deadline:
            time.sleep(1)
        yield
    finally:
        api.set_paused(dag, False)


def test_a_vendor_timing_out_does_not_delay_the_others(api, stack_replay, capsys):
    def vastai_landed_after(tis, dag_run) -> float:
        land = synced(tis, "vastai")
        assert land["state"] == "success"
        return (when(land["end_date"]) - when(dag_run["start_date"])).total_seconds()

    state, tis, dag_run = run(api, SYNC, {"providers": ["vastai"]})
    alone = vastai_landed_after(tis, dag_run)

    with health_checks_paused(api):  # their probes would take the queued faults
        stack_replay.faults("lambda", *[{"delay": 6}] * 4)  # every attempt of lambda's fetch times out (5 s)
        state, tis, dag_run = run(api, SYNC, {"providers": ["lambda", "vastai"]})
    assert synced(tis, "lambda")["try_number"] >= 2
    beside_a_slow_vendor = vastai_landed_after(tis, dag_run)
    with capsys.disabled():
        print(f"\n  vastai landed {alone:.1f} s after the run started alone, {beside_a_slow_vendor:.1f} s beside a timing-out lambda")
    assert beside_a_slow_vendor < alone + 15  # lambda's 4 x 5 s timeouts and its 30 s retry delay are not waited for


# --- the same sync on a second Airflow instance with the CeleryExecutor (stack.sh's GPUBROKER_AIRFLOW_INSTANCE) ---
STACK_SH = Path(__file__).resolve().parents[1] / "astro" / "local" / "stack.sh"
CELERY = {"GPUBROKER_AIRFLOW_INSTANCE": "celerytest", "GPUBROKER_AIRFLOW_PORT": "8091", "GPUBROKER_EXECUTOR": "celery"}


@pytest.fixture(scope="module")
def celery_airflow():
    """A second Airflow (own metadata database, port 8091, 2 Celery workers, broker Redis db 2) beside the
    shared one, on the stack's PostgreSQL, Redis, replay server and staging; stopped afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | CELERY
    try:
        subprocess.run(["bash", str(STACK_SH), "airflow", "up"], env=env, check=True, timeout=300, capture_output=True)
        yield AirflowApi(base_url=f"http://127.0.0.1:{CELERY['GPUBROKER_AIRFLOW_PORT']}")
    finally:
        subprocess.run(["bash", str(STACK_SH), "airflow", "down"], env=env, timeout=120, capture_output=True)


def celery_tasks_received() -> int:
    logs = STACK_SH.parents[2] / ".stack" / "logs"
    return sum((logs / f"celerytest-airflow-celery-worker-{i}.log").read_text().count("] received") for i in (1, 2))


def test_the_full_sync_runs_green_on_the_celery_executor(celery_airflow, stack_replay):
    before = celery_tasks_received()
    state, tis, _ = run(celery_airflow, SYNC, timeout=300)
    syncs = [t for t in tis if t["task_id"] == SYNC_TASK]
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis if t["state"] != "success"]
    assert {t["state"] for t in syncs} == {"success"}
    assert sorted(p for t in syncs for p in t["rendered_map_index"].split(", ")) == sorted(VENDORS)  # every vendor once
    assert celery_tasks_received() - before >= len(tis) - 1  # every task (but a skipped one) went through a Celery worker
