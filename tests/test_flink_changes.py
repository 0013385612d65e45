"""The change job (flink/price_changes.py) on the stack's real Flink cluster and Kafka.

Each test runs its own job instance on topics of its own, so the live topics see none of this.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from gpubroker.schema import Availability, AvailabilityChange, Offer, OfferObserved, PriceChange, derived_id
from tests.flink_support import cluster, job, produce, read, stack_rest, topics

pytestmark = pytest.mark.stack
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)


def observed(offer_id: str, price: str, at=T0, old_price=None, old_availability=None, availability="available",
             gpu_count=1, provider="flinktest") -> OfferObserved:  # fmt: skip
    offer = Offer(provider=provider, offer_id=offer_id, instance_type="8x H100", gpu_model="H100", gpu_form_factor="SXM",
                  gpu_vendor="NVIDIA", gpu_count=gpu_count, gpu_memory_gb=80, price_per_hour=price, region="Norway",
                  country="NO", continent="EU", availability=availability, available_count=2, observed_at=at)  # fmt: skip
    return OfferObserved.of(offer, None if old_price is None else Decimal(old_price), old_availability)


def parse(value: dict) -> PriceChange | AvailabilityChange:
    """A message of the changes topic, validated by its model (which forbids any field not in the contract)."""
    return (PriceChange if value["type"] == "price_change" else AvailabilityChange).model_validate(value)


@pytest.fixture(scope="module")
def changes():
    """One change job instance for this module's tests, on fresh topics."""
    with topics("observations", "changes") as made:
        with job("price_changes", source_topic=made["observations"], changes_topic=made["changes"]) as job_id:
            yield made, job_id


def test_changes_follow_the_contract_and_repeats_emit_nothing(changes):
    made, _ = changes
    first = observed("a", "16.00")  # new: appears
    events = [
        first,
        first,  # the same event again (a re-sent outbox row): nothing
        observed("a", "12.00", T1, "16.00", "available", availability="limited"),  # price and availability
        observed("a", "12.00", T1 + timedelta(hours=1), "16.00", "available", availability="limited"),  # stale old_*: state wins
        observed("b", "3.00", T0, "2.00", "available"),  # no state: the event's old_price is the reference
        observed("c", "5.00", T0, "5.00", "available", availability="unavailable"),  # vanished
    ]
    produce(made["observations"], events)
    messages = read(made["changes"], until=lambda m: len(m) >= 5, timeout=120)
    got = sorted(((key, parse(value)) for key, value in messages), key=lambda m: (m[0], m[1].observed_at, m[1].type))

    assert [(k, m.type) for k, m in got] == [
        ("flinktest:a", "availability_change"),
        ("flinktest:a", "availability_change"),
        ("flinktest:a", "price_change"),
        ("flinktest:b", "price_change"),
        ("flinktest:c", "availability_change"),
    ]
    (_, appeared), (_, limited), (_, cheaper), (_, dearer), (_, gone) = got
    assert (appeared.old_availability, appeared.availability, appeared.price_per_hour) == (None, "available", Decimal(16))
    assert appeared.event_id == derived_id(first.event_id, "availability_change")
    assert (limited.old_availability, limited.availability) == ("available", "limited")
    assert (cheaper.old_price, cheaper.new_price, cheaper.direction, cheaper.change_percent) == (16, 12, "down", -25.0)
    assert cheaper.price_per_gpu == Decimal(12) and cheaper.event_id == derived_id(events[2].event_id, "price_change")
    assert (dearer.old_price, dearer.new_price, dearer.direction, dearer.change_percent) == (2, 3, "up", 50.0)
    assert (gone.old_availability, gone.availability) == ("available", Availability.UNAVAILABLE)
    assert all(m.detected_at >= m.observed_at for _, m in got)


def test_100k_offers_give_exactly_one_change_per_changed_price_with_no_restart(changes):
    made, job_id = changes
    n, rest = 100_000, stack_rest()
    produce(made["observations"], (observed(f"bulk-{i}", f"{1 + i % 50}.50") for i in range(n)))
    produce(made["observations"], (observed(f"bulk-{i}", f"{1 + i % 50}.{25 if i % 3 == 0 else 50}", T1,
                                            f"{1 + i % 50}.50", "available") for i in range(n)))  # fmt: skip
    expected = {f"flinktest:bulk-{i}" for i in range(0, n, 3)}

    def complete(messages) -> bool:
        return sum(v["type"] == "price_change" for _, v in messages) >= len(expected)

    messages = [(k, v) for k, v in read(made["changes"], until=complete, timeout=600, quiet=5) if "bulk-" in k]
    price_changes = Counter(k for k, v in messages if v["type"] == "price_change")
    appeared = Counter(k for k, v in messages if v["type"] == "availability_change")
    assert set(price_changes) == expected and set(price_changes.values()) == {1}
    assert len(appeared) == n and set(appeared.values()) == {1}
    assert cluster.restarts(rest, job_id) == 0
    assert cluster.state(rest, job_id) == "RUNNING"
    # a checkpoint may time out while 200k events saturate two cores: the job tolerates a few (cluster.py),
    # and it must still complete them, with the output exactly once and no restart (asserted above)
    checkpoints = cluster.checkpoints(rest, job_id)["counts"]
    assert checkpoints["completed"] >= 1 and checkpoints["failed"] <= cluster.TOLERABLE_FAILED_CHECKPOINTS, checkpoints


def test_an_offer_unseen_for_longer_than_the_state_ttl_falls_back_to_the_events_old_price():
    with topics("observations", "changes") as made:
        with job("price_changes", source_topic=made["observations"], changes_topic=made["changes"], state_ttl="2 s"):
            produce(made["observations"], [observed("ttl", "2.00")])
            read(made["changes"], until=lambda m: len(m) >= 1, timeout=120, quiet=0)  # the state holds 2.00 now
            time.sleep(8)  # > 1.5 x the TTL: the job has dropped the offer's state
            produce(made["observations"], [observed("ttl", "1.00", T1, old_price="4.00", old_availability="available")])
            messages = read(made["changes"], until=lambda m: len(m) >= 2, timeout=120)
    [change] = [parse(v) for _, v in messages if v["type"] == "price_change"]
    assert (change.old_price, change.new_price) == (Decimal(4), Decimal(1))  # not 2.00: that state expired
