"""Kafka side of the event outbox: topics, the idempotent producer, publishing pending events."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from gpubroker import settings

log = logging.getLogger(__name__)
PUBLISH_BATCH = 5000
FLUSH_SECONDS = 30.0  # how long a send may take: well above a failover among three brokers (about 10 s)


def producer() -> Producer:
    return Producer(
        settings.kafka_config()
        | {
            "enable.idempotence": True,  # acks=all, no duplicates from producer retries
            "linger.ms": 5,
            "message.timeout.ms": int(FLUSH_SECONDS * 1000),
            "compression.type": "zstd",
        }
    )


def ensure_topics(partitions: int = 3, timeout: float = 30.0) -> list[str]:
    """Create any missing GPUBroker topic, with the cluster's replication (`default.replication.factor`:
    3 on three brokers); returns the ones created."""
    admin = AdminClient(settings.kafka_config())
    existing = admin.list_topics(timeout=timeout).topics
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=-1) for t in settings.Topics.ALL if t not in existing]
    for topic, future in admin.create_topics(missing).items() if missing else ():
        try:
            future.result(timeout)
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
    return [t.topic for t in missing]


def publish_pending(conn: psycopg.Connection, kafka: Producer | None = None) -> int:
    """Send every unpublished outbox event in order, in batches; mark those Kafka acknowledged.

    Returns how many were published. Events Kafka did not acknowledge (broker down) stay pending for
    the next call: none are lost. A crash between the send and the mark re-sends them; consumers drop
    repeats by event_id.
    """
    kafka = kafka or producer()
    published, more = 0, True
    while more:
        sent, more = _publish_batch(conn, kafka)
        published += sent
    prune_published(conn)
    return published


def prune_published(conn: psycopg.Connection, days: float | None = None) -> int:
    """Delete outbox rows Kafka acknowledged more than `days` (OUTBOX_RETENTION_DAYS) ago; unpublished
    rows are never deleted. Returns how many went."""
    cutoff = timedelta(days=settings.OUTBOX_RETENTION_DAYS if days is None else days)
    deleted = conn.execute("DELETE FROM event_outbox WHERE published_at < now() - %s", (cutoff,))
    return deleted.rowcount


# The pending events in outbox order; an event with a `landed_at` field (offer_observed) gets its
# landing's commit time there, as the UTC ISO-8601 text every event time is written in.
_PENDING = """SELECT id, topic, key, CASE WHEN payload ? 'landed_at' THEN jsonb_set(payload, '{{landed_at}}',
    to_jsonb(to_char({landed} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))) ELSE payload END::text
FROM event_outbox WHERE published_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"""


def _landing_time(conn: psycopg.Connection) -> str:
    """SQL for an outbox row's commit time: exact where PostgreSQL tracks commit timestamps (the local
    stack and the compose file turn `track_commit_timestamp` on), else the row's insert time."""
    on = conn.execute("SELECT current_setting('track_commit_timestamp') = 'on'").fetchone()[0]
    return "COALESCE(pg_xact_commit_timestamp(xmin), created_at)" if on else "created_at"


def _publish_batch(conn: psycopg.Connection, kafka: Producer) -> tuple[int, bool]:
    """One batch of at most PUBLISH_BATCH events: how many Kafka took, and whether to go on (a full
    batch went through, so more may be pending)."""
    delivered: list[int] = []
    with conn.transaction():
        rows = conn.execute(_PENDING.format(landed=_landing_time(conn)), (PUBLISH_BATCH,)).fetchall()
        for row_id, topic, key, payload in rows:

            def on_delivery(error, _message, row_id=row_id):
                if error is None:
                    delivered.append(row_id)

            kafka.produce(topic, key=key.encode(), value=payload.encode(), on_delivery=on_delivery)
            kafka.poll(0)
        if rows:
            kafka.flush(FLUSH_SECONDS)
        if delivered:
            conn.execute("UPDATE event_outbox SET published_at = now() WHERE id = ANY(%s)", (delivered,))
    if len(delivered) < len(rows):
        log.warning("%d of %d events not acknowledged by Kafka; kept for the next run", len(rows) - len(delivered), len(rows))
    return len(delivered), len(delivered) == PUBLISH_BATCH


if __name__ == "__main__":  # `python -m gpubroker.events` creates the topics (used by `make up`)
    print("created:", ", ".join(ensure_topics()) or "nothing (all topics exist)")
