"""The webapp's one way to the provider package: `python -m gpubroker_provider.integrations ACTION`, in
a process of its own, given a `gpubroker.integrations.Request` as JSON on stdin and answering an
`Outcome` on the last line of stdout. The vendor key travels only on stdin (never argv or the
environment, which other users of the machine can read).

Why a process, not an import: checking a key is the vendor hook's probe and storing it is the Vault
hook's, both Airflow hooks. Importing Airflow in a web worker would configure Airflow's logging and
database in it, cost seconds and ~100 MB per worker, and break the rule that the webapp imports only
`gpubroker`; enqueueing a DAG run would take the scheduler's tens of seconds. A check calls the vendor
anyway (seconds); the process adds its start, about a second on an idle machine. Each web worker runs
at most `CONCURRENCY` of them at once (the plans' rate limits bound how often a key may ask).

Without the Vault connection in the webapp's environment (`gpubroker.integrations.vault_configured`)
nothing can be kept: the answer says so at once, and no process is started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading

from pydantic import ValidationError

from gpubroker import settings
from gpubroker.integrations import Action, Outcome, Request, redact, vault_configured

CONCURRENCY = 2
TIMEOUT_SECONDS = 60.0
_slots = threading.BoundedSemaphore(CONCURRENCY)
log = logging.getLogger(__name__)


class PipelineUnavailable(RuntimeError):
    """The provider package could not carry out the action (not installed, failed, or too slow)."""


async def ask(action: Action, request: Request) -> Outcome:
    """Run `action` for `request` in the provider package (in a thread: the event loop stays free)."""
    return await asyncio.to_thread(_ask, action, request)


def _ask(action: Action, request: Request) -> Outcome:
    if not vault_configured():
        return Outcome(failure="vault_not_configured", message="no Vault connection in the webapp's environment")
    secret = request.api_key.get_secret_value() if request.api_key else None
    body = json.dumps(request.model_dump(mode="json") | {"api_key": secret})
    env = os.environ | {"GPUBROKER_REDIS_URL": settings.REDIS_URL, "GPUBROKER_DATABASE_URL": settings.DATABASE_URL}
    with _slots:
        try:
            done = subprocess.run([sys.executable, "-m", "gpubroker_provider.integrations", action], input=body,
                                  capture_output=True, text=True, env=env, timeout=TIMEOUT_SECONDS)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise PipelineUnavailable(f"the integration {action} did not finish within {TIMEOUT_SECONDS:g} s") from None
    last = (done.stdout.strip().splitlines() or [""])[-1]
    try:
        if done.returncode == 0:
            return Outcome.model_validate_json(last)
    except ValidationError:
        pass
    tail = redact(done.stderr.strip()[-500:], secret)
    log.error("integration %s for %s failed (exit %s): %s", action, request.provider, done.returncode, tail)
    raise PipelineUnavailable(f"the integration {action} failed (exit {done.returncode})")
