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
from datetime import datetime
from decimal import Decimal
from typing import Any

from gpubroker.schema import Availability, FormFactor
from gpubroker_provider.hooks.base import Batch, StaticCatalogueHook, is_number
from gpubroker_provider.vendors import VENDORS

PRICE_UNIT = "per instance per hour"
PRICE_BASES = ("instance", "gpu")
_HGX = re.compile(r"\bHGX\b", re.IGNORECASE)  # in the instance `name`: the `gpu` field may name no form


class CoreWeaveHook(StaticCatalogueHook):
    vendor = VENDORS["coreweave"]
    price_unit = PRICE_UNIT

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        page = self.catalogue(pages)
        region = page["region"]
        self.expect(isinstance(page["instances"], list) and page["instances"], 'expected "instances": [...]')
        for row in page["instances"]:
            price, basis = row["usd_per_hour"], row["price_basis"]
            self.expect(basis in PRICE_BASES, f"{row['instance_id']}: unknown price basis {basis!r}")
            if price is None:  # "Contact sales": no public price, no offer
                continue
            match = batch.gpu(row["gpu"])  # CoreWeave's spelling, as written
            if match is None:
                continue
            gpus = row["gpus"]
            self.expect(isinstance(gpus, int) and 1 <= gpus <= 16, f"{row['instance_id']}: bad GPU count {gpus!r}")
            self.expect(is_number(price) and price > 0, f"{row['instance_id']}: bad price {price!r}")
            whole = Decimal(str(price)) * (gpus if basis == "gpu" else 1)
            form = FormFactor.SXM if _HGX.search(row["name"]) else match.form_factor
            batch.add(
                self.offer(
                    match,
                    observed_at,
                    region=region["name"],
                    country=region["country"],
                    offer_id=f"{row['instance_id']}@{region['country']}",
                    instance_type=row["instance_id"],
                    gpu_form_factor=form,
                    gpu_count=gpus,
                    gpu_memory_gb=float(row["gpu_memory_gb"]),
                    vcpus=row["vcpus"],
                    ram_gb=None if row["ram_gb"] is None else float(row["ram_gb"]),
                    price_per_hour=whole,
                    availability=Availability.UNKNOWN,
                )
            )
