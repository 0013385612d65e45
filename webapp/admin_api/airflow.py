"""Airflow's REST API (v2), as the admin jobs use it: trigger a DAG run, read a run.

Endpoint `settings.AIRFLOW_API_URL`, as `settings.AIRFLOW_API_USER` / `AIRFLOW_API_PASSWORD` (a JWT from
`POST /auth/token` per use: admin calls are rare). Connect timeout 2 s, 10 s for an answer.

Errors (`AirflowError`):
- `AirflowUnreachable`: no password configured, no connection, a timeout, or a 5xx; the job then runs
  in the webapp instead.
- `AirflowRefused`: a 4xx (wrong credentials, a DAG not there); a misconfiguration to fix, said as
  such. Neither ever carries Airflow's answer body (it may echo what was sent, the password).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gpubroker import settings

TIMEOUT = httpx.Timeout(10.0, connect=2.0)
HINTS = {401: "check GPUBROKER_AIRFLOW_API_USER and GPUBROKER_AIRFLOW_API_PASSWORD",
         403: "the Airflow user may not trigger DAG runs", 404: "is the DAG parsed?"}  # fmt: skip


class AirflowError(RuntimeError):
    """Airflow could not be used."""


class AirflowUnreachable(AirflowError):
    """Airflow is not configured here, or did not answer."""


class AirflowRefused(AirflowError):
    """Airflow answered, and refused the request."""


async def trigger(dag_id: str, conf: dict) -> dict:
    """A new run of `dag_id` with `conf`, as Airflow answers it (`dag_run_id`, `state`, ...)."""
    async with _session() as http:
        return await _call(http, "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})


async def run(dag_id: str, run_id: str) -> dict:
    """The run as it stands (`state`: queued, running, success or failed; `start_date`, `end_date`)."""
    async with _session() as http:
        return await _call(http, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")


@asynccontextmanager
async def _session() -> AsyncIterator[httpx.AsyncClient]:
    if not settings.AIRFLOW_API_PASSWORD:
        raise AirflowUnreachable("no Airflow API password is configured (GPUBROKER_AIRFLOW_API_PASSWORD)")
    async with httpx.AsyncClient(base_url=settings.AIRFLOW_API_URL, timeout=TIMEOUT) as http:
        token = await _call(http, "POST", "/auth/token",
                            json={"username": settings.AIRFLOW_API_USER, "password": settings.AIRFLOW_API_PASSWORD})  # fmt: skip
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield http


async def _call(http: httpx.AsyncClient, method: str, path: str, **kwargs) -> dict:
    try:
        response = await http.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise AirflowUnreachable(f"Airflow at {settings.AIRFLOW_API_URL} did not answer ({type(error).__name__})") from None
    if response.status_code >= 500:
        raise AirflowUnreachable(f"Airflow at {settings.AIRFLOW_API_URL} failed: {method} {path} -> {response.status_code}")
    if response.is_error:
        hint = HINTS.get(response.status_code, "")
        raise AirflowRefused(f"Airflow refused {method} {path} (HTTP {response.status_code}){'; ' + hint if hint else ''}")
    return response.json()
