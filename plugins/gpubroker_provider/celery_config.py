"""Celery settings of the CeleryExecutor: Airflow's defaults, plus the preload of
`gpubroker_provider.preload` in each worker before its pool forks (see that module).

`[celery] celery_config_options = gpubroker_provider.celery_config.CELERY_CONFIG`
"""

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "imports": ("gpubroker_provider.preload",)}
