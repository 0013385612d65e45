"""Provider weights driving the syncs, on the real Redis, Airflow and HTTP (replay server): the
syncs' priority lottery (shares in proportion to weight), the scheduler-side strategy the plugin
registers, the 50-requests-in-flight limit around every vendor request, and the weight and average
latency in `/api/v1/providers` and the WebSocket's `providers_list`."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.serialization.serialized_objects import DagSerialization
from hypothesis import given, settings
from hypothesis import strategies as st

from gpubroker import settings as gpubroker_settings
from gpubroker.breaker import MAX_CALLS, Breaker
from gpubroker_provider import priority
from gpubroker_provider.hooks.base import VendorError
from gpubroker_provider.vendors import hook_class
from tests.conftest import REPLAY_KEY, ROOT
from tests.test_feed import _close_pool, ask, connect, feed, key  # noqa: F401 (fixtures)


def first_picks(weights: list[float], rounds: int, draw) -> Counter[int]:
    """How often each contender's sync is queued first (the highest priority, as the scheduler orders
    a full pool's waiting task instances), over rounds of fresh draws."""
    picks: Counter[int] = Counter()
    for _ in range(rounds):
        drawn = [draw(i, w) for i, w in enumerate(weights)]
        picks[drawn.index(max(drawn))] += 1
    return picks


@settings(max_examples=100, deadline=None)
@given(weights=st.lists(st.one_of(st.just(0.0), st.floats(0.1, 1.0)), min_size=2, max_size=8).filter(any),
       rng=st.randoms(use_true_random=True))  # fmt: skip
def test_over_many_rounds_each_provider_is_queued_first_in_proportion_to_its_weight(weights, rng):
    """**Feature: provider-api-gateway, Property 9: Weighted Load Balancing** — for any providers'
    weights (0: out of rotation, else 0.1..1), over 5,000 rounds each one's share of the first pick
    is weight / sum of weights, within 0.04 (at least 5.6 standard deviations)."""
    rounds = 5000
    picks = first_picks(weights, rounds, lambda i, w: priority.priority(w, rng))
    for i, w in enumerate(weights):
        assert picks[i] / rounds == pytest.approx(w / sum(weights), abs=0.04), (i, weights, picks)


def test_priorities_are_positive_database_integers_and_an_unhealthy_provider_is_always_last():
    rng = random.Random(7)
    drawn = [priority.priority(w, rng) for w in (0.1, 0.5, 1.0) for _ in range(10_000)]
    assert all(isinstance(p, int) and 0 < p <= 2**31 - 1 for p in drawn)
    assert priority.priority(0.0, rng) == 0 < min(drawn)


@pytest.fixture(scope="module")
def sync_tasks() -> dict:
    """Each vendor's sync task as the scheduler holds it: parsed, serialized and read back."""
    bag = DagBag(dag_folder=str(ROOT / "dags" / "gpubroker_vendor_syncs.py"))
    assert not bag.import_errors, bag.import_errors
    dags = {dag_id: DagSerialization.from_dict(DagSerialization.to_dict(dag)) for dag_id, dag in bag.dags.items()}
    return {dag.get_task("sync_provider").provider: dag.get_task("sync_provider") for dag in dags.values()}


def test_the_plugin_registers_the_strategy_and_every_vendor_sync_uses_it(sync_tasks):
    from airflow import plugins_manager

    assert plugins_manager.get_priority_weight_strategy_plugins()["gpubroker_provider.priority.ProviderWeight"] is (
        priority.ProviderWeight)  # fmt: skip
    assert {type(task.weight_rule) for task in sync_tasks.values()} == {priority.ProviderWeight}


def test_an_airflow_process_started_before_the_plugin_had_the_strategy_keeps_the_default_rule(monkeypatch, caplog):
    """Such a process (a running stack given this code) could not serialize the strategy: every vendor's
    sync DAG would turn stale. The plugin class as it was before (no strategies) stands in for it."""
    from gpubroker_provider.airflow_plugin import GpuBrokerPlugin

    assert isinstance(priority.sync_weight_rule(), priority.ProviderWeight)
    monkeypatch.setattr(GpuBrokerPlugin, "priority_weight_strategies", [])
    assert priority.sync_weight_rule() == "absolute"
    assert "restarted" in caplog.text


def slow(breaker: Breaker, seconds: float) -> None:
    breaker.called(breaker.call(), seconds)


def test_the_scheduler_gives_each_sync_a_priority_from_its_providers_weight_in_redis(sync_tasks, isolated_redis):
    """Task instances' rows made as the scheduler makes them when a run starts (`insert_mapping`, which
    asks the task's weight rule): a fast vendor's sync goes first twice as often as a slow one's, an
    unhealthy one's never."""
    slow(Breaker("lambda", isolated_redis), 2.5)  # answers in 2.5 s: weight 0.5
    failing = Breaker("runpod", isolated_redis)
    for _ in range(3):
        failing.record(failing.admit(), False)  # 3 failures in a row: weight 0
    random.seed(11)  # the strategy draws from the module-level generator, as in the scheduler
    rounds, contenders = 1000, ["vastai", "lambda", "runpod"]

    def draw(i, _):
        task, run = sync_tasks[contenders[i]], DagRun(dag_id=f"gpubroker_sync_{contenders[i]}", run_id=f"r{uuid.uuid4()}")
        return TaskInstance.insert_mapping(run.run_id, task, -1, dag_version_id=None, dag_run=run)["priority_weight"]

    picks = first_picks([1.0, 0.5, 0.0], rounds, draw)
    assert (picks[0] / rounds, picks[1] / rounds, picks[2]) == (pytest.approx(2 / 3, abs=0.05), pytest.approx(1 / 3, abs=0.05), 0)


def test_with_redis_unreachable_the_scheduler_gets_a_fair_lottery_at_once(sync_tasks, monkeypatch):
    monkeypatch.setattr(gpubroker_settings, "REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    started = time.monotonic()
    assert priority.current_weight("vastai") == 1.0
    assert TaskInstance(task=sync_tasks["vastai"], run_id="r", dag_version_id=None).priority_weight > 0
    assert time.monotonic() - started < 2


def vastai(replay, **kwargs):
    return hook_class("vastai")(base_url=replay.vendor_url("vastai"), api_key=REPLAY_KEY, **kwargs)


def test_a_vendor_request_waits_for_one_of_its_50_slots_and_its_answer_time_sets_the_weight(replay, isolated_redis):
    breaker = Breaker("vastai", isolated_redis)
    held = [breaker.call() for _ in range(MAX_CALLS)]  # 50 requests in flight elsewhere
    with pytest.raises(VendorError, match=f"vastai: POST .* not sent: {MAX_CALLS} requests to vastai are in flight"):
        vastai(replay, max_attempts=2).probe()
    assert breaker.snapshot().recent_latencies == ()  # it never reached the vendor
    breaker.called(held.pop(), None)
    replay.faults("vastai", *[{"delay": 1.3}] * 2)  # the vendor takes 1.3 s to answer
    for _ in range(2):
        vastai(replay).probe()
    snap = breaker.snapshot()
    assert len(snap.recent_latencies) == 2 and 1300 <= snap.avg_latency_ms < 2000
    assert snap.weight == 0.75
    assert int(isolated_redis.zcard(breaker.calls)) == MAX_CALLS - 1  # its own slots were given back


def test_without_redis_a_vendor_request_goes_ahead_uncounted(replay, monkeypatch, caplog):
    monkeypatch.setattr(gpubroker_settings, "REDIS_URL", "redis://127.0.0.1:1/0")  # e.g. the CLI, no Redis running
    assert vastai(replay).fetch_batch().offers
    assert "vastai: request not counted, Redis unreachable" in caplog.text


async def test_weight_and_average_latency_are_in_the_provider_status(api, isolated_redis):
    slow(Breaker("vastai", isolated_redis), 1.5)
    slow(Breaker("vastai", isolated_redis), 0.9)
    out = Breaker("lambda", isolated_redis)
    for _ in range(3):
        out.record(out.admit(), False)
    items = {p["slug"]: p for p in (await api.get("/api/v1/providers")).json()["items"]}
    assert (items["vastai"]["weight"], items["vastai"]["avg_latency_ms"]) == (0.75, 1200)
    assert (items["lambda"]["weight"], items["lambda"]["avg_latency_ms"]) == (0.0, None)
    assert (items["runpod"]["weight"], items["runpod"]["avg_latency_ms"]) == (1.0, None)  # no call yet
    schema = (await api.get("/api/v1/openapi.json")).json()["components"]["schemas"]["ProviderOut"]
    assert {"weight", "avg_latency_ms"} <= set(schema["required"])


async def test_the_websockets_providers_list_carries_them_too(feed, key, isolated_redis):
    slow(Breaker("vastai", isolated_redis), 2.4)
    out = Breaker("runpod", isolated_redis)
    for _ in range(3):
        out.record(out.admit(), False)
    ws, _ = await connect(key)
    listed = {p["slug"]: p for p in (await ask(ws, {"type": "get_providers"}))["providers"]}
    await ws.disconnect()
    assert (listed["vastai"]["weight"], listed["vastai"]["avg_latency_ms"], listed["vastai"]["healthy"]) == (0.5, 2400, True)
    assert (listed["lambda"]["weight"], listed["lambda"]["avg_latency_ms"], listed["lambda"]["healthy"]) == (1.0, None, True)
    assert (listed["runpod"]["weight"], listed["runpod"]["healthy"]) == (0.0, False)  # 3 failed calls in a row
    assert listed["runpod"]["name"] == "RunPod"
