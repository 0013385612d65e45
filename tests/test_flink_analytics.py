"""The analytics job (flink/analytics.py) on the stack's real Flink cluster, Kafka and PostgreSQL:
a fixed sequence of observations gives exactly the expected anomalies and 1-minute aggregates, on the
topics and in the tables (pytest-django's test database), whatever the arrival order across partitions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from gpubroker.schema import Anomaly, Offer, OfferObserved, PriceAggregate, derived_id
from tests.flink_support import PARTITIONS, job, produce, producer, read, topics

pytestmark = pytest.mark.stack
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=1)


def observed(offer_id: str, at: datetime, price: str, gpu="H100", provider="p1", continent="EU", gpu_count=1,
             availability="available", old_price=None) -> OfferObserved:  # fmt: skip
    offer = Offer(provider=provider, offer_id=offer_id, instance_type=f"{gpu_count}x {gpu}", gpu_model=gpu,
                  gpu_form_factor="SXM", gpu_vendor="NVIDIA", gpu_count=gpu_count, gpu_memory_gb=80,
                  price_per_hour=price, region="somewhere", continent=continent, availability=availability,
                  observed_at=at)  # fmt: skip
    return OfferObserved.of(offer, None if old_price is None else Decimal(old_price), "available" if old_price else None)


def sequence() -> list[OfferObserved]:
    """Twelve ordinary H100 prices over two minutes, an outlier with an ordinary peer at the same
    instant, a drop of 35% and one of 25% (A100), an unavailable offer, and an NA provider."""
    ordinary = ["1.90", "1.95", "2.00", "2.05", "2.10", "2.00"]
    events = [observed(f"h{i}", T0 + timedelta(seconds=10 * i), ordinary[i % 6], provider=f"p{1 + i % 2}",
                       availability="limited" if i == 3 else "available") for i in range(12)]  # fmt: skip
    at = T0 + timedelta(minutes=2, seconds=30)
    events += [
        observed("outlier", at, "48.00", gpu_count=8),  # $6 per GPU
        observed("peer", at, "2.02"),
        observed("gone", at, "0.10", availability="unavailable"),  # vanished: in no statistic
        observed("drop", at, "6.50", gpu="A100", old_price="10.00"),
        observed("dip", at, "7.50", gpu="A100", old_price="10.00"),
        observed("us", at + timedelta(seconds=40), "2.40", provider="p3", continent="NA"),
    ]
    return events


def expected_anomalies(events: list[OfferObserved]) -> dict[str, tuple]:
    """event_id -> (offer_id, reason, mean, stddev, z): the rules of flink/analytics.py, in Python."""
    found, rentable = {}, [e for e in events if e.availability != "unavailable"]
    for e in rentable:
        others = [float(o.price_per_gpu) for o in rentable if o is not e and o.gpu == e.gpu
                  and e.observed_at - WINDOW <= o.observed_at <= e.observed_at]  # fmt: skip
        if len(others) >= 10 and (sd := statistics.stdev(others)) >= 0.0001:
            mean = statistics.fmean(others)
            if abs(z := (float(e.price_per_gpu) - mean) / sd) > 3:
                found[derived_id(e.event_id, "anomaly:zscore")] = (e.offer_id, "zscore", mean, sd, z)
    for e in events:
        if e.old_price and e.price_per_hour < e.old_price * Decimal("0.7"):
            found[derived_id(e.event_id, "anomaly:drop")] = (e.offer_id, "drop", None, None, None)
    return found


def expected_aggregates(events: list[OfferObserved]) -> dict[tuple, tuple]:
    """(gpu, dimension, value, window_start) -> (min, avg, max, offers, available) per GPU."""
    groups = defaultdict(list)
    for e in events:
        if e.availability != "unavailable":
            start = e.observed_at.replace(second=0, microsecond=0)
            groups[e.gpu, "provider", e.provider, start].append(e)
            groups[e.gpu, "continent", e.continent or "??", start].append(e)
    quantum = Decimal("0.0001")
    return {key: (min(p := [e.price_per_gpu for e in group]), (sum(p) / len(p)).quantize(quantum, ROUND_HALF_UP), max(p),
                  len(group), sum(e.availability in ("available", "limited") for e in group))
            for key, group in groups.items()}  # fmt: skip


def test_a_fixed_sequence_gives_exactly_the_expected_anomalies_and_windows(pg, pg_url):
    events = sequence()
    anomalies, aggregates = expected_anomalies(events), expected_aggregates(events)
    assert [a[:2] for a in anomalies.values()] == [("outlier", "zscore"), ("drop", "drop")]  # the sequence's point
    closing = T0 + timedelta(hours=2)  # moves the watermark past every window above, on every partition

    with topics("observations", "anomalies", "aggregations") as made:
        with job("analytics", env={"GPUBROKER_DATABASE_URL": pg_url}, source_topic=made["observations"],
                 anomalies_topic=made["anomalies"], aggregations_topic=made["aggregations"]):  # fmt: skip
            kafka = producer()
            produce(made["observations"], events, kafka)
            for partition in range(PARTITIONS):
                produce(made["observations"], [observed(f"close{partition}", closing, "1.00", gpu="L4")], kafka, partition)
            anomaly_messages = read(made["anomalies"], until=lambda m: len(m) >= len(anomalies), timeout=180)
            aggregate_messages = read(made["aggregations"], until=lambda m: len(m) >= len(aggregates), timeout=180)
            rows = pg.execute("SELECT event_id, reason FROM anomalies").fetchall()
            aggregate_rows = pg.execute(
                "SELECT gpu, dimension, value, window_start, min_price_per_gpu, avg_price_per_gpu, max_price_per_gpu,"
                " offers, available FROM gpu_price_aggregates"
            ).fetchall()

    got = {}
    for key, value in anomaly_messages:
        anomaly = Anomaly.model_validate(value)  # exactly the contract's fields
        assert key == anomaly.key
        got[anomaly.event_id] = (anomaly.offer_id, anomaly.reason, anomaly.mean, anomaly.stddev, anomaly.z)
    assert got.keys() == anomalies.keys()
    for event_id, (offer_id, reason, mean, stddev, z) in anomalies.items():
        assert got[event_id][:2] == (offer_id, reason)
        assert got[event_id][2:] == (pytest.approx(mean), pytest.approx(stddev), pytest.approx(z))
    assert {(str(e), r) for e, r in rows} == {(e, a[1]) for e, a in anomalies.items()}  # stored once each

    windows = {}
    for key, value in aggregate_messages:
        a = PriceAggregate.model_validate(value)
        assert key == a.key and a.window_end - a.window_start == timedelta(minutes=1)
        windows[a.gpu, a.dimension, a.value, a.window_start] = (a.min_price_per_gpu, a.avg_price_per_gpu,
                                                                a.max_price_per_gpu, a.offers, a.available)  # fmt: skip
    assert windows == aggregates  # the closing events' own windows are still open
    assert {(r[0], r[1], r[2], r[3]): tuple(r[4:]) for r in aggregate_rows} == aggregates
