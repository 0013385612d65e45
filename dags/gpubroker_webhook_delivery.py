"""
### Webhook delivery

Delivers signed webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`,
HMAC-SHA256), 10 s timeout, retries with exponential backoff, once per webhook id; every attempt is
logged in `webhook_delivery`. Targets resolving to internal addresses are refused unless
allow-listed (GPUBROKER_WEBHOOK_ALLOWLIST, or `manage.py webhook_allowlist add HOST`).

Triggered two ways:
- **by hand or the REST API**, with conf `{"webhook_url": "https://...", "event_type": "price_change",
  "payload": {...}}` (optional `webhook_id`);
- **by Kafka**: each message on `gpubroker.webhooks` with that same shape (an `AssetWatcher` on the
  Kafka provider's `KafkaMessageQueueTrigger`, run by the triggerer).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from gpubroker import webhooks
from gpubroker_provider import sync
from gpubroker_provider.assets import WEBHOOK_REQUESTS


@dag(
    schedule=[WEBHOOK_REQUESTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["gpubroker", "webhooks"],
    doc_md=__doc__,
    params={
        "webhook_url": Param(None, type=["null", "string"], pattern="^https?://", description="Where to POST."),
        "event_type": Param("test", type="string", enum=list(webhooks.EVENT_TYPES)),
        "payload": Param({}, type="object", description="The event data, sent as the body's `data`."),
        "webhook_id": Param(None, type=["null", "string"], description="Idempotency key (default: from the run)."),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=5)},
)
def gpubroker_webhook_delivery():
    @task
    def deliver(params: dict | None = None, run_id: str | None = None, triggering_asset_events=None) -> list[dict]:
        requests = [
            event.extra["payload"]
            for events in (triggering_asset_events or {}).values()
            for event in events
            if isinstance(event.extra.get("payload"), dict)
        ] or [params]
        if requests == [params] and not params.get("webhook_url"):
            raise AirflowFailException("conf needs webhook_url, event_type and payload")
        try:
            return sync.deliver_webhooks(requests, webhooks.stable_id(run_id))
        except webhooks.WebhookRefused as refused:
            raise AirflowFailException(str(refused)) from None  # bad input: retrying cannot help

    deliver()


gpubroker_webhook_delivery()
