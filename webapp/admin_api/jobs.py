"""Admin jobs: warming the cache and syncing vendors on request, with the code the DAGs run.

A job is dispatched once, when it is asked for:
- **through Airflow** when its REST API answers (`admin_api.airflow`): a run of `gpubroker_cache_warming`,
  or of `gpubroker_data_sync` with conf `{"providers": [...]}`. The job keeps the run's id; each read
  of the job asks Airflow for the run's state (the last one known stands while Airflow is away).
- **in-process** when Airflow cannot be reached or is not configured: by this webapp process's bounded
  worker, `RUNNING` jobs at once and `WAITING` more queued (`Busy` past that: a 503). The job keeps
  its result summary. An Airflow that answers but refuses is an error to fix (`AirflowRefused`), not
  a reason to run the job here.

What runs in-process is the DAG's own code:
- warming is `gpubroker.cache.warm` (core), as the DAGs' `sync.refresh_cache` calls it, in a thread;
- syncing is `gpubroker_provider.sync.sync_providers`, run as `python -m gpubroker_provider.cli sync` (a
  process of its own, for at most `SYNC_SECONDS`), then warming, as `gpubroker_data_sync` does. Why a
  process and not a lazy import: the provider's sync brings Airflow's SDK (staging, vendor connections)
  and Great Expectations (the gate) — ~20 s and hundreds of MB to import, Airflow then configuring the
  worker's logging — and its parsing would hold the GIL the worker's event loop needs; the webapp
  imports only `gpubroker` (`integrations.pipeline` reaches the provider package the same way). The
  process gets this one's database, Redis and staging settings, and reads the vendors' connections
  from the environment as Airflow does (`AIRFLOW_CONN_GPUBROKER_<VENDOR>`).

Jobs are rows of `admin_jobs`, so any worker answers for any job. An in-process job whose webapp
process is gone (restarted, killed) is reported failed by the next read on its host.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime

import orjson
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from admin_api import airflow
from admin_api.models import Job
from gpubroker import cache, settings, store

RUNNING = 2  # in-process jobs at once, per webapp process
WAITING = 8  # in-process jobs queued behind them, per webapp process
SYNC_SECONDS = 30 * 60  # an in-process sync's process is stopped past this
ERROR_CHARS = 1000
DAGS = {Job.Kind.WARM: "gpubroker_cache_warming", Job.Kind.SYNC: "gpubroker_data_sync"}
AIRFLOW_STATES = {"queued": Job.State.QUEUED, "running": Job.State.RUNNING, "success": Job.State.SUCCEEDED,
                  "failed": Job.State.FAILED}  # fmt: skip
ENDED = (Job.State.SUCCEEDED, Job.State.FAILED)
log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """This webapp process runs and queues all the in-process jobs it may."""


class JobFailed(RuntimeError):
    """An in-process job's work failed; the message says why (never a secret)."""


class Worker:
    """At most `running` jobs at once in this process and `waiting` more queued; `submit` refuses past
    that. Each job is a daemon thread: a webapp process stopping does not wait for a 30-minute sync
    (its job is then reported failed, see `current`)."""

    def __init__(self, running: int = RUNNING, waiting: int = WAITING):
        self.running, self.waiting = running, waiting
        self.room = threading.BoundedSemaphore(running + waiting)  # jobs running or queued
        self.turns = threading.BoundedSemaphore(running)  # jobs running

    def submit(self, make: Callable[[], Job], work: Callable[[Job], dict]) -> Job:
        """The job `make` records, its `work` queued; Busy (nothing recorded) when there is no room."""
        if not self.room.acquire(blocking=False):
            raise Busy(f"this webapp process runs {self.running} jobs at once and queues {self.waiting}, "
                       "all taken; retry shortly")  # fmt: skip
        try:
            job = make()
            threading.Thread(target=self._run, args=(job, work), name=f"admin-job-{job.id}", daemon=True).start()
        except BaseException:
            self.room.release()
            raise
        return job

    def _run(self, job: Job, work: Callable[[Job], dict]) -> None:
        try:
            with self.turns:
                Job.objects.filter(id=job.id).update(state=Job.State.RUNNING, started_at=timezone.now())
                try:
                    result, error = work(job), None
                except Exception as failure:  # a job's failure is its report, never the worker's end
                    result, error = None, str(failure) if isinstance(failure, JobFailed) else f"{type(failure).__name__}: {failure}"
                state = Job.State.FAILED if error else Job.State.SUCCEEDED
                Job.objects.filter(id=job.id).update(state=state, result=result, error=error and error[:ERROR_CHARS],
                                                     finished_at=timezone.now())  # fmt: skip
        except Exception:  # PostgreSQL away: the job stays as last recorded; say so here
            log.exception("admin job %s: could not record its outcome", job.id)
        finally:
            self.room.release()
            connection.close()  # this thread's connection


WORKER = Worker()


async def start(kind: Job.Kind, providers: list[str], key_id: int) -> Job:
    """Dispatch a job (Airflow, else in-process) and record it. AirflowRefused when Airflow refuses it,
    Busy when it cannot run here either."""
    try:
        run = await airflow.trigger(DAGS[kind], {"providers": providers} if providers else {})
    except airflow.AirflowUnreachable as away:
        log.info("admin %s job runs in-process: %s", kind, away)
        return await sync_to_async(WORKER.submit)(
            lambda: Job.objects.create(kind=kind, providers=providers, via=Job.Via.IN_PROCESS, worker=here(), key_id=key_id),
            WORK[kind])  # fmt: skip
    return await Job.objects.acreate(kind=kind, providers=providers, via=Job.Via.AIRFLOW, run_id=run["dag_run_id"],
                                     state=AIRFLOW_STATES.get(run["state"], Job.State.QUEUED), key_id=key_id)  # fmt: skip


async def current(job: Job) -> Job:
    """The job as it stands now: an Airflow run's state as Airflow reports it (kept), an in-process
    job whose process is gone failed."""
    if job.state in ENDED:
        return job
    if job.via == Job.Via.AIRFLOW:
        try:
            run = await airflow.run(DAGS[job.kind], job.run_id)
        except airflow.AirflowError as unknown:  # away or refusing now: the last state known stands
            log.warning("admin job %s: no state from Airflow: %s", job.id, unknown)
            return job
        job.state = AIRFLOW_STATES.get(run["state"], job.state)
        job.started_at, job.finished_at = _when(run.get("start_date")), _when(run.get("end_date"))
        job.error = f"the Airflow run {job.run_id} failed: see its task logs" if job.state == Job.State.FAILED else None
    elif _gone(job.worker):
        job.state, job.finished_at = Job.State.FAILED, timezone.now()
        job.error = f"the webapp process running it ({job.worker}) stopped before it ended"
    else:
        return job
    await job.asave(update_fields=["state", "started_at", "finished_at", "error"])
    return job


def here() -> str:
    """This webapp process, as jobs name the one running them: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _gone(worker: str | None) -> bool:
    """Whether `worker` ("host:pid") is a process of this host that no longer runs."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False


# --- the work, as the DAGs do it ---------------------------------------------------------------------
def warm(job: Job | None = None) -> dict:
    """`gpubroker_cache_warming`: the webapp asked for its hot answers; {"warmed": {path: HTTP status}}."""
    with store.connect() as conn:
        return {"warmed": cache.warm(conn)}


def sync(job: Job) -> dict:
    """`gpubroker_data_sync`: the providers synced end to end, then the cache warmed whatever they did;
    {"synced": {provider: summary}, "warmed": {path: HTTP status}}."""
    try:
        synced = sync_providers(job.providers, f"admin__{job.id}")
    finally:
        warmed = warm()
    return {"synced": synced} | warmed


def sync_providers(providers: list[str], run_id: str) -> dict:
    """`gpubroker_provider.sync.sync_providers` in a process of its own (see the module docstring)."""
    command = [sys.executable, "-m", "gpubroker_provider.cli", "sync", "--run-id", run_id,
               *(f"--provider={p}" for p in providers)]  # fmt: skip
    env = os.environ | {"GPUBROKER_DATABASE_URL": settings.DATABASE_URL, "GPUBROKER_REDIS_URL": settings.REDIS_URL,
                        "GPUBROKER_STAGING_URL": settings.STAGING_URL}  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=SYNC_SECONDS)
    except subprocess.TimeoutExpired:
        raise JobFailed(f"the sync did not end within {SYNC_SECONDS} s; it was stopped") from None
    if done.returncode == 0:
        return orjson.loads(done.stdout.strip().splitlines()[-1])
    said = [line for line in done.stderr.splitlines() if line.startswith("gpubroker: ")]
    raise JobFailed(said[-1].removeprefix("gpubroker: ") if said else f"the sync exited with status {done.returncode}")


WORK: dict[Job.Kind, Callable[[Job], dict]] = {Job.Kind.WARM: warm, Job.Kind.SYNC: sync}
