"""REST API v1, admin: `POST /api/v1/admin/warm`, `POST /api/v1/admin/sync` (body `{"providers": [...]}`),
`GET /api/v1/admin/jobs/{id}`.

Warming and syncing on request, without the Airflow UI: each POST answers 202 with the job (and its
URL in `Location`), run through Airflow when it answers, else in the webapp (admin_api.jobs); GET
reports its state. Only keys with the admin scope (`create_api_key --admin`, `make key ADMIN=1`) may
call these: 401 without a key, 403 for a key without the scope. The scope is read from PostgreSQL at
each call, not from the gateway's key cache: granting or revoking it takes effect at once, and admin
calls are rare. 502 when Airflow refuses the trigger (a misconfiguration, named); 503 with
Retry-After when Airflow is away and this worker's in-process jobs are all taken.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Path, Router
from ninja.errors import HttpError

from admin_api import jobs, schemas
from admin_api.airflow import AirflowRefused
from admin_api.models import Job
from gateway.callers import keyed
from gateway.models import ApiKey
from gpubroker_web.responses import json_response
from offers.schemas import ERRORS as COMMON_ERRORS
from offers.schemas import Error

router = Router(tags=["admin"])
ERRORS = {**COMMON_ERRORS, 403: Error, 404: Error, 502: Error}  # 403: no admin scope; 502: Airflow refused
JobId = Path(..., ge=1, le=2**63 - 1, description="the job's id")
FIELDS = list(schemas.JobOut.model_fields)


async def _admin(request: HttpRequest) -> int:
    """The asking key's id when it has the admin scope; 401 without a key, 403 without the scope."""
    client = keyed(request, "admin jobs (an API key with the admin scope)")
    if not await ApiKey.objects.filter(id=client.key_id, admin=True, revoked_at__isnull=True).aexists():
        raise HttpError(403, "this API key has no admin scope (make one with `make key PLAN=pro ADMIN=1`)")
    return client.key_id


def _out(job: Job) -> dict:
    return {name: getattr(job, name) for name in FIELDS}


async def _started(request: HttpRequest, kind: Job.Kind, providers: list[str]):
    key_id = await _admin(request)
    try:
        job = await jobs.start(kind, providers, key_id)
    except AirflowRefused as refused:
        raise HttpError(502, f"{refused}; nothing was started") from None
    except jobs.Busy as busy:
        raise HttpError(503, str(busy)) from None
    return json_response(_out(job), status=202, Location=f"/api/v1/admin/jobs/{job.id}")


@router.post("/admin/warm", response={202: schemas.JobOut, **ERRORS}, summary="Warm the response cache now")
async def warm(request: HttpRequest):
    """What `gpubroker_cache_warming` does: the hot answers asked for, so the shared cache holds them."""
    return await _started(request, Job.Kind.WARM, [])


@router.post("/admin/sync", response={202: schemas.JobOut, **ERRORS}, summary="Sync vendors now")
async def sync(request: HttpRequest, body: schemas.SyncIn):
    """What `gpubroker_data_sync` does for these vendors: fetch, normalise, gate, land; then warm the cache."""
    return await _started(request, Job.Kind.SYNC, list(dict.fromkeys(p.value for p in body.providers)))


@router.get("/admin/jobs/{job_id}", response={200: schemas.JobOut, **ERRORS}, summary="An admin job's state")
async def job(request: HttpRequest, job_id: int = JobId):
    await _admin(request)
    found = await Job.objects.filter(id=job_id).afirst()
    if found is None:
        raise HttpError(404, f"no admin job {job_id}")
    return json_response(_out(await jobs.current(found)))
