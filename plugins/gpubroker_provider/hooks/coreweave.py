"""CoreWeave: the published on-demand instance price list, as a dated static catalogue.

Source: https://www.coreweave.com/pricing (North America list prices). No public price API:
`catalogues/coreweave.json` holds the list as of its `as_of` date (2026-11-01).

Units: CoreWeave sells whole nodes and prices the INSTANCE: `usd_per_hour` with
`"price_basis": "instance"` is USD per hour for the whole node -- 8 GPUs for HGX B200/H200/H100/A100
and the 8-GPU L40S, L40 and RTX PRO 6000 nodes, 4 for a GB200 NVL72 instance, 1 for GH200 -- and is
the offer's `price_per_hour` as is (HGX H100: $49.24/h for 8 GPUs, i.e. $6.155 per GPU-hour).
A row with `"price_basis": "gpu"` (a per-GPU list price) is multiplied by the GPU count.
`gpu_memory_gb` is per GPU in GB; `ram_gb` is the node's system RAM in GB (null where unpublished).
One offer per instance type; offer_id "<instance id>@US", e.g. "gd-8xh100ib-i128@US".

Inferred / not recorded: availability is "unknown" (a price list says nothing about capacity); the
page's prices are for North America, where every general-access zone is in the US, hence country US;
the EU-SOUTH (Spain) zones have no published price and are not recorded. "HGX" names an SXM board
(form factor SXM). "Contact sales" rows (HGX B300, GB300) have no price and produce no offer. Spot
prices and reserved discounts are not recorded.
Known limits: a static list goes stale -- re-read the pricing page and bump `as_of` when it changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.schema import FormFactor
from gpubroker_provider.hooks.base import StaticCatalogueHook, skip, times
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per instance per hour"
PRICE_BASES = ("instance", "gpu")
_HGX = re.compile(r"\bHGX\b", re.IGNORECASE)  # in the instance `name`: the `gpu` field may name no form


class CoreWeaveHook(StaticCatalogueHook):
    vendor = VENDORS["coreweave"]
    price_unit, rows, places = PRICE_UNIT, "instances", None  # one published region: catalogue["region"]

    def check_header(self, page: dict[str, Any]) -> None:
        super().check_header(page)
        self.expect(isinstance(page.get("region"), dict) and {"name", "country"} <= set(page["region"]),
                    'expected the published region {"name", "country"}')  # fmt: skip

    def expand(self, row: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[dict[str, Any]]:
        price, basis, region = row["usd_per_hour"], row["price_basis"], catalogue["region"]
        if basis not in PRICE_BASES:
            raise ValueError(f"unknown price basis {basis!r}")
        if price is None:
            skip("contact sales: no public price")
        hgx = {"gpu_form_factor": FormFactor.SXM} if _HGX.search(row["name"]) else {}
        yield {
            "gpu": row["gpu"],  # CoreWeave's spelling, as written
            "region": region["name"],
            "country": region["country"],
            "offer_id": f"{row['instance_id']}@{region['country']}",
            "instance_type": row["instance_id"],
            "gpu_count": row["gpus"],
            "gpu_memory_gb": row.get("gpu_memory_gb"),
            "vcpus": row["vcpus"],
            "ram_gb": None if row["ram_gb"] is None else float(row["ram_gb"]),
            "price_per_hour": times(price, row["gpus"] if basis == "gpu" else 1),
            **hgx,
        }
