"""CloudRift: GPU virtual machines on hosts in CloudRift's datacenters, listed per datacenter.

Endpoint: POST {base}/api/v1/instance-types/list (base https://api.cloudrift.ai), the listing CloudRift's
own clients read (dstack's and SkyPilot's CloudRift backends, gpuhunt's catalog). Public: no key
(an `X-API-Key` is only needed to rent). Every call is an envelope
`{"version": "<api date>", "data": {...}}` both ways; we ask
`{"version": API_VERSION, "data": {"selector": {"ByServiceAndLocation": {"services": ["vm"]}}}}`
and get `{"version": ..., "data": {"instance_types": [...]}}`. No pagination: one answer.

Each instance type (one GPU model, `brand_short` e.g. "RTX 4090", `manufacturer`, optional
`datacenters`: [{"name", "provider_name", "country_code"?}]) has `variants`, one per GPU count:
  `name` (e.g. "rtx49-10c-nr.2") — the offer's instance type;
  `gpu_count`; `logical_cpu_count` (vCPUs; else `cpu_count`, physical cores);
  `cost_per_hour` — US CENTS per hour for the WHOLE variant (all its GPUs): / 100;
  `vram` — BYTES per GPU, reported in GiB (24 GiB for an RTX 4090, as vendors advertise it);
  `dram`, `disk` — BYTES for the whole variant, converted to GB (/ 10^9);
  `nodes_per_dc` — {datacenter: hosts that carry the variant}: one offer per datacenter;
  `available_nodes_per_dc` — {datacenter: hosts free to rent it now}: the available count.
Offers: one per variant and datacenter (offer_id `<variant>@<datacenter>`), AVAILABLE with the free
hosts as `available_count`, else UNAVAILABLE (0 free). Country: the datacenter's `country_code` where
the instance type lists it, else the datacenter name's prefix ("us-east-nc-nr-1": US).
Inferred: nothing; on demand only (CloudRift sells no spot), interconnect not stated.
Skipped: variants without GPUs. Dropped with a reason: a variant in no datacenter, a missing or
non-numeric price, count or memory. GPU names the registry does not know are counted as unknown.
Kind: marketplace — host counts per datacenter change as hosts are rented (5-minute syncs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker import regions
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

API_VERSION = "2025-05-29"  # the request envelope's version, as dstack's client sends it
LISTING = {"selector": {"ByServiceAndLocation": {"services": ["vm"]}}}
GIB = 2**30


class CloudRiftHook(VendorHook):
    vendor = VENDORS["cloudrift"]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-API-Key": api_key}  # not needed to list; sent when a key is configured

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "POST", "/api/v1/instance-types/list",
                           json={"version": API_VERSION, "data": LISTING})  # fmt: skip

    def items(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        yield from self.grouped(self.listed(pages, "data", "instance_types"), "variants", "an instance type")

    def item_offers(self, item: tuple[dict[str, Any], dict[str, Any]], observed_at: datetime,
                    batch: Batch) -> Iterator[Offer]:  # fmt: skip
        instance_type, variant = item
        count = number(variant, "gpu_count")
        if count == 0:
            skip("CPU-only variant")
        hosts, free = variant["nodes_per_dc"], variant.get("available_nodes_per_dc") or {}
        if not isinstance(hosts, dict) or not hosts:
            raise ValueError("variant in no datacenter (nodes_per_dc empty)")
        if not (match := batch.gpu(text(instance_type, "brand_short"))):
            return
        countries = {dc.get("name"): dc.get("country_code") for dc in instance_type.get("datacenters") or []}
        name = text(variant, "name")
        for datacenter in hosts:
            available = number(free, datacenter) if datacenter in free else 0
            yield self.offer(
                match,
                observed_at,
                region=datacenter,
                country=countries.get(datacenter) or regions.from_place(datacenter).country,
                offer_id=f"{name}@{datacenter}",
                instance_type=name,
                gpu_count=count,
                gpu_memory_gb=round(number(variant, "vram") / GIB, 1),
                vcpus=variant.get("logical_cpu_count") or number(variant, "cpu_count"),
                ram_gb=round(number(variant, "dram") / 1e9, 1),
                disk_gb=round(number(variant, "disk") / 1e9, 1),
                price_per_hour=Decimal(str(number(variant, "cost_per_hour"))) / 100,
                availability=Availability.AVAILABLE if available > 0 else Availability.UNAVAILABLE,
                available_count=available,
            )
