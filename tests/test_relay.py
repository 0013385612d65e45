"""The outbox relay (gpubroker.relay) on the real PostgreSQL test database and Kafka: woken by the
commit's NOTIFY, it publishes a landing's events at once, stamped with the commit time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from gpubroker import relay, settings, store
from gpubroker.schema import Offer, OfferObserved
from tests.flink_support import read, topics

NOW = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


def observed(offer_id: str) -> OfferObserved:
    offer = Offer(provider="vastai", offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                  gpu_count=1, gpu_memory_gb=80, price_per_hour="2.00", region="Norway", observed_at=NOW)  # fmt: skip
    return OfferObserved.of(offer)


@pytest.fixture
def running_relay(pg_url, monkeypatch) -> Iterator[None]:
    """The relay on the test database, polling only every 60 s: within a test, only a NOTIFY wakes it."""
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
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
