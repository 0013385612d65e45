"""The event outbox against the real Kafka broker."""

import json
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from confluent_kafka import Producer

from gpubroker import events, settings, store
from gpubroker.schema import PriceUpdate
from tests.conftest import kafka_tail


def update(offer_id: str) -> PriceUpdate:
    return PriceUpdate(
        provider="test", offer_id=offer_id, gpu="H100", region="Norway", old_price=Decimal("2"),
        new_price=Decimal("1.5"), change_percent=-25.0, timestamp=datetime.now(timezone.utc),
    )  # fmt: skip


def pending(pg) -> int:
    return pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0]


def test_topics_exist():
    assert events.ensure_topics() == []  # `make up` created all six; a second call creates none


def test_kafka_down_keeps_events_then_publishes_them_once_it_is_back(pg):
    sent = [update(f"outbox-{uuid.uuid4()}") for _ in range(3)]
    with pg.cursor() as cur:
        store.queue_events(cur, settings.Topics.PRICE_UPDATES, sent)
    pg.commit()

    unreachable = Producer({"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 1000})
    assert events.publish_pending(pg, unreachable) == 0
    assert pending(pg) == 3  # nothing lost while Kafka is away

    consumer = kafka_tail(settings.Topics.PRICE_UPDATES)
    deadline = time.monotonic() + 20

    assert events.publish_pending(pg) == 3
    assert pending(pg) == 0
    assert events.publish_pending(pg) == 0  # published once, not again

    wanted = {u.event_id: u for u in sent}
    received = {}
    while len(received) < 3 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            payload = json.loads(message.value())
            if payload["event_id"] in wanted:
                received[payload["event_id"]] = message.key().decode()
    consumer.close()
    assert received == {e: u.key for e, u in wanted.items()}  # keyed by offer
