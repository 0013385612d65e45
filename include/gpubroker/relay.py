"""The outbox relay: each landing's events leave for Kafka the moment the landing commits.

Every insert into `event_outbox` notifies channel `gpubroker_outbox` (a statement trigger, webapp
migration offers 0012); PostgreSQL delivers the notification when the inserting transaction commits,
and never for one that rolls back. The relay LISTENs on one connection and, woken, publishes every
pending event with `events.publish_pending` on another: in outbox order, batched, marked published
only once Kafka acknowledged it, each message stamped with its landing's commit time (`landed_at`).
It also publishes at start and every `POLL_SECONDS` without a notification, so events queued while it
was down, or held back while Kafka was unreachable, still go out. Nothing is lost: a row stays pending
until Kafka has it; a crash between the send and the mark re-sends it under the same event_id, which
consumers drop as a repeat. Several relays (or the health-check DAG's fallback `publish`) can run at
once: each takes its rows with `FOR UPDATE SKIP LOCKED`.

Why LISTEN/NOTIFY rather than Debezium's outbox event router on Kafka Connect: the same commit ->
Kafka path with no second JVM (Kafka Connect with Debezium needs ~0.5 GB heap and a logical
replication slot that holds WAL while it is down), no connector to configure per deployment, and the
outbox's guarantees kept in the code that already has them. Measured by bench/freshness.py
(bench/README.md): commit -> Kafka p99 well under its 100 ms goal.

Run: `python -m gpubroker.relay` (the local stack's `outbox-relay` service).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import psycopg
import tenacity
from confluent_kafka import Producer

from gpubroker import events, settings, store

__all__ = ["CHANNEL", "POLL_SECONDS", "run"]

CHANNEL = "gpubroker_outbox"
POLL_SECONDS = 2.0  # publish anyway this often: events held back while Kafka or the relay was down
log = logging.getLogger(__name__)


def run(stop: threading.Event | None = None, poll: float = POLL_SECONDS) -> None:
    """Relay until `stop` is set; a lost PostgreSQL connection is opened again (backing off to 5 s)."""
    stop = stop or threading.Event()
    kafka = events.producer()
    while not stop.is_set():
        try:
            _relay(kafka, stop, poll)
        except psycopg.OperationalError as error:
            log.warning("outbox relay: PostgreSQL unreachable (%s); connecting again", error)
            _wait_for_postgres(stop)
    kafka.flush(events.FLUSH_SECONDS)


def _relay(kafka: Producer, stop: threading.Event, poll: float) -> None:
    with store.connect() as listening, store.connect() as work:
        listening.execute(f"LISTEN {CHANNEL}")
        log.info("outbox relay: listening on %s", CHANNEL)
        while not stop.is_set():
            published = events.publish_pending(work, kafka)
            if published:
                log.info("outbox relay: published %d events", published)
            # woken by the next commit, or after `poll` seconds; notifications meanwhile fold into one pass
            for _ in listening.notifies(timeout=poll, stop_after=1):
                pass


@tenacity.retry(wait=tenacity.wait_exponential(multiplier=0.2, max=5), retry=tenacity.retry_if_exception_type(psycopg.OperationalError))
def _wait_for_postgres(stop: threading.Event) -> None:
    if stop.is_set():
        return
    store.connect().close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    run(stop)
    log.info("outbox relay: stopped after %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
