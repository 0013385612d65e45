"""Airflow assets that connect GPUBroker's DAGs."""

from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher

from gpubroker import settings

# Updated by gpubroker_data_sync when a run quarantined at least one batch; schedules gpubroker_dq_report.
QUARANTINES = Asset("gpubroker://quarantine", group="gpubroker")

# A message on gpubroker.webhooks (a delivery request) triggers gpubroker_webhook_delivery, through the triggerer.
WEBHOOK_REQUESTS = Asset(
    "gpubroker://webhook-requests",
    group="gpubroker",
    watchers=[
        AssetWatcher(
            name="gpubroker_webhooks_topic",
            trigger=KafkaMessageQueueTrigger(
                topics=[settings.Topics.WEBHOOKS],
                kafka_config_id="gpubroker_kafka",
                apply_function="gpubroker.webhooks.from_kafka_message",
                poll_timeout=1,
                poll_interval=1,
            ),
        )
    ],
)
