"""The admin API (webapp/admin_api): warming and syncing on request, through the running Airflow when
it answers (a real DAG run), else in the webapp's own bounded worker (a real sync of the replay
server's payloads into the test database); admin scope checks; `make key`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest
from asgiref.sync import sync_to_async

from gpubroker import settings
from tests.conftest import REPLAY_KEY, ROOT, STATE
from tests.webapp_fixtures import KEYS_USED, make_key

ENDED = ("succeeded", "failed")


def admin_key(plan: str = "pro") -> str:
    from gateway import keys
    from gateway.models import ApiKey

    key = make_key(plan, "admin tests")
    ApiKey.objects.filter(digest=keys.digest(key)).update(admin=True)
    return key


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def jobs_recorded() -> int:
    from admin_api.models import Job

    return Job.objects.count()


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_password() -> str:
    return json.loads((STATE / "airflow" / "passwords.json").read_text())["admin"]


# --- who may ask ----------------------------------------------------------------------------------
async def test_only_a_key_with_the_admin_scope_may_warm_sync_or_read_jobs(webapp):
    plain = await sync_to_async(make_key)("enterprise", "no admin scope")
    calls = [("POST", "/api/v1/admin/warm", None), ("POST", "/api/v1/admin/sync", {"providers": ["vastai"]}),
             ("GET", "/api/v1/admin/jobs/1", None)]  # fmt: skip
    for method, path, body in calls:
        anonymous = await webapp.request(method, path, json=body)
        assert anonymous.status_code == 401 and "admin scope" in anonymous.json()["detail"]
        refused = await webapp.request(method, path, json=body, headers=auth(plain))
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "this API key has no admin scope (make one with `make key PLAN=pro ADMIN=1`)"
    assert await sync_to_async(jobs_recorded)() == 0


@pytest.mark.parametrize("body, problem", [
    ({"providers": ["vastai", "nosuchcloud"]}, "providers.1"), ({"providers": []}, "providers"),
    ({"providers": "vastai"}, "providers"), ({}, "providers"),
])  # fmt: skip
async def test_a_sync_of_no_or_unknown_providers_is_a_422_naming_them(webapp, body, problem):
    key = await sync_to_async(admin_key)()
    answer = await webapp.post("/api/v1/admin/sync", json=body, headers=auth(key))
    assert answer.status_code == 422, answer.text
    assert problem in [e["parameter"] for e in answer.json()["errors"]]
    assert await sync_to_async(jobs_recorded)() == 0


async def test_a_job_nobody_started_is_a_404(webapp):
    key = await sync_to_async(admin_key)()
    answer = await webapp.get("/api/v1/admin/jobs/424242", headers=auth(key))
    assert answer.status_code == 404 and answer.json()["detail"] == "no admin job 424242"


# --- Airflow up: a real DAG run of the stack's Airflow ----------------------------------------------
async def until_ended(webapp, key: str, job_id: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while (job := (await webapp.get(f"/api/v1/admin/jobs/{job_id}", headers=auth(key))).json())["state"] not in ENDED:
        assert time.monotonic() < deadline, f"job still {job['state']} after {seconds:.0f} s: {job}"
        await asyncio.sleep(2)
    return job


def airflow_run(dag_id: str, run_id: str) -> dict:
    with httpx.Client(base_url="http://127.0.0.1:8080", timeout=10) as http:
        token = http.post("/auth/token", json={"username": "admin", "password": airflow_password()}).json()["access_token"]
        return http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", headers=auth(token)).json()


@pytest.mark.stack
async def test_with_airflow_up_warm_and_sync_are_dag_runs_whose_state_the_job_reports(webapp, monkeypatch):
    monkeypatch.setattr(settings, "AIRFLOW_API_URL", "http://127.0.0.1:8080")
    monkeypatch.setattr(settings, "AIRFLOW_API_PASSWORD", airflow_password())
    key = await sync_to_async(admin_key)()
    started = {}
    for kind, body in (("sync", {"providers": ["vastai"]}), ("warm", None)):
        answer = await webapp.post(f"/api/v1/admin/{kind}", json=body, headers=auth(key))
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert answer.headers["location"] == f"/api/v1/admin/jobs/{job['id']}"
        assert job["via"] == "airflow" and job["run_id"].startswith("manual__") and job["state"] in ("queued", "running")
        assert job["result"] is None and job["error"] is None
        started[kind] = job
    sync_run = airflow_run("gpubroker_data_sync", started["sync"]["run_id"])
    assert sync_run["conf"] == {"providers": ["vastai"]} and sync_run["triggering_user_name"] == "admin"
    assert airflow_run("gpubroker_cache_warming", started["warm"]["run_id"])["run_type"] == "manual"
    for kind, job in started.items():
        ended = await until_ended(webapp, key, job["id"], 600)
        assert ended["state"] == "succeeded", ended
        assert ended["run_id"] == job["run_id"] and at(ended["started_at"]) <= at(ended["finished_at"])
    assert airflow_run("gpubroker_data_sync", started["sync"]["run_id"])["state"] == "success"


@pytest.mark.stack
async def test_an_airflow_refusing_the_credentials_is_a_502_naming_them_and_starts_nothing(webapp, monkeypatch):
    wrong = "not-the-airflow-password-4711"
    monkeypatch.setattr(settings, "AIRFLOW_API_URL", "http://127.0.0.1:8080")
    monkeypatch.setattr(settings, "AIRFLOW_API_PASSWORD", wrong)
    key = await sync_to_async(admin_key)()
    answer = await webapp.post("/api/v1/admin/warm", headers=auth(key))
    assert answer.status_code == 502, answer.text
    assert answer.json()["detail"] == ("Airflow refused POST /auth/token (HTTP 401); check GPUBROKER_AIRFLOW_API_USER "
                                       "and GPUBROKER_AIRFLOW_API_PASSWORD; nothing was started")  # fmt: skip
    assert wrong not in answer.text and await sync_to_async(jobs_recorded)() == 0


# --- Airflow down: in the webapp's own worker -------------------------------------------------------
@pytest.fixture
def airflow_down(live_webapp, pg_url, replay, tmp_path, monkeypatch):
    """The webapp over HTTP with Airflow's API on a closed port: jobs run in-process, syncing the
    in-process replay server's Vast.ai into the test database (file:// staging), warming the webapp itself."""
    monkeypatch.setattr(settings, "AIRFLOW_API_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(settings, "AIRFLOW_API_PASSWORD", "configured, but nobody listens")
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    monkeypatch.setattr(settings, "WEBAPP_URL", live_webapp)
    monkeypatch.setattr(settings, "WEBAPP_API_KEY", make_key("unlimited", "cache warmer"))
    return live_webapp


def vastai_key(monkeypatch, replay, key: str) -> None:
    """The Vast.ai connection, as Airflow reads it from the environment (the sync's process inherits it)."""
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VASTAI", json.dumps(
        {"conn_type": "gpubroker_vastai", "host": replay.vendor_url("vastai"), "password": key}))  # fmt: skip


def job_ended(http: httpx.Client, job_id: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while (job := http.get(f"/api/v1/admin/jobs/{job_id}").json())["state"] not in ENDED:
        assert time.monotonic() < deadline, f"job still {job['state']} after {seconds:.0f} s: {job}"
        time.sleep(1)
    return job


def test_with_airflow_down_a_sync_runs_in_the_webapp_lands_offers_and_a_full_worker_answers_503(
        airflow_down, replay, monkeypatch):  # fmt: skip
    from admin_api import jobs
    from offers.models import Offer

    vastai_key(monkeypatch, replay, REPLAY_KEY)
    monkeypatch.setattr(jobs, "WORKER", jobs.Worker(running=1, waiting=0))
    with httpx.Client(base_url=airflow_down, headers=auth(admin_key()), timeout=30) as http:
        answer = http.post("/api/v1/admin/sync", json={"providers": ["vastai", "vastai"]})
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["via"] == "in-process" and job["providers"] == ["vastai"] and job["run_id"] is None
        full = http.post("/api/v1/admin/warm")
        assert full.status_code == 503 and full.headers["retry-after"].isdigit()
        assert full.json()["detail"] == "this webapp process runs 1 jobs at once and queues 0, all taken; retry shortly"
        ended = job_ended(http, job["id"], 300)
        assert ended["state"] == "succeeded", ended
        landed = Offer.objects.filter(provider="vastai").count()
        summary = ended["result"]["synced"]["vastai"]
        assert summary["landed"] == landed > 0 and summary["credentials"] in ("connection", "none")
        assert ended["result"]["warmed"]["/api/v1/offers"] == 200
        assert at(ended["created_at"]) <= at(ended["started_at"]) <= at(ended["finished_at"])
        warm = http.post("/api/v1/admin/warm")  # the worker has room again
        assert warm.status_code == 202 and warm.json()["via"] == "in-process"
        warmed = job_ended(http, warm.json()["id"], 60)
        assert warmed["state"] == "succeeded" and set(warmed["result"]["warmed"].values()) == {200}
        assert len(warmed["result"]["warmed"]) == 2 + 2 * Offer.objects.values("gpu_model").distinct().count()


def test_with_airflow_down_a_failed_sync_is_reported_with_why_and_never_the_key(airflow_down, replay, monkeypatch):
    wrong = "sk-not-this-vendors-key-0815"
    vastai_key(monkeypatch, replay, wrong)
    with httpx.Client(base_url=airflow_down, headers=auth(admin_key()), timeout=30) as http:
        job = http.post("/api/v1/admin/sync", json={"providers": ["vastai"]}).json()
        ended = job_ended(http, job["id"], 300)
    assert ended["state"] == "failed" and ended["result"] is None
    assert ended["error"].startswith("vastai: VendorError: ") and "HTTP 401" in ended["error"], ended["error"]
    assert wrong not in json.dumps(ended)


def test_an_in_process_job_whose_webapp_process_stopped_is_reported_failed(live_webapp):
    from admin_api import jobs
    from admin_api.models import Job
    from gateway.models import ApiKey

    key = admin_key()
    stopped = subprocess.Popen([sys.executable, "-c", "pass"])
    stopped.wait()
    owner = ApiKey.objects.get(prefix=key[:12])
    lost = Job.objects.create(kind="warm", via="in-process", state="running", worker=f"{socket.gethostname()}:{stopped.pid}", key=owner)
    alive = Job.objects.create(kind="warm", via="in-process", state="running", worker=jobs.here(), key=owner)
    with httpx.Client(base_url=live_webapp, headers=auth(key), timeout=30) as http:
        reported = http.get(f"/api/v1/admin/jobs/{lost.id}").json()
        assert reported["state"] == "failed" and reported["finished_at"]
        assert reported["error"] == f"the webapp process running it ({lost.worker}) stopped before it ended"
        assert http.get(f"/api/v1/admin/jobs/{alive.id}").json()["state"] == "running"


# --- make key ------------------------------------------------------------------------------------
def test_make_key_loads_the_secrets_itself_and_prints_the_key_last(pg_url, tmp_path):
    """`make key` in a shell with no GPUBROKER_* setting: it reads the state directory's secrets.env
    (here one naming the test database) and prints the key as its last line."""
    from gateway import keys
    from gateway.models import ApiKey

    (tmp_path / "secrets.env").write_text(f"GPUBROKER_DATABASE_URL={pg_url}\nGPUBROKER_SECRET_KEY=tests-make-key\n")
    shell = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")} | {"GPUBROKER_STATE": str(tmp_path)}
    made = {}
    for admin in ("1", ""):
        run = subprocess.run(["make", "-s", "key", "PLAN=pro", f"ADMIN={admin}", "NAME=make key test"], cwd=ROOT,
                             env=shell, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
        made[admin] = run.stdout.strip().splitlines()[-1]
        KEYS_USED.add(made[admin])
    rows = {admin: ApiKey.objects.get(digest=keys.digest(key)) for admin, key in made.items()}
    assert [(r.plan, r.admin, r.name) for r in rows.values()] == [("pro", True, "make key test"), ("pro", False, "make key test")]
    missing = subprocess.run(["make", "-s", "key"], cwd=ROOT, env=shell, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "give the plan: make key PLAN=pro" in missing.stderr
