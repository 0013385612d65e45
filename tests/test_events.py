"""The event outbox against the real Kafka broker, and the event contract's ids."""

import uuid
from datetime import datetime, timezone

from confluent_kafka import Producer

from gpubroker import events, settings, store
from gpubroker.schema import ProviderEvent, derived_id, event_uuid
from tests.flink_support import read, topics


def event() -> ProviderEvent:
    return ProviderEvent(type="quarantine", provider=f"test-{uuid.uuid4()}", status="stale",
                         timestamp=datetime.now(timezone.utc))  # fmt: skip


def pending(pg) -> int:
    return pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0]


def queue(pg, topic: str, count: int) -> list[ProviderEvent]:
    sent = [event() for _ in range(count)]
    with pg.cursor() as cur:
        store.queue_events(cur, topic, sent)
    pg.commit()
    return sent


def received(topic: str, count: int) -> dict[str, str]:
    """event_id -> message key of every message on the (test's own) topic."""
    messages = read(topic, until=lambda m: len(m) >= count, timeout=30, quiet=1)
    assert len(messages) == count  # each event once
    return {value["event_id"]: key for key, value in messages}


def test_topics_exist():
    assert events.ensure_topics() == []  # `make up` created all six; a second call creates none


def test_kafka_down_keeps_events_then_publishes_them_once_it_is_back(pg):
    with topics("outbox") as made:
        sent = queue(pg, made["outbox"], 3)
        unreachable = Producer({"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 1000})
        assert events.publish_pending(pg, unreachable) == 0
        assert pending(pg) == 3  # nothing lost while Kafka is away

        assert events.publish_pending(pg) == 3
        assert pending(pg) == 0
        assert events.publish_pending(pg) == 0  # published once, not again
        assert received(made["outbox"], 3) == {e.event_id: e.key for e in sent}


def test_a_backlog_larger_than_a_batch_is_published_whole_in_order(pg, monkeypatch):
    monkeypatch.setattr(events, "PUBLISH_BATCH", 4)
    with topics("backlog") as made:
        sent = queue(pg, made["backlog"], 10)
        assert events.publish_pending(pg) == 10
        assert pending(pg) == 0
        assert received(made["backlog"], 10) == {e.event_id: e.key for e in sent}


def test_derived_ids_are_stable_uuids_distinct_per_kind():
    kinds = ("price_change", "availability_change", "anomaly:zscore", "anomaly:drop")
    source = str(uuid.uuid4())
    ids = [derived_id(source, kind) for kind in kinds]
    assert ids == [derived_id(source, kind) for kind in kinds] == [event_uuid(f"{source}:{k}") for k in kinds]
    assert len({str(uuid.UUID(i)) for i in ids}) == len(kinds)  # valid UUIDs, one per kind
