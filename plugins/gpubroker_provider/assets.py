"""Airflow assets that connect GPUBroker's DAGs."""

from airflow.sdk import Asset

# Updated by gpubroker_data_sync when a run quarantined at least one batch; schedules gpubroker_dq_report.
QUARANTINES = Asset("gpubroker://quarantine", group="gpubroker")
