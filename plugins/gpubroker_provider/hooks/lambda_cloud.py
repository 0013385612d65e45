"""Lambda (Lambda Cloud): on-demand instance types and the regions that have capacity for them.

Endpoint: GET {base}/api/v1/instance-types; auth `Authorization: Bearer <key>`. No pagination: one
answer, `{"data": {<instance type name>: {"instance_type": {...}, "regions_with_capacity_available":
[{"name": "us-east-1", "description": "Virginia, USA"}, ...]}}}`. Errors are
`{"error": {"code": "global/invalid-api-key", "message": ..., "suggestion": ...}}`.

Fields used:
  `instance_type.name` (e.g. "gpu_8x_h100_sxm5") — the offer's instance type;
  `instance_type.price_cents_per_hour` — US CENTS per hour for the whole instance (all GPUs): / 100;
  `instance_type.gpu_description` ("H100 (80 GB SXM5)") — GPU model, PER-GPU memory in GB and form
    factor, parsed from "<model> (<n> GB[ <form>])";
  `instance_type.specs.gpus` — GPUs per instance; `specs.vcpus`;
  `specs.memory_gib`, `specs.storage_gib` — GiB, converted to GB (x 1.073741824);
  `regions_with_capacity_available` — where it can be launched now.
Offers: one per instance type and region with capacity (offer_id `<name>@<region>`, available).
An instance type with capacity nowhere still has a price: one offer in region "unknown"
(offer_id `<name>@none`, unavailable) — Lambda does not say where it would run. Instance types with
no GPU (`specs.gpus` 0, CPU-only types) are skipped. Region -> country from the region description
("Virginia, USA") or the region name prefix ("us-east-1"). Not in the answer: spot prices (Lambda
sells none), how many instances are free (available_count left empty), CPU architecture (GH200
instances are arm64; inferred from the GPU model).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus, regions
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

GIB_TO_GB = 1.073741824
GPU_DESCRIPTION = re.compile(r"^(?P<model>.+?) \((?P<memory>\d+(?:\.\d+)?) GB(?: (?P<form>[^)]+))?\)$")
ARM_GPUS = {"GH200", "GB200"}  # Grace superchips: the host CPU is arm64
NO_CAPACITY = {"name": "unknown", "description": ""}


class LambdaHook(VendorHook):
    vendor = VENDORS["lambda"]

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/api/v1/instance-types")

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("data"), dict), 'expected {"data": {...}}')
            for name, entry in page["data"].items():
                spec = entry["instance_type"]
                self.expect(spec["name"] == name, f"instance type {name!r} is keyed under another name")
                if spec["specs"]["gpus"] == 0:
                    continue
                model, memory_gb, form = _gpu(spec["gpu_description"])
                if not (match := batch.gpu(f"{model} {form}".strip())):
                    continue
                capacity = entry["regions_with_capacity_available"]
                self.expect(isinstance(capacity, list), f"{name}: regions_with_capacity_available is not a list")
                for region in capacity or [NO_CAPACITY]:
                    batch.add(self._offer(spec, memory_gb, region, bool(capacity), match, observed_at))

    def _offer(self, spec: dict[str, Any], memory_gb: float, region: dict[str, str], available: bool,
               match: gpus.GpuMatch, observed_at: datetime) -> Offer:
        specs = spec["specs"]
        place = region["name"] if available else "none"
        location = regions.from_place(region["description"])
        if location.country is None:
            location = regions.from_place(region["name"])
        return self.offer(
            match,
            observed_at,
            region=region["name"],
            country=location.country,
            offer_id=f"{spec['name']}@{place}",
            instance_type=spec["name"],
            gpu_count=specs["gpus"],
            gpu_memory_gb=memory_gb,
            vcpus=specs["vcpus"],
            ram_gb=round(specs["memory_gib"] * GIB_TO_GB, 1),
            disk_gb=round(specs["storage_gib"] * GIB_TO_GB, 1),
            price_per_hour=spec["price_cents_per_hour"] / 100,
            availability=Availability.AVAILABLE if available else Availability.UNAVAILABLE,
            cpu_arch="arm64" if match.model.name in ARM_GPUS else "x86_64",
        )


def _gpu(description: str) -> tuple[str, float, str]:
    """'H100 (80 GB SXM5)' -> ('H100', 80.0, 'SXM5'); 'Tesla V100 (16 GB)' -> ('Tesla V100', 16.0, '')."""
    found = GPU_DESCRIPTION.match(description)
    if found is None:
        raise ValueError(f"unparseable gpu_description {description!r}")
    return found["model"], float(found["memory"]), found["form"] or ""
