"""The change job (flink/price_changes.py): its rule over any sequence of observations (Hypothesis,
PostgreSQL evaluating the job's own SQL text), and the job on the stack's real Flink cluster and Kafka.

Each cluster test runs its own job instance on topics of its own, so the live topics see none of this.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker.schema import (Availability, AvailabilityChange, Offer, OfferObserved, PriceChange, SignificantPriceChange,
                              derived_id)  # fmt: skip
from tests.flink_support import cluster, job, produce, read, stack_rest, topics

import price_changes  # noqa: E402  the job's SQL (flink/ is on the path through flink_support; no PyFlink needed)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)


def observed(offer_id: str, price: str, at=T0, old_price=None, old_availability=None, availability="available",
             gpu_count=1, provider="flinktest") -> OfferObserved:  # fmt: skip
    offer = Offer(provider=provider, offer_id=offer_id, instance_type="8x H100", gpu_model="H100", gpu_form_factor="SXM",
                  gpu_vendor="NVIDIA", gpu_count=gpu_count, gpu_memory_gb=80, price_per_hour=price, region="Norway",
                  country="NO", continent="EU", availability=availability, available_count=2, observed_at=at)  # fmt: skip
    return OfferObserved.of(offer, None if old_price is None else Decimal(old_price), old_availability)


MODELS = {m.model_fields["type"].default: m for m in (PriceChange, SignificantPriceChange, AvailabilityChange)}


def parse(value: dict) -> PriceChange | AvailabilityChange:
    """A message of the changes topic, validated by its model (which forbids any field not in the contract)."""
    return MODELS[value["type"]].model_validate(value)


# --- the rule, as PostgreSQL evaluates the job's SQL --------------------------------------------
PRICES = ("0", "1.0000", "1.0499", "1.0500", "0.9500", "0.9501", "2.0000", "12.3456")
prices = st.one_of(st.sampled_from(PRICES).map(Decimal), st.integers(0, 10**6).map(lambda n: Decimal(n) / 10**4))
availabilities = st.sampled_from(["available", "limited", "unavailable"])
# (offer, price, availability, the event's old_price and old_availability: the store's previous values)
sequences = st.lists(st.tuples(st.sampled_from("abc"), prices, availabilities, st.none() | prices,
                               st.none() | availabilities), max_size=25)  # fmt: skip


def detected(pg, observations: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """The job's price changes (offer, arrival, old, new, percent, direction, significant) and availability
    changes (offer, arrival, old, new) of observations in arrival order: PostgreSQL evaluating the job's
    own `compared` view over them and its rule (arrival order stands in for the processing time)."""
    with pg.transaction(force_rollback=True):
        pg.execute("CREATE TEMP TABLE observations (proc int, provider text, offer_id text,"
                   " price_per_hour numeric(12, 4), availability text, old_price numeric(12, 4), old_availability text)")
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO observations VALUES (%s, 'flinktest', %s, %s, %s, %s, %s)",
                            [(n, *o) for n, o in enumerate(observations)])  # fmt: skip
        pg.execute(price_changes.COMPARED)
        changes = pg.execute(f"""SELECT offer_id, proc, reference_price, price_per_hour,
            {price_changes.CHANGE_PERCENT}, {price_changes.DIRECTION}, {price_changes.SIGNIFICANT}
            FROM compared WHERE {price_changes.PRICE_CHANGED} ORDER BY proc""").fetchall()
        moves = pg.execute(f"SELECT offer_id, proc, reference_availability, availability FROM compared"
                           f" WHERE {price_changes.AVAILABILITY_CHANGED} ORDER BY proc").fetchall()  # fmt: skip
    return changes, moves


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(observations=sequences)
def test_a_change_is_detected_exactly_when_a_price_differs_from_the_last_one_seen_for_its_offer(pg, observations):
    """**Feature: provider-api-gateway, Property 15: Flink Price Change Detection** — for any sequence of
    observations of any offers, the change job emits a price change exactly when an offer's price differs
    from the last price it saw for that offer (none seen: the event's old_price; none, or 0: no change),
    with that old price, the new one, change_percent = (new - old) / old * 100, its direction, and
    significance when it moved 5% or more; an availability change exactly when the availability differs
    from the last one seen (none seen: the event's old_availability, None meaning it appeared)."""
    last: dict[str, tuple] = {}
    want_changes, want_moves = [], []
    for n, (offer, price, availability, old_price, old_availability) in enumerate(observations):
        reference, reference_availability = last.get(offer, (old_price, old_availability))
        if reference is not None and reference > 0 and price != reference:
            significant = abs(price - reference) * 100 >= 5 * reference
            want_changes.append((offer, n, reference, price, float((price - reference) * 100 / reference),
                                 "up" if price > reference else "down", significant))  # fmt: skip
        if reference_availability != availability:
            want_moves.append((offer, n, reference_availability, availability))
        last[offer] = (price, availability)
    changes, moves = detected(pg, observations)
    assert [c[:4] + c[5:] for c in changes] == [w[:4] + w[5:] for w in want_changes]
    assert [c[4] for c in changes] == pytest.approx([w[4] for w in want_changes], rel=1e-12)
    assert moves == want_moves


@pytest.fixture(scope="module")
def changes():
    """One change job instance for this module's tests, on fresh topics."""
    with topics("observations", "changes") as made:
        with job("price_changes", source_topic=made["observations"], changes_topic=made["changes"]) as job_id:
            yield made, job_id


# First, alone: the module's job (`changes`) starts with the first test that asks for it, and the stack's jobs
# leave the cluster slots for one test job at a time (flink/README.md)
@pytest.mark.stack
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


@pytest.mark.stack
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
    messages = read(made["changes"], until=lambda m: len(m) >= 7, timeout=120)
    got = sorted(((key, parse(value)) for key, value in messages), key=lambda m: (m[0], m[1].observed_at, m[1].type))

    assert [(k, m.type) for k, m in got] == [
        ("flinktest:a", "availability_change"),
        ("flinktest:a", "availability_change"),
        ("flinktest:a", "price_change"),
        ("flinktest:a", "significant_price_change"),  # -25%
        ("flinktest:b", "price_change"),
        ("flinktest:b", "significant_price_change"),  # +50%
        ("flinktest:c", "availability_change"),
    ]
    (_, appeared), (_, limited), (_, cheaper), _, (_, dearer), _, (_, gone) = got
    assert (appeared.old_availability, appeared.availability, appeared.price_per_hour) == (None, "available", Decimal(16))
    assert appeared.event_id == derived_id(first.event_id, "availability_change")
    assert (limited.old_availability, limited.availability) == ("available", "limited")
    assert (cheaper.old_price, cheaper.new_price, cheaper.direction, cheaper.change_percent) == (16, 12, "down", -25.0)
    assert cheaper.price_per_gpu == Decimal(12) and cheaper.event_id == derived_id(events[2].event_id, "price_change")
    assert (dearer.old_price, dearer.new_price, dearer.direction, dearer.change_percent) == (2, 3, "up", 50.0)
    assert (gone.old_availability, gone.availability) == ("available", Availability.UNAVAILABLE)
    assert all(m.detected_at >= m.observed_at for _, m in got)


@pytest.mark.stack
def test_a_significant_price_change_goes_beside_each_change_of_5_percent_or_more(changes):
    made, _ = changes
    moves = {"up-4.9": "10.49", "up-4.999": "10.4999", "up-5": "10.50", "down-5": "9.50", "down-4.999": "9.5001", "down-4.9": "9.51"}
    produce(made["observations"], [observed(f"sig-{name}", "10.00") for name in moves])
    later = [observed(f"sig-{name}", price, T1, "10.00", "available") for name, price in moves.items()]
    produce(made["observations"], later)

    def ours(messages) -> list[tuple[str, dict]]:
        return [(k, v) for k, v in messages if k.startswith("flinktest:sig-") and v["type"] != "availability_change"]

    got = [parse(v) for _, v in ours(read(made["changes"], until=lambda m: len(ours(m)) >= 8, timeout=120))]
    changes_by_offer = {c.offer_id: c for c in got if c.type == "price_change"}
    significant = {c.offer_id: c for c in got if c.type == "significant_price_change"}
    assert len(got) == 8 and changes_by_offer.keys() == {f"sig-{name}" for name in moves}
    assert significant.keys() == {"sig-up-5", "sig-down-5"}  # |change| >= 5%, in exact decimals
    for offer_id, event in significant.items():
        beside = changes_by_offer[offer_id]
        assert event.model_dump(exclude={"type", "event_id", "detected_at"}) == beside.model_dump(exclude={"type", "event_id", "detected_at"})
        source = next(e for e in later if e.offer_id == offer_id)
        assert event.event_id == derived_id(source.event_id, "significant_price_change") != beside.event_id
    assert (significant["sig-up-5"].change_percent, significant["sig-down-5"].change_percent) == (5.0, -5.0)


@pytest.mark.stack
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
