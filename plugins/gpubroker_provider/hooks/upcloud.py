"""UpCloud: GPU server plans, priced zone by zone, with the GPU servers each zone can start now.

Endpoints (UpCloud API 1.3, https://api.upcloud.com; shapes as UpCloud's Go SDK reads them):
  GET /1.3/plan                  {"plans": {"plan": [plan, ...]}}: every server plan, CPU and GPU
  GET /1.3/price                 {"prices": {"zone": [{"name": "fi-hel2", "<item>": {"amount", "price"}}, ...]}}
  GET /1.3/device/availability   {"<zone>": {"gpu_plans": {"<plan>": {"amount": N}}}}
Auth: `Authorization: Bearer <API token>` (UpCloud's API tokens; the older HTTP Basic login is not
used). No pagination. The answers do not name their call, so each is kept as {"call": <path>,
"response": <the answer>}; an offer joins a plan with its zone's price and stock.

Fields used:
- plan: `name` ("GPU-8xCPU-64GB-1xL40S"), `gpu_amount` (0 or absent: a CPU plan, skipped),
  `gpu_model` ("NVIDIA L40S"), `core_number` (vCPUs), `memory_amount` (MiB -> GB x 1.048576 / 1000),
  `storage_size` (GB of included storage; 0 for GPU plans: left empty);
- price: the zone's `server_plan_<plan name>` item: `price` in EUR CENTS per hour for `amount` (1)
  server, all its GPUs; / 100, converted at gpubroker.fx (dated there). UpCloud bills by the hour,
  capped at 672 hours a month: the hourly price is the on-demand offer;
- availability: `amount`, GPU servers of the plan that can be started in the zone now:
  `available_count`, "available" above 0 else "unavailable"; a plan the zone does not list is "unknown".
Offers: one per GPU plan and zone whose price list carries it, offer_id "<plan>@<zone>". The zone
id starts with its country's ISO code ("fi-hel2" -> FI; "uk-" -> GB). A GPU plan priced in no zone
is dropped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.fx import TO_USD
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

CALLS = ("/1.3/plan", "/1.3/price", "/1.3/device/availability")
MIB_TO_GB = 1.048576 / 1000
COUNTRY_OF_PREFIX = {"uk": "GB"}  # the one zone prefix that is not the ISO code


class UpCloudHook(VendorHook):
    vendor = VENDORS["upcloud"]
    primary_only = False  # plans join the price list and the stock, each kept with its call

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for call in CALLS:
            yield {"call": call, "response": self.request(client, "GET", call)}

    def items(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any]]:
        """(prices by zone, stock by zone, plan) for every plan; the price list and stock read once."""
        answers = {page.get("call"): page.get("response") for page in pages if isinstance(page, dict)}
        self.expect(set(answers) == set(CALLS), f"expected the answers of {', '.join(CALLS)}")
        plans = answers["/1.3/plan"].get("plans") if isinstance(answers["/1.3/plan"], dict) else None
        self.expect(isinstance(plans, dict) and isinstance(plans.get("plan"), list),
                    'expected {"plans": {"plan": [...]}}')  # fmt: skip
        prices, stock = _prices_by_zone(answers["/1.3/price"]), _stock_by_zone(answers["/1.3/device/availability"])
        yield from ((prices, stock, plan) for plan in plans["plan"])

    def item_offers(self, item: tuple[dict[str, Any], dict[str, Any], Any], observed_at: datetime,
                    batch: Batch) -> Iterator[Offer]:  # fmt: skip
        prices, stock, plan = item
        name = text(plan, "name")
        if not plan.get("gpu_amount"):
            skip("CPU plan")
        zones = {zone: items[f"server_plan_{name}"] for zone, items in prices.items() if f"server_plan_{name}" in items}
        if not zones:
            raise ValueError(f"{name} is priced in no zone")
        if (match := batch.gpu(text(plan, "gpu_model"))) is None:
            return
        for zone, price in zones.items():
            count = stock.get(zone, {}).get(name)
            yield self.offer(
                match,
                observed_at,
                region=zone,
                country=COUNTRY_OF_PREFIX.get(zone[:2], zone[:2].upper()),
                offer_id=f"{name}@{zone}",
                instance_type=name,
                gpu_count=int(number(plan, "gpu_amount")),
                gpu_memory_gb=None,  # the plan does not say: the registry's (L40S: 48 GB)
                vcpus=int(number(plan, "core_number")),
                ram_gb=round(number(plan, "memory_amount") * MIB_TO_GB, 1),
                disk_gb=plan.get("storage_size") or None,
                price_per_hour=_hourly_usd(price),
                availability=_availability(count),
                available_count=count,
            )


def _prices_by_zone(answer: Any) -> dict[str, dict[str, Any]]:
    """{zone: {item: {"amount", "price"}}} from the /price answer (a zone without a name is malformed)."""
    return {zone["name"]: zone for zone in answer["prices"]["zone"]}


def _stock_by_zone(answer: Any) -> dict[str, dict[str, int]]:
    """{zone: {plan: GPU servers startable now}} from the /device/availability answer."""
    return {zone: {plan: entry["amount"] for plan, entry in devices["gpu_plans"].items()}
            for zone, devices in answer.items()}  # fmt: skip


def _hourly_usd(price: dict[str, Any]) -> Decimal:
    """USD per hour for one server, from {"amount": 1, "price": <EUR cents per hour>}."""
    if price["amount"] != 1:
        raise ValueError(f"a plan priced per {price['amount']!r} servers")
    return Decimal(str(number(price, "price"))) / 100 * TO_USD["EUR"]


def _availability(count: Any) -> Availability:
    if count is None:
        return Availability.UNKNOWN
    return Availability.AVAILABLE if count > 0 else Availability.UNAVAILABLE
