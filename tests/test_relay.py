"""The outbox relay (gpubroker.relay) on the real PostgreSQL test database and Kafka: woken by the
commit's NOTIFY, it publishes a landing's events at once, stamped with the commit time; over any
sequence of landings, each committed event reaches Kafka once, keyed and in order per offer (Hypothesis)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import relay, store
from gpubroker import settings as gpubroker_settings
from gpubroker.schema import Offer, OfferObserved, observation_id
from tests.flink_support import PARTITIONS, read, topics

NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


def offer(provider: str, offer_id: str, cents: int, availability: str, at: datetime) -> Offer:
    return Offer(provider=provider, offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                 gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal(cents) / 100, region="Norway",
                 availability=availability, observed_at=at)  # fmt: skip


def observed(offer_id: str) -> OfferObserved:
    offer = Offer(provider="vastai", offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                  gpu_count=1, gpu_memory_gb=80, price_per_hour="2.00", region="Norway", observed_at=NOW)  # fmt: skip
    return OfferObserved.of(offer)


@pytest.fixture
def running_relay(pg_url, monkeypatch) -> Iterator[None]:
    """The relay on the test database, polling only every 60 s: within a test, only a NOTIFY wakes it."""
    monkeypatch.setattr(gpubroker_settings, "DATABASE_URL", pg_url)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"poll": 60}, daemon=True)
    thread.start()
    time.sleep(1.5)  # LISTENing, and its start-up pass done
    yield
    stop.set()
    with store.connect(pg_url) as conn:
        conn.execute(f"NOTIFY {relay.CHANNEL}")  # wake it to see `stop`
    thread.join(10)
    assert not thread.is_alive()


def test_a_commit_is_on_kafka_at_once_with_its_commit_time_and_a_rollback_never(pg, running_relay):
    with topics("relay") as made:
        with pytest.raises(ZeroDivisionError), pg.transaction():  # rolled back: PostgreSQL delivers no NOTIFY
            with pg.cursor() as cur:
                store.queue_events(cur, made["relay"], [observed("never")])
            1 / 0
        before = datetime.now(timezone.utc)
        with pg.transaction(), pg.cursor() as cur:
            store.queue_events(cur, made["relay"], [observed("a"), observed("b")])
        committed = datetime.now(timezone.utc)
        # 10 s at most, where the relay's own poll is 60 s: only the commit's NOTIFY can have woken it
        messages = read(made["relay"], until=lambda m: len(m) >= 2, timeout=10, quiet=1)
    by_offer = {value["offer_id"]: value for _key, value in messages}
    assert sorted(by_offer) == ["a", "b"] and len(messages) == 2  # each once; "never" never left the database
    stamped = datetime.fromisoformat(by_offer["a"]["landed_at"])
    assert before <= stamped <= committed  # the commit's own time, from PostgreSQL
    assert by_offer["a"]["landed_at"] == by_offer["b"]["landed_at"]  # one landing, one commit
    assert OfferObserved.model_validate(by_offer["a"]).landed_at == stamped
    assert pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0] == 0


# --- property: every committed landing's events on Kafka, once each, in order per offer -------------

PROVIDERS, OFFERS = ("vastai", "lambda"), tuple(f"o{n}" for n in range(5))
availabilities = st.sampled_from(["available", "limited", "unavailable"])
batches = st.dictionaries(st.sampled_from(OFFERS), st.tuples(st.integers(1, 400), availabilities))  # (cents, availability)
landings = st.lists(st.tuples(st.sampled_from(PROVIDERS), batches, st.booleans()), min_size=1, max_size=6)  # committed?


@pytest.fixture
def own_topic(pg) -> Iterator[str]:
    """A fresh topic, where the test database's outbox sends the landings' events instead of the live
    `gpubroker.price-updates` (a trigger of the test's own rewrites each row's topic; dropped after)."""
    with topics("delivery") as made:
        pg.execute("CREATE FUNCTION test_own_topic() RETURNS trigger LANGUAGE plpgsql"
                   " AS $$ BEGIN NEW.topic := TG_ARGV[0]; RETURN NEW; END $$")  # fmt: skip
        pg.execute(f"CREATE TRIGGER test_own_topic BEFORE INSERT ON event_outbox FOR EACH ROW"
                   f" EXECUTE FUNCTION test_own_topic('{made['delivery']}')")  # fmt: skip
        try:
            yield made["delivery"]
        finally:
            pg.execute("DROP FUNCTION test_own_topic() CASCADE")


@dataclass
class Tail:
    """A consumer of every partition of a topic, from its start, and how far it has read each."""

    topic: str
    consumer: Consumer
    positions: dict[int, int]

    def new_messages(self, timeout: float = 10) -> list[tuple[int, str, dict]]:
        """(partition, key, value) of every message after the positions, up to the topic's end now."""
        ends = {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10, cached=False)[1]
                for p in self.positions}  # fmt: skip
        messages, deadline = [], time.monotonic() + timeout
        while any(self.positions[p] < end for p, end in ends.items()):
            assert time.monotonic() < deadline, f"messages up to {ends} not read: at {self.positions}"
            missing = sum(end - self.positions[p] for p, end in ends.items())
            for m in self.consumer.consume(missing, timeout=0.5):  # back as soon as all are in
                assert not m.error(), m.error()
                self.positions[m.partition()] = m.offset() + 1
                messages.append((m.partition(), m.key().decode(), json.loads(m.value())))
        return messages


@pytest.fixture
def tail(own_topic) -> Iterator[Tail]:
    consumer = Consumer(gpubroker_settings.kafka_config() | {"group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False,
                                                             "fetch.wait.max.ms": 10})  # end offsets wait on no long fetch
    consumer.assign([TopicPartition(own_topic, p, 0) for p in range(PARTITIONS)])
    yield Tail(own_topic, consumer, dict.fromkeys(range(PARTITIONS), 0))
    consumer.close()


def published(pg, timeout: float = 10) -> None:
    """Wait until the relay has published every pending outbox row (Kafka acknowledged each)."""
    deadline = time.monotonic() + timeout
    while pg.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0]:
        assert time.monotonic() < deadline, "the relay left events pending"
        time.sleep(0.01)


def expected_events(runs: list[tuple[str, dict, bool]]) -> dict[str, list[tuple]]:
    """The model: per offer key, what each committed landing says of it, in landing order (an offer of the
    provider absent from its batch vanishes once: unavailable, at its last price); rolled-back ones, nothing."""
    offers: dict[tuple[str, str], tuple[Decimal, str]] = {}
    events: dict[str, list[tuple]] = defaultdict(list)
    for n, (provider, batch, committed) in enumerate(runs):
        if not committed:
            continue
        at = NOW + timedelta(minutes=n)
        for offer_id, (cents, availability) in batch.items():
            old = offers.get((provider, offer_id), (None, None))
            offers[provider, offer_id] = (Decimal(cents) / 100, availability)
            events[f"{provider}:{offer_id}"].append((Decimal(cents) / 100, availability, *old, at))
        for (who, offer_id), (price, availability) in list(offers.items()):
            if who == provider and offer_id not in batch and availability != "unavailable":
                offers[who, offer_id] = (price, "unavailable")
                events[f"{who}:{offer_id}"].append((price, "unavailable", price, availability, at))
    return events


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=landings)
def test_every_committed_landings_events_reach_kafka_once_each_keyed_and_in_order_per_offer(pg, running_relay, tail, runs):
    """**Feature: provider-api-gateway, Property 14: Kafka Event Delivery** — for any sequence of
    landings (store.landing), some of them rolled back, the relay woken by their commits puts on Kafka
    exactly the committed landings' `offer_observed` events (one per offer of the batch and one per
    offer that vanished from it): each once, with its observation's event_id, keyed `provider:offer_id`,
    in one partition per key and in landing order per key, stamped with its landing's commit time."""
    pg.execute("DELETE FROM offers")  # each example starts from an empty catalogue and outbox
    pg.execute("DELETE FROM event_outbox")
    started = datetime.now(timezone.utc)
    for n, (provider, batch, committed) in enumerate(runs):
        at = NOW + timedelta(minutes=n)
        with store.landing(pg, provider) as landing:
            landing.add(store.row(offer(provider, offer_id, cents, availability, at))
                        for offer_id, (cents, availability) in sorted(batch.items()))  # fmt: skip
            if committed:
                landing.finish(at)
            else:
                landing.cancel()
    published(pg)
    messages = tail.new_messages()

    got: dict[str, list[tuple]] = defaultdict(list)
    landed_at: dict[datetime, set[datetime]] = defaultdict(set)
    for partition, key, value in messages:
        event = OfferObserved.model_validate(value)
        assert key == event.key and event.event_id == observation_id(event.provider, event.offer_id, event.observed_at)
        got[key].append((event.price_per_hour, event.availability, event.old_price, event.old_availability,
                         event.observed_at, partition))  # fmt: skip
        landed_at[event.observed_at].add(event.landed_at)
    assert {key: [e[:-1] for e in events] for key, events in got.items()} == expected_events(runs)
    assert all(len({e[-1] for e in events}) == 1 for events in got.values())  # one partition per key
    assert len({value["event_id"] for _, _, value in messages}) == len(messages)  # each event once
    assert all(len(times) == 1 and started <= min(times) <= datetime.now(timezone.utc) for times in landed_at.values())
