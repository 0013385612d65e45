"""Seeweb: Cloud Server GPU plans (Italy, Switzerland, Bulgaria) with their hourly prices.

Endpoint: GET https://api.seeweb.it/ecs/v2/plans; auth `X-APITOKEN: <token>` (Seeweb publishes no
plan list without one). No pagination: one answer, `{"status": "ok", "plans": [plan, ...]}`, every
ECS plan, CPU and GPU. The shape is the live one as dstack's gpuhunt Seeweb provider reads it.

Fields used, per plan:
- `name` ("ECS1GPU7"); `available` (false: the plan is retired, skipped; it says nothing of capacity);
- `gpu` (GPUs, a numeric string; "0" or no `gpu_label`: a CPU plan, skipped) and `gpu_label`
  ("L40s 48GB", "MI300X"): the GPU for the registry and, where it ends in "<n>GB", the per-GPU memory
  (else the registry's);
- `hourly_price`: EUR per hour for the WHOLE server (all its GPUs), converted at gpubroker.fx (dated there);
- `cpu` (vCPUs), `ram` (MiB -> GB x 1.048576 / 1000), `disk` (GB), all numeric strings;
- `available_regions` ([{"location": "it-fr2"}]): the regions the plan can be created in. A location
  starts with its country's ISO code (it-fr2 Frosinone and it-mi2 Milan: IT; ch-lug1 Lugano: CH;
  bg-sof1 Sofia: BG).
Offers: one per GPU plan and region, offer_id "<plan>@<location>", on demand. Availability "unknown":
the plan list is not a capacity signal (Seeweb's separate /plans/availables is not read).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.fx import TO_USD
from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

MIB_TO_GB = 1.048576 / 1000
_MEMORY = re.compile(r"(\d+)\s*GB\s*$", re.IGNORECASE)  # "L40s 48GB" -> 48


class SeewebHook(VendorHook):
    vendor = VENDORS["seeweb"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-APITOKEN": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/ecs/v2/plans")

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("plans"), list), 'expected {"plans": [...]}')
            yield from page["plans"]

    def item_offers(self, plan: Any, observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        name = text(plan, "name")
        if not plan.get("gpu_label") or plan["gpu"] == "0":
            skip("CPU plan")
        if plan.get("available") is False:
            skip("plan no longer available")
        label = text(plan, "gpu_label")
        if (match := batch.gpu(label)) is None:
            return
        regions = [text(region, "location") for region in plan["available_regions"]]
        if not regions:
            raise ValueError("available in no region")
        memory = _MEMORY.search(label)
        for location in regions:
            yield self.offer(
                match,
                observed_at,
                region=location,
                country=location[:2].upper(),
                offer_id=f"{name}@{location}",
                instance_type=name,
                gpu_count=int(plan["gpu"]),
                gpu_memory_gb=float(memory[1]) if memory else None,
                vcpus=int(plan["cpu"]),
                ram_gb=round(int(plan["ram"]) * MIB_TO_GB, 1),
                disk_gb=float(plan["disk"]),
                price_per_hour=Decimal(str(number(plan, "hourly_price"))) * TO_USD["EUR"],
            )
