"""A TaskManager dies (SIGKILL of its real JVM) while the change job works: the job restarts from its
last checkpoint and no price change is lost; what is replayed comes out again with the same event_id.

The cluster is one of the test's own (JobManager + 2 TaskManagers, configured and started exactly as
the stack's by flink/cluster.py), so killing a TaskManager never disturbs the stack's live jobs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from tests.flink_support import OwnCluster, cluster, job, produce, producer, read, topics
from tests.test_flink_changes import observed

pytestmark = pytest.mark.stack
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
OFFERS = 40_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_task_manager_loses_no_change_and_repeats_keep_their_event_id(tmp_path):
    with OwnCluster(tmp_path / "flink", free_port(), free_port()) as own, topics("observations", "changes") as made:
        with job("price_changes", conf=own.conf, source_topic=made["observations"], changes_topic=made["changes"]) as job_id:
            produce(made["observations"], (observed(f"o{i}", "2.00") for i in range(OFFERS)))  # all new
            cluster.wait_until(lambda: cluster.checkpoints(own.rest, job_id)["counts"]["completed"] >= 2, 120,
                               "checkpoints after the first observations")  # fmt: skip

            kafka = producer()  # the second sync: every offer again, every other one cheaper, sent over ~10 s

            def second_sync() -> None:
                for start in range(0, OFFERS, 2000):
                    batch = [observed(f"o{i}", "1.50" if i % 2 else "2.00", T0 + timedelta(hours=1), "2.00", "available")
                             for i in range(start, start + 2000)]  # fmt: skip
                    produce(made["observations"], batch, kafka)
                    time.sleep(0.5)

            sending = threading.Thread(target=second_sync)
            sending.start()
            time.sleep(3)
            victim = sorted(cluster.task_managers(own.rest, job_id))[0]
            own.kill(own.task_manager_pids()[victim])  # mid-stream
            sending.join()

            cluster.wait_until(lambda: cluster.restarts(own.rest, job_id) >= 1, 120, "the job to restart")
            cluster.wait_running(own.rest, job_id, timeout=180)
            changed = {f"flinktest:o{i}" for i in range(1, OFFERS, 2)}

            def complete(messages) -> bool:
                return changed <= {k for k, v in messages if v["type"] == "price_change"}

            messages = read(made["changes"], until=complete, timeout=600, quiet=15)
            restored = cluster.checkpoints(own.rest, job_id)["counts"]["restored"]

    ids, prices = defaultdict(set), defaultdict(set)
    for key, value in messages:
        ids[key, value["type"]].add(value["event_id"])
        if value["type"] == "price_change":
            prices[key].add((value["old_price"], value["new_price"]))
    assert {k for k, _ in ids if _ == "price_change"} == changed  # none lost, none for an unchanged price
    assert all(p == {(2.0, 1.5)} for p in prices.values())
    assert all(len(event_ids) == 1 for event_ids in ids.values())  # a repeat carries the first one's id
    assert len({k for k, t in ids if t == "availability_change"}) == OFFERS  # each offer appeared
    assert restored >= 1  # recovered from a checkpoint, not from scratch
    repeats = len(messages) - len(ids)
    print(f"\n  TaskManager killed: {repeats} repeated messages after recovery, all with their first event_id")
