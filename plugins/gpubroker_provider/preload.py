"""Imported once by every Airflow worker before it forks task processes, so that each task starts
with the heavy libraries already in memory (shared copy-on-write): Great Expectations alone costs
~8.5 s of CPU to import on our 2-core machines, paid once per worker instead of once per task.

Wired in by astro/local/stack.sh (and astro/README.md for Astro / Kubernetes):
- LocalExecutor: `[scheduler] mp_start_method = forkserver`, `[scheduler] mp_forkserver_preload =
  gpubroker_provider.preload` (the executor's workers come from the preloaded forkserver);
- CeleryExecutor: `[celery] celery_config_options = gpubroker_provider.celery_config.CELERY_CONFIG`,
  whose `imports` load this module in each worker before its pool forks.

Only third-party modules: our own code (gpubroker, gpubroker_provider) is still imported by each
task, so a change to it takes effect at the next task without restarting a worker.
"""

import sys

import confluent_kafka  # noqa: F401
import great_expectations  # noqa: F401
import great_expectations.expectations  # noqa: F401
import httpx  # noqa: F401
import hvac  # noqa: F401
import pandas  # noqa: F401
import psycopg  # noqa: F401
import pydantic  # noqa: F401
import redis  # noqa: F401
import tenacity  # noqa: F401
from airflow.providers.hashicorp.hooks.vault import VaultHook  # noqa: F401
from airflow.sdk import BaseHook, BaseOperator, ObjectStoragePath  # noqa: F401
from airflow.sdk.execution_time import task_runner  # noqa: F401
from great_expectations.execution_engine import PandasExecutionEngine  # noqa: F401

# Airflow's provider discovery (run by the imports above) reads our vendor table through
# `get_provider_info`: forget our own modules again, so each task imports them as they are now.
# (This module and its package stay: they are being imported.)
for _name in [m for m in sys.modules if m.partition(".")[0] in ("gpubroker", "gpubroker_provider")]:
    if _name not in (__name__, "gpubroker_provider"):
        del sys.modules[_name]
