"""Provider health scores: the pipeline's `provider_call` events (PostgreSQL outbox), the score formula
(Hypothesis, evaluated by PostgreSQL from the job's own SQL text) and the job (flink/health_scores.py)
on the stack's real Flink cluster, Kafka and PostgreSQL, with a fixed sequence and exact expectations.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from gpubroker import health, settings
from gpubroker.schema import HealthScore, Offer, OfferObserved, ProviderCall, health_score_id
from gpubroker.vendors import CADENCE, VENDORS
from tests.flink_support import PARTITIONS, ROOT, job, produce, producer, read, topics

sys.path.insert(0, str(ROOT / "flink"))
import health_scores  # noqa: E402  the job's SQL (PyFlink is imported only to run it)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


# --- the pipeline side: every probe and every sync fetch leaves a provider_call ------------------
def outbox_calls(pg) -> list[dict]:
    rows = pg.execute("SELECT payload FROM event_outbox WHERE topic = %s ORDER BY id", (settings.Topics.PROVIDER_CALLS,))
    return [payload for (payload,) in rows]


def test_each_probe_of_a_round_queues_one_provider_call(pg, isolated_redis):
    probes = [{"provider": "vastai", "ok": True, "latency": 0.234, "weight": 1.0, "error": None},
              {"provider": "lambda", "ok": False, "latency": 5.0, "weight": 0.5, "error": "ConnectTimeout"}]  # fmt: skip
    health.record(pg, probes, T0, isolated_redis)
    health.record(pg, probes, T0, isolated_redis)  # the same round again: the same ids, queued once
    calls = [ProviderCall.model_validate(c) for c in outbox_calls(pg)]
    assert [(c.provider, c.kind, c.ok, c.latency_ms, c.at) for c in calls] == [
        ("vastai", "probe", True, 234, T0), ("lambda", "probe", False, 5000, T0)]  # fmt: skip
    assert calls[0].event_id == ProviderCall.of("vastai", "probe", True, 0.234, T0).event_id


def test_a_sync_fetch_queues_its_outcome_whether_it_succeeds_or_raises(pg, pg_url, monkeypatch):
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    with health.sync_call("vastai"):
        time.sleep(0.05)
    with pytest.raises(TimeoutError), health.sync_call("lambda"):
        raise TimeoutError("vendor took too long")
    (good, bad) = [ProviderCall.model_validate(c) for c in outbox_calls(pg)]
    assert (good.provider, good.kind, good.ok, bad.provider, bad.kind, bad.ok) == ("vastai", "sync", True, "lambda", "sync", False)
    assert 50 <= good.latency_ms < 1000 and bad.latency_ms < 1000
    assert abs(good.at - datetime.now(timezone.utc)) < timedelta(minutes=1) and good.event_id != bad.event_id


# --- the formula, as PostgreSQL evaluates the job's SQL --------------------------------------------
def scores(pg, *windows: tuple) -> list[Decimal]:
    """The job's score for each window (calls, ok_calls, ok_probes, ok_probe_ms, age or None, cadence)."""
    literals = [[("NULL" if v is None else str(v)) for v in window] for window in windows]
    return list(pg.execute("SELECT " + ", ".join(health_scores.score_sql(*w) for w in literals)).fetchone())


@st.composite
def windows(draw) -> tuple:
    calls = draw(st.integers(1, 60))
    ok = draw(st.integers(0, calls))
    probes = draw(st.integers(0, ok))
    ms = sum(draw(st.lists(st.integers(0, 10_000), min_size=probes, max_size=probes)))
    age = draw(st.none() | st.integers(0, 10 * 86400))
    return calls, ok, probes, ms, age, draw(st.sampled_from(sorted(set(CADENCE.values()))))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=windows(), more=st.integers(1, 20), slower=st.integers(1, 5000), older=st.integers(1, 5 * 86400))
def test_the_score_lies_in_0_1_and_no_failure_slower_probe_or_older_landing_raises_it(pg, window, more, slower, older):
    calls, ok, probes, ms, age, cadence = window
    base, failed, slow, stale, unjudged = scores(
        pg, window, (calls + more, ok, probes, ms, age, cadence), (calls, ok, probes, ms + slower * probes, age, cadence),
        (calls, ok, probes, ms, (age or 0) + older, cadence), (calls, ok, probes, ms, None, cadence),
    )  # fmt: skip
    assert 0 <= base <= 1 and base.as_tuple().exponent == -4
    assert (base == 0) == (ok == 0) and (ok == 0 or base >= Decimal("0.1"))
    assert failed <= base and slow <= base and stale <= base <= unjudged


def test_the_score_follows_the_contract_weights(pg):
    hour = CADENCE["cloud"]
    assert scores(pg, (10, 10, 10, 10 * 900, None, hour), (10, 10, 10, 10 * 1001, None, hour),
                  (10, 10, 10, 10 * 2001, None, hour), (10, 5, 5, 5 * 100, None, hour),
                  (10, 0, 0, 0, None, hour), (20, 1, 1, 100, None, hour)) == [
        Decimal("1.0000"), Decimal("0.7500"), Decimal("0.5000"), Decimal("0.5000"), Decimal("0"), Decimal("0.1000")]  # fmt: skip
    # freshness: 1 up to 2 cadences, 0 from 6 (then the 0.1 floor), linear between
    assert scores(pg, (1, 1, 1, 100, 2 * hour, hour), (1, 1, 1, 100, 4 * hour, hour), (1, 1, 1, 100, 6 * hour, hour),
                  (1, 1, 0, 0, 3 * 300, 300)) == [Decimal(1), Decimal("0.5"), Decimal("0.1"), Decimal("0.75")]  # fmt: skip


# --- the job --------------------------------------------------------------------------------------
def call(provider: str, at: datetime, ok=True, ms=200, kind="probe") -> ProviderCall:
    return ProviderCall.of(provider, kind, ok, ms / 1000, at)


def landing(provider: str, offer_id: str, landed_at: datetime) -> OfferObserved:
    offer = Offer(provider=provider, offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                  gpu_count=1, gpu_memory_gb=80, price_per_hour="2.00", region="somewhere", observed_at=landed_at - MINUTE)  # fmt: skip
    return OfferObserved.of(offer, landed_at=landed_at)


def sequence() -> tuple[list[ProviderCall], list[OfferObserved]]:
    """lambda (hourly): landed at 09:00:30, probes 12:00-12:14 (200 ms) with one failure and one
    probe re-sent, a 30 s sync fetch; vastai (5 min): landed at 12:01:20, probes 12:00-12:29, 1.5 s
    for the first ten; runpod: five failed probes, then one of 2.5 s, never landed."""
    calls = [call("lambda", T0 + k * MINUTE + timedelta(seconds=10), ok=k != 5, ms=5000 if k == 5 else 200) for k in range(15)]
    calls += [calls[3], call("lambda", T0 + timedelta(minutes=10, seconds=40), ms=30_000, kind="sync")]
    calls += [call("vastai", T0 + k * MINUTE + timedelta(seconds=5), ms=1500 if k < 10 else 300) for k in range(30)]
    calls += [call("runpod", T0 + k * MINUTE + timedelta(seconds=20), ok=k == 5, ms=2500 if k == 5 else 5000) for k in range(6)]
    landings = [landing("lambda", f"l{i}", T0 - timedelta(hours=3) + timedelta(seconds=30)) for i in range(3)]
    landings += [landing("vastai", "v1", T0 + timedelta(minutes=1, seconds=20))]
    return sorted(calls, key=lambda c: c.at), landings


def expected(calls: list[ProviderCall], landings: list[OfferObserved]) -> dict[tuple[str, datetime], tuple]:
    """(provider, window_end) -> (calls, failures, ok, ok probes, their ms, age of the last landing, cadence):
    the windows of flink/health_scores.py, in Python (each call once by event_id)."""
    once = list({c.event_id: c for c in calls}.values())
    minute_end = lambda t: t.replace(second=0, microsecond=0) + MINUTE  # noqa: E731
    ends = defaultdict(set)
    for provider, at in [(c.provider, c.at) for c in once] + [(o.provider, o.landed_at) for o in landings]:
        ends[provider].add(minute_end(at))
    found = {}
    for provider, provider_ends in ends.items():
        for end in provider_ends:
            window = [c for c in once if c.provider == provider and end - 15 * MINUTE <= c.at < end]
            if window:
                ok = [c for c in window if c.ok]
                probes = [c for c in ok if c.kind == "probe"]
                landed = max((o.landed_at for o in landings if o.provider == provider and o.landed_at < end), default=None)
                age = None if landed is None else int((end - landed).total_seconds())
                found[provider, end] = (len(window), len(window) - len(ok), len(ok), len(probes),
                                        sum(c.latency_ms for c in probes), age, VENDORS[provider].cadence)  # fmt: skip
    return found


def test_a_fixed_sequence_gives_exactly_the_expected_scores_on_the_topic_and_the_latest_in_postgresql(pg, pg_url):
    calls, landings = sequence()
    want = expected(calls, landings)
    assert len(want) == 15 + 30 + 6  # one score per provider and minute with a call in its window
    want_scores = dict(zip(want, scores(pg, *[(n, ok, p, ms, age, cadence) for n, _, ok, p, ms, age, cadence in want.values()])))
    closing = T0 + timedelta(hours=1)  # moves the watermark past every window above, on every partition of both topics

    with topics("calls", "landings", "scores") as made:
        kafka = producer()
        produce(made["calls"], calls, kafka)
        produce(made["landings"], landings, kafka)
        for partition in range(PARTITIONS):
            produce(made["calls"], [call(f"closer{partition}", closing)], kafka, partition)
            produce(made["landings"], [landing("closer", f"c{partition}", closing)], kafka, partition)
        with job("health_scores", env={"GPUBROKER_DATABASE_URL": pg_url}, calls_topic=made["calls"],
                 source_topic=made["landings"], scores_topic=made["scores"]):  # fmt: skip
            messages = read(made["scores"], until=lambda m: len(m) >= len(want), timeout=240)
            rows = latest_rows(pg, until=lambda r: len(r) == 3 and r["vastai"][0] == T0 + 30 * MINUTE)

    got = {}
    for key, value in messages:
        score = HealthScore.model_validate(value)  # exactly the contract's fields
        assert key == score.key and score.window_end - score.window_start == 15 * MINUTE
        assert score.event_id == health_score_id(score.provider, score.window_end)
        got[score.provider, score.window_end] = score
    assert len(messages) == len(got) == len(want) and got.keys() == want.keys()  # each window once
    for window, (n, failures, _, probes, ms, age, _) in want.items():
        score = got[window]
        assert (score.calls, score.failures, Decimal(str(score.score))) == (n, failures, want_scores[window]), window
        assert score.latency_ms == (round(ms / probes) if probes else None)
        assert score.last_landed_at == (None if age is None else window[1] - timedelta(seconds=age))

    at = lambda provider, minutes: Decimal(str(got[provider, T0 + minutes * MINUTE].score))  # noqa: E731
    assert got["lambda", T0 + 15 * MINUTE].calls == 16  # 15 probes (one re-sent: counted once) and the sync
    assert at("lambda", 15) == Decimal("0.6465")  # 15/16 ok, 200 ms, landed 3 h 14 min 30 s ago: 0.9375 x 0.6896
    assert [at("vastai", m) for m in (1, 2, 15, 25, 30)] == [Decimal("0.75"), Decimal("0.75"), Decimal("0.6125"),
                                                              Decimal("0.3167"), Decimal("0.1")]  # fmt: skip
    assert [at("runpod", m) for m in range(1, 7)] == [0, 0, 0, 0, 0, Decimal("0.1")]
    assert rows == {"lambda": (T0 + 15 * MINUTE, Decimal("0.6465"), 16, 1), "vastai": (T0 + 30 * MINUTE, Decimal("0.1000"), 15, 0),
                    "runpod": (T0 + 6 * MINUTE, Decimal("0.1000"), 6, 5)}  # fmt: skip


def latest_rows(pg, until, timeout: float = 30) -> dict[str, tuple]:
    """provider_health_scores (the job's latest score per provider, JDBC upserts) once `until` holds, or at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = pg.execute("SELECT provider, window_end, score, calls, failures FROM provider_health_scores").fetchall()
        found = {provider: tuple(rest) for provider, *rest in rows}
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_scores_keep_coming_while_no_landing_arrives(pg, pg_url):
    """Landings come hourly: their idle partitions stop holding the watermark back after --idle-timeout."""
    calls = [call("lambda", T0 + k * MINUTE) for k in range(10)]
    landed = T0 + timedelta(seconds=30)
    with topics("calls", "landings", "scores") as made:
        kafka = producer()
        produce(made["calls"], calls, kafka)
        produce(made["landings"], [landing("lambda", "l1", landed)], kafka)  # one partition; the others stay empty
        for partition in range(PARTITIONS):
            produce(made["calls"], [call(f"closer{partition}", T0 + timedelta(hours=1))], kafka, partition)
        with job("health_scores", env={"GPUBROKER_DATABASE_URL": pg_url}, calls_topic=made["calls"],
                 source_topic=made["landings"], scores_topic=made["scores"], idle_timeout="20 s"):  # fmt: skip
            messages = read(made["scores"], until=lambda m: len(m) >= len(calls), timeout=240)
    got = sorted((HealthScore.model_validate(v) for _, v in messages), key=lambda s: s.window_end)
    assert [(s.window_end, s.calls, s.last_landed_at) for s in got] == [
        (T0 + (k + 1) * MINUTE, k + 1, landed) for k in range(10)]  # fmt: skip
    assert {s.score for s in got} == {1.0}  # every call fine, landed within 2 cadences
