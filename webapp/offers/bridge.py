"""Kafka -> Channels bridge: every message on `gpubroker.price-changes` reaches subscribed clients.

At-least-once: an offset is committed only after the message went to every group; when Redis
blinks the same message is retried, never dropped (clients drop repeats by event_id).
"""

from __future__ import annotations

import json
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from confluent_kafka import Consumer, KafkaError, Message

from gpubroker import settings
from offers.channels import groups_for_update

log = logging.getLogger(__name__)
GROUP_ID = "gpubroker-webapp-bridge"


def consumer() -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": GROUP_ID,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
        }
    )


def as_update(message: Message) -> dict | None:
    """The client-facing `price_update` payload of a `price_change` message; None for any other
    message (`availability_change`, or malformed: logged)."""
    try:
        event = json.loads(message.value())
        if event.get("type") != "price_change":
            return None
        return {
            "event_id": str(event["event_id"]),
            "provider": event["provider"],
            "offer_id": event["offer_id"],
            "gpu": event["gpu"],
            "region": event["region"],
            "old_price": event.get("old_price"),
            "new_price": event["new_price"],
            "change_percent": event.get("change_percent"),
            "timestamp": event["observed_at"],
            "detected_at": event.get("detected_at"),
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("skipping malformed message at %s[%s]@%s", message.topic(), message.partition(), message.offset())
        return None


def forward(update: dict) -> None:
    send = async_to_sync(get_channel_layer().group_send)
    for group in groups_for_update(update):
        send(group, {"type": "price_update", "data": update})


def deliver(message: Message) -> None:
    """Forward one message, retrying until the channel layer takes it."""
    update = as_update(message)
    if update is None:
        return
    delay = 0.2
    while True:
        try:
            forward(update)
            return
        except Exception as error:  # the channel layer (Redis) is down: wait and retry
            log.warning("channel layer unavailable (%s); retrying in %.1fs", type(error).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def run(stop_after: float | None = None) -> None:
    kafka = consumer()
    kafka.subscribe([settings.Topics.PRICE_CHANGES])
    deadline = None if stop_after is None else time.monotonic() + stop_after
    log.info("forwarding %s to Channels groups", settings.Topics.PRICE_CHANGES)
    try:
        while deadline is None or time.monotonic() < deadline:
            message = kafka.poll(1.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", message.error())
                continue
            deliver(message)
            kafka.commit(message=message, asynchronous=False)
    finally:
        kafka.close()
