"""Hyperbolic: a marketplace of GPU nodes from many suppliers, rented by the GPU.

Endpoint: POST {base}/v1/marketplace (base https://api.hyperbolic.xyz) with `{"filters": {}}` (every
node), the call Hyperbolic's own CLI and agent kits make; auth `Authorization: Bearer <key>` (a free
account's key). No pagination: one answer `{"instances": [<node>, ...]}`.

Per node (field names as Hyperbolic's clients read them):
  `id` — the node ("sfc-024"), with `cluster_name`: the offer id is `<cluster_name>/<id>`;
  `hardware.gpus` — one entry per GPU, `model` such as "NVIDIA-H100-80GB-HBM3" (the model, and the GB
    per GPU where the name states them; else the registry's memory, marked inferred);
  `hardware.cpus[].virtual_cores` — vCPUs (summed); RAM and storage capacities are not read (their
    units are undocumented);
  `pricing.price.amount` — US CENTS per hour PER GPU ("The GPU prices are in CENTS per hour"): / 100;
  `gpus_total`, `gpus_reserved` — GPUs on the node and those rented;
  `status` ("node_ready"), `reserved` — whether the node takes rentals at all;
  `location.region` — where it is; the country from it where it names one.
Offers: one per node for ONE GPU (the unit Hyperbolic rents; several GPUs of a node cost that many
times the price): AVAILABLE with the node's free GPUs as `available_count` when the node is ready,
not reserved and has free GPUs, else UNAVAILABLE (0). On demand only; interconnect not stated.
Skipped: nodes without GPUs. Dropped with a reason: no price, GPU counts missing or not numbers.
Unknown GPU names are counted, not guessed.
Kind: marketplace — suppliers' nodes are rented and freed by the minute (5-minute syncs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

GB_IN_MODEL = re.compile(r"-(\d+)GB\b", re.I)  # "NVIDIA-H100-80GB-HBM3"


class HyperbolicHook(VendorHook):
    vendor = VENDORS["hyperbolic"]

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "POST", "/v1/marketplace", json={"filters": {}})

    def items(self, pages: list[Any]) -> Iterator[Any]:
        yield from self.listed(pages, "instances")

    def item_offers(self, node: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        hardware = node["hardware"]
        if not hardware["gpus"]:
            skip("node without GPUs")
        model = text(hardware["gpus"][0], "model")
        if not (match := batch.gpu(model)):
            return
        free = number(node, "gpus_total") - number(node, "gpus_reserved")
        ready = node.get("status") == "node_ready" and node.get("reserved") is not True and free > 0
        memory = GB_IN_MODEL.search(model)
        region = (node.get("location") or {}).get("region") or "unknown"
        yield self.offer(
            match,
            observed_at,
            region=region,
            offer_id=f"{text(node, 'cluster_name')}/{text(node, 'id')}",
            instance_type=model,
            gpu_count=1,
            gpu_memory_gb=float(memory[1]) if memory else None,
            vcpus=sum(number(cpu, "virtual_cores") for cpu in hardware.get("cpus") or []) or None,
            price_per_hour=Decimal(str(number(node["pricing"]["price"], "amount"))) / 100,
            availability=Availability.AVAILABLE if ready else Availability.UNAVAILABLE,
            available_count=free if ready else 0,
        )
