"""The Airflow priority of a vendor's sync: a lottery weighted by the provider's current weight.

`ProviderWeight` is a priority weight strategy (Airflow's `PriorityWeightStrategy`, registered by this
package's plugin, `airflow_plugin.py`). The scheduler asks it for each sync task instance's
`priority_weight` when it creates the instance, i.e. when the vendor's run starts; while the
`vendor_api` pool is full, the waiting instance with the highest priority takes the next free slot.

The priority is an exponential race. Each sync draws an arrival time at the rate of its provider's
weight (`gpubroker.breaker`: 0..1, from its success rate and how fast it answers), and the earliest
arrival gets the highest priority. Of the syncs that wait together, provider i's is queued first
with probability weight_i / sum of the weights, so over many rounds the pool's slots go to each
vendor in proportion to its weight: a healthy fast vendor (1.0) goes ahead of a slow one (0.5) two
times in three. Strict priority by weight would send the slow one last every time, and while the
pool stays full, never. An unhealthy provider (weight 0: breaker open, or 3 failures in a row) is
always last (priority 0).

Redis unreachable: every provider weighs 1 (a fair lottery); the scheduler waits on it no more than
its 0.2 s timeouts per task instance.

An Airflow process serializes or reads a DAG with this strategy only once it has loaded the plugin
that registers it; one started before (a running stack given this code) could not, and would mark
every vendor's sync DAG stale. `sync_weight_rule` gives such a process Airflow's default rule until
it is restarted.
"""

from __future__ import annotations

import functools
import logging
import random
import sys
from typing import TYPE_CHECKING

import redis
from airflow.task.priority_strategy import PriorityWeightStrategy
from airflow.task.weight_rule import WeightRule

from gpubroker import settings
from gpubroker.breaker import Breaker

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

FIRST = 10**9  # the priority of an arrival at time 0
TICKS = 10**6  # priority steps per unit of arrival time (an arrival is at most ~370 units: weight >= 0.1)
log = logging.getLogger(__name__)


def priority(weight: float, rng: random.Random | None = None) -> int:
    """A sync's priority: FIRST minus its arrival time (exponential, rate `weight`) in TICKS; 0 when weight is 0."""
    if weight <= 0:
        return 0
    return max(1, FIRST - round(TICKS * (rng or random).expovariate(weight)))


def current_weight(provider: str) -> float:
    """The provider's weight in Redis now; 1.0 when Redis does not answer."""
    try:
        return Breaker(provider, _redis(settings.REDIS_URL)).weight()
    except (redis.RedisError, OSError) as error:
        log.warning("%s: weight unknown (%s), taken as 1", provider, error)
        return 1.0


class ProviderWeight(PriorityWeightStrategy):
    """`priority(current weight of the task's provider)`; a task without a `provider` keeps its own priority_weight."""

    def get_weight(self, ti: TaskInstance) -> int:
        provider = getattr(ti.task, "provider", None)
        return priority(current_weight(provider)) if provider else ti.task.priority_weight


def sync_weight_rule() -> PriorityWeightStrategy | str:
    """The sync tasks' weight rule: `ProviderWeight`, unless this process loaded a plugin module that
    does not register it (Airflow loads plugins once per process), then Airflow's default. Cheap: it
    looks at the loaded module, and loads nothing (a task process parses its DAG file too)."""
    plugin = sys.modules.get("gpubroker_provider.airflow_plugin")
    if plugin is None or ProviderWeight in plugin.GpuBrokerPlugin.priority_weight_strategies:
        return ProviderWeight()
    log.warning("this Airflow process started before the gpubroker plugin registered ProviderWeight: syncs keep "
                "Airflow's default priority until its scheduler, DAG processor and API server are restarted")  # fmt: skip
    return WeightRule.ABSOLUTE


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
