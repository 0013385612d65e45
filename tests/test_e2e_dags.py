"""The DAGs run for real in the running Airflow (REST API), on the real services of `make test`."""

from __future__ import annotations

import copy
from contextlib import contextmanager
import json
import time
from datetime import datetime

import httpx
import psycopg
import pytest

from gpubroker import settings
from gpubroker_provider.airflow_api import AirflowApi
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


FETCH, LAND = "sync_provider.fetch_offers", "sync_provider.gate_and_land"


def ti(tis: list[dict], task_id: str, index: int = -1) -> dict:
    return next(t for t in tis if t["task_id"] == task_id and t["map_index"] == index)


@pytest.mark.parametrize("dag_id", ["gpubroker_health_checks", "gpubroker_cache_warming", "gpubroker_dq_report"])
def test_the_scheduled_dags_run_green(api, dag_id):
    state, tis, _ = run(api, dag_id)
    assert state == "success", [(t["task_id"], t["state"]) for t in tis]


def vastai_prices() -> dict[str, float]:
    body = httpx.get(f"{WEB}/api/v1/offers", params={"provider": "vastai", "per_page": 500}).json()
    return {i["offer_id"]: i["price_per_hour"] for i in body["items"]}


def test_a_bad_batch_is_quarantined_while_the_others_land(api, stack_replay):
    assert run(api, SYNC, {"providers": ["vastai", "lambda"]})[0] == "success"
    good = vastai_prices()
    consumer = kafka_tail(settings.Topics.PROVIDER_EVENTS)

    bad = copy.deepcopy(recording("vastai", "bundles.json"))
    for row in bad["offers"]:
        row["dph_total"] *= 1000  # far outside every GPU's plausible band
    stack_replay.put("vastai", "bundles.json", bad)
    state, tis, dag_run = run(api, SYNC, {"providers": ["vastai", "lambda"]})
    lands = {t["map_index"]: t["state"] for t in tis if t["task_id"] == LAND}
    assert lands == {0: "failed", 1: "success"}  # vastai's landing fails red in the UI, lambda's lands
    assert ti(tis, "announce_quarantines")["state"] == "success"  # and the DQ report is asked for
    assert vastai_prices() == good  # nothing of the bad batch landed; the last good data stays served
    warnings = httpx.get(f"{WEB}/api/v1/offers", params={"provider": "vastai"}).json()["warnings"]
    assert warnings and "vastai: latest batch quarantined" in warnings[0]
    with psycopg.connect(settings.DATABASE_URL) as conn:
        reason, raw_ref = conn.execute(
            "SELECT reason, raw_ref FROM quarantine WHERE provider = 'vastai' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert "band_high" in reason and json.loads(open(raw_ref).read())["pages"][0]["offers"][0]["dph_total"] > 300
    events, deadline = [], time.monotonic() + 60
    while not events and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error() and message.key() == b"vastai":
            events.append(json.loads(message.value()))
    consumer.close()
    assert events and (events[0]["type"], events[0]["status"]) == ("quarantine", "stale")

    stack_replay.reset()
    assert run(api, SYNC, {"providers": ["vastai"]})[0] == "success"  # a good batch clears the stale flag
    assert httpx.get(f"{WEB}/api/v1/offers", params={"provider": "vastai"}).json()["warnings"] == []


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
    def vastai_landed_after(tis, dag_run, index) -> float:
        land = ti(tis, LAND, index)
        assert land["state"] == "success"
        return (when(land["end_date"]) - when(dag_run["start_date"])).total_seconds()

    state, tis, dag_run = run(api, SYNC, {"providers": ["vastai"]})
    alone = vastai_landed_after(tis, dag_run, 0)

    with health_checks_paused(api):  # their probes would take the queued faults
        stack_replay.faults("lambda", *[{"delay": 6}] * 4)  # every attempt of lambda's fetch times out (5 s)
        state, tis, dag_run = run(api, SYNC, {"providers": ["lambda", "vastai"]})
    assert ti(tis, FETCH, 0)["try_number"] >= 2  # lambda (map index 0)
    beside_a_slow_vendor = vastai_landed_after(tis, dag_run, 1)
    with capsys.disabled():
        print(f"\n  vastai landed {alone:.1f} s after the run started alone, {beside_a_slow_vendor:.1f} s beside a timing-out lambda")
    assert beside_a_slow_vendor < alone + 15  # lambda's 4 x 5 s timeouts and its 30 s retry delay are not waited for
