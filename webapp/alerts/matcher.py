"""Alert matching: change, anomaly and availability events -> one webhook request per (rule, event).

Reads `gpubroker.price-changes` (price_change, availability_change) and `gpubroker.anomalies`
(anomaly), consumer group `gpubroker-alert-matcher`. Rules live in memory, indexed by GPU model (plus
the rules for any GPU); the index is reloaded when the API announces a change (PostgreSQL
`NOTIFY alert_rules`) and every `RELOAD_SECONDS` regardless.

A match is recorded first — one `alert_matches` row per (rule, event), inserted only when the
rule is out of its cooldown, in the same statement that starts the cooldown — then its request is
produced on `gpubroker.webhooks` (the delivery DAG's format, with `alert_rule_id`: the DAG signs it
with that rule's secret, read from the database, so no secret travels on Kafka) and marked
produced once Kafka acknowledged it; rows not yet acknowledged are produced again by the next
batch. Kafka offsets are committed after that. A replayed event (Flink re-emits the same
event_id) finds its row and produces nothing; the webhook id derives from (rule, event), so a
request produced twice is still delivered once. A message that breaks its topic's contract goes to
`gpubroker.dead-letter` with the reason.

Why a webapp consumer and not a Flink job: rules are per-user rows that change at any time (the
API), and matching is a lookup of a few rules per event, not a computation across events. In Flink
the rules would be a second, broadcast stream kept in sync with PostgreSQL, and the idempotent
record, cooldown and rule limits would need JDBC lookups from the job anyway. Here they are one SQL
statement each, next to the models and the API, and the load is small (changes, not observations:
a few thousand events per sync).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from decimal import Decimal
from typing import Annotated

import psycopg
import tenacity
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from pydantic import Field, TypeAdapter, ValidationError

from gpubroker import settings, webhooks
from gpubroker.schema import Anomaly, Availability, AvailabilityChange, PriceChange, SignificantPriceChange

log = logging.getLogger(__name__)
GROUP_ID = settings.Groups.ALERT_MATCHER
TOPICS = (settings.Topics.PRICE_CHANGES, settings.Topics.ANOMALIES)
CHANNEL = "alert_rules"  # alerts.api announces every change on it
RELOAD_SECONDS = 60.0
BATCH = 500
FLUSH_SECONDS = 15.0
OPEN = (Availability.AVAILABLE, Availability.LIMITED)

Event = Annotated[PriceChange | SignificantPriceChange | AvailabilityChange | Anomaly, Field(discriminator="type")]
EVENT = TypeAdapter(Event)
BECOMES_AVAILABLE = "becomes_available"


@dataclass(frozen=True)
class Facts:
    """What rules look at in an event. `kind`: price_change, anomaly, becomes_available or None
    (an availability change that is not an offer becoming available)."""

    kind: str | None
    provider: str
    gpu: str
    region: str
    country: str | None
    continent: str | None
    price: Decimal  # USD per hour, whole offer
    price_per_gpu: Decimal | None  # USD per GPU-hour (availability changes do not carry it)
    drop_percent: float | None  # how far the price fell, percent (negative: it rose)


def facts(event: PriceChange | AvailabilityChange | Anomaly) -> Facts:
    where = dict(provider=event.provider, gpu=event.gpu, region=event.region)
    if isinstance(event, PriceChange):
        return Facts("price_change", **where, country=event.country, continent=event.continent, price=event.new_price,
                     price_per_gpu=event.price_per_gpu, drop_percent=-event.change_percent)  # fmt: skip
    if isinstance(event, AvailabilityChange):
        opened = event.availability in OPEN and event.old_availability not in OPEN
        return Facts(BECOMES_AVAILABLE if opened else None, **where, country=event.country, continent=event.continent,
                     price=event.price_per_hour, price_per_gpu=None, drop_percent=None)  # fmt: skip
    drop = float((event.old_price - event.price_per_hour) / event.old_price * 100) if event.old_price else None
    return Facts("anomaly", **where, country=None, continent=None, price=event.price_per_hour,
                 price_per_gpu=event.price_per_gpu, drop_percent=drop)  # fmt: skip


def _at_most(value: Decimal | None, bound: Decimal | None) -> bool:
    return bound is None or (value is not None and value <= bound)


@dataclass(frozen=True)
class Rule:
    id: int
    gpu: str | None
    providers: frozenset[str] | None
    region: str | None  # lower case
    country: str | None
    continent: str | None
    max_price: Decimal | None
    max_price_per_gpu: Decimal | None
    drop_percent: float | None
    anomaly: bool
    becomes_available: bool
    webhook_url: str
    name: str = ""

    @cached_property
    def kinds(self) -> frozenset[str]:
        kinds = {"anomaly"} if self.anomaly else set()
        kinds |= {BECOMES_AVAILABLE} if self.becomes_available else set()
        return frozenset(kinds or {"price_change"})

    @property
    def needs_location(self) -> bool:
        return self.country is not None or self.continent is not None

    def matches(self, f: Facts) -> bool:
        return (f.kind in self.kinds
                and (self.gpu is None or f.gpu == self.gpu)
                and (self.providers is None or f.provider in self.providers)
                and (self.region is None or f.region.lower() == self.region)
                and (self.country is None or f.country == self.country)
                and (self.continent is None or f.continent == self.continent)
                and _at_most(f.price, self.max_price) and _at_most(f.price_per_gpu, self.max_price_per_gpu)
                and (self.drop_percent is None or (f.drop_percent is not None and f.drop_percent >= self.drop_percent)))  # fmt: skip


class RuleIndex:
    """Rules by GPU model; `None` holds the rules for any GPU."""

    def __init__(self, rules: Iterable[Rule]):
        self.by_gpu: dict[str | None, list[Rule]] = defaultdict(list)
        for rule in rules:
            self.by_gpu[rule.gpu].append(rule)
        self.size = sum(map(len, self.by_gpu.values()))

    def candidates(self, gpu: str) -> list[Rule]:
        return self.by_gpu.get(gpu, []) + self.by_gpu.get(None, [])


RULE_COLUMNS = ("id, gpu, providers, region, country, continent, max_price, max_price_per_gpu, drop_percent, anomaly,"
                " becomes_available, webhook_url, name")  # fmt: skip


def load_rules(conn: psycopg.Connection) -> RuleIndex:
    rows = conn.execute(f"SELECT {RULE_COLUMNS} FROM alert_rules").fetchall()
    return RuleIndex(Rule(*row[:2], None if row[2] is None else frozenset(row[2]), *row[3:]) for row in rows)


def _reconnect(state: tenacity.RetryCallState) -> None:
    log.warning("PostgreSQL unreachable (%s); retrying", state.outcome.exception())
    matcher = state.args[0]
    try:
        matcher.connect()
    except psycopg.OperationalError:
        pass  # still down: the next attempt tries again


RECORD = """
WITH fired AS (
  UPDATE alert_rules SET last_fired_at = now()
  WHERE id = %(rule)s AND (last_fired_at IS NULL OR last_fired_at <= now() - make_interval(secs => cooldown_seconds))
    AND NOT EXISTS (SELECT 1 FROM alert_matches WHERE rule_id = %(rule)s AND event_id = %(event)s)
  RETURNING id)
INSERT INTO alert_matches (rule_id, event_id, event_type, webhook_id, request, matched_at)
SELECT id, %(event)s, %(type)s, %(webhook_id)s, %(request)s, now() FROM fired
ON CONFLICT DO NOTHING RETURNING id
"""


class Matcher:
    """Matches events against the rules; records and produces the webhook requests.

    While PostgreSQL is unreachable, `handle` retries (reconnecting) for as long as it takes; the
    batch is then handled again in full, which the recorded matches make harmless.

    :param conninfo: the database (an autocommit connection of its own, which also LISTENs)
    :param producer: Kafka producer
    :param topic: where webhook requests go (`gpubroker.webhooks`, the delivery DAG's trigger)
    """

    def __init__(self, conninfo: str, producer: Producer, topic: str = settings.Topics.WEBHOOKS):
        self.conninfo, self.producer, self.topic = conninfo, producer, topic
        self.conn: psycopg.Connection | None = None
        self.connect()

    def connect(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = psycopg.connect(self.conninfo, autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.rules = load_rules(self.conn)
        self.loaded_at = time.monotonic()

    def close(self) -> None:
        self.conn.close()

    def refresh(self) -> None:
        """Reload the rules if the API announced a change (or RELOAD_SECONDS passed)."""
        changed = any(True for _ in self.conn.notifies(timeout=0))
        if changed or time.monotonic() - self.loaded_at > RELOAD_SECONDS:
            self.rules = load_rules(self.conn)
            self.loaded_at = time.monotonic()

    @tenacity.retry(retry=tenacity.retry_if_exception_type(psycopg.OperationalError),
                    wait=tenacity.wait_exponential(0.2, max=10), before_sleep=_reconnect)  # fmt: skip
    def handle(self, events: Sequence[PriceChange | AvailabilityChange | Anomaly]) -> int:
        """Record each new (rule, event) match, then produce what is pending; returns how many were recorded."""
        if self.conn.closed:
            self.connect()
        self.refresh()
        recorded = sum(self.record(rule, event) for event in events for rule in self.matching(event))
        self.produce_pending()
        return recorded

    def matching(self, event: PriceChange | AvailabilityChange | Anomaly) -> list[Rule]:
        candidates = self.rules.candidates(event.gpu)
        if not candidates:
            return []
        f = facts(event)
        if f.country is None and any(r.needs_location for r in candidates):  # anomalies carry no country
            f = self.located(f, event)
        return [rule for rule in candidates if rule.matches(f)]

    def located(self, f: Facts, event) -> Facts:
        row = self.conn.execute("SELECT country, continent FROM offers WHERE provider = %s AND offer_id = %s",
                                (event.provider, event.offer_id)).fetchone()  # fmt: skip
        return f if row is None else Facts(**(vars(f) | {"country": row[0], "continent": row[1]}))

    def record(self, rule: Rule, event) -> bool:
        webhook_id = webhooks.stable_id("alert", rule.id, event.event_id)
        request = webhooks.WebhookRequest(
            webhook_url=rule.webhook_url, event_type=event.type, webhook_id=webhook_id, alert_rule_id=rule.id,
            payload={"alert": {"rule_id": rule.id, "name": rule.name}, "event": event.model_dump(mode="json")},
        )  # fmt: skip
        row = self.conn.execute(RECORD, {"rule": rule.id, "event": event.event_id, "type": event.type,
                                         "webhook_id": webhook_id, "request": request.model_dump_json()}).fetchone()  # fmt: skip
        return row is not None

    def produce_pending(self) -> int:
        """Produce every recorded, unacknowledged request; mark those Kafka acknowledged."""
        rows = self.conn.execute("SELECT id, rule_id, request::text FROM alert_matches WHERE produced_at IS NULL"
                                 " ORDER BY id LIMIT 5000").fetchall()  # fmt: skip
        acked: list[int] = []
        for row_id, rule_id, request in rows:
            self.producer.produce(self.topic, key=str(rule_id).encode(), value=request.encode(),
                                  on_delivery=lambda error, _m, row_id=row_id: error or acked.append(row_id))  # fmt: skip
        if rows:
            self.producer.flush(FLUSH_SECONDS)
        if acked:
            self.conn.execute("UPDATE alert_matches SET produced_at = now() WHERE id = ANY(%s)", (acked,))
        if len(acked) < len(rows):
            log.warning("%d of %d webhook requests not acknowledged by Kafka; sent again next batch", len(rows) - len(acked), len(rows))
        return len(acked)

    def dead_letter(self, message: Message, reason: str) -> None:
        log.warning("dead-lettering %s[%s]@%s: %s", message.topic(), message.partition(), message.offset(), reason)
        self.producer.produce(settings.Topics.DEAD_LETTER, key=message.key(), value=message.value(), headers={
            "source.topic": message.topic(), "source.partition": str(message.partition()),
            "source.offset": str(message.offset()), "reason": reason[:1000],
        })  # fmt: skip


def parse(matcher: Matcher, messages: Sequence[Message]) -> list[PriceChange | AvailabilityChange | Anomaly]:
    """The batch's events; poison goes to the dead-letter topic."""
    events = []
    for message in messages:
        try:
            event = EVENT.validate_json(message.value())
            if not isinstance(event, SignificantPriceChange):  # rules see its price_change, sent beside it
                events.append(event)
        except ValidationError as broken:
            matcher.dead_letter(message, f"not a change, availability or anomaly event: {broken.errors()[0]['msg']}")
    if len(events) < len(messages):
        matcher.producer.flush(FLUSH_SECONDS)
    return events


def consumer(group_id: str = GROUP_ID, start: str = "latest") -> Consumer:
    """`start`: where a new consumer group begins (`earliest` for a fresh topic)."""
    return Consumer(settings.kafka_config() | {
        "group.id": group_id, "enable.auto.commit": False,
        "auto.offset.reset": start, "enable.partition.eof": False,
    })  # fmt: skip


def producer() -> Producer:
    return Producer(settings.kafka_config() | {"enable.idempotence": True, "linger.ms": 5})


def run(conninfo: str, stop_after: float | None = None, *, group_id: str = GROUP_ID, topics: Sequence[str] = TOPICS,
        output: str = settings.Topics.WEBHOOKS, start: str = "latest") -> None:  # fmt: skip
    """Match until stopped (or for `stop_after` seconds): poll, record and produce, then commit.
    The keyword arguments let tests run an instance on topics of their own."""
    kafka = consumer(group_id, start)
    kafka.subscribe(list(topics))
    deadline = None if stop_after is None else time.monotonic() + stop_after
    matcher = Matcher(conninfo, producer(), output)
    log.info("matching %s against %d alert rules", ", ".join(topics), matcher.rules.size)
    try:
        while deadline is None or time.monotonic() < deadline:
            first = kafka.poll(1.0)
            batch = [] if first is None else [first, *kafka.consume(num_messages=BATCH - 1, timeout=0)]
            for m in batch:
                if m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", m.error())
            good = [m for m in batch if not m.error()]
            matcher.handle(parse(matcher, good))  # also when idle: rule changes, pending requests
            if good:
                try:
                    kafka.commit(asynchronous=False)
                except KafkaException as error:  # e.g. the group moved on during an outage: the batch comes again
                    log.warning("offsets not committed (%s); the batch will be matched again, harmlessly", error)
    finally:
        kafka.close()
        matcher.close()
