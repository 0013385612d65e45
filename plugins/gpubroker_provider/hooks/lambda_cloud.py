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
sells none), how many instances are free (available_count left empty).

Layouts accepted (each instance type parsed on its own):
- the current one above; `instance_type.architecture` ("x86_64" / "arm64"), where sent, is the CPU
  architecture (else inferred: arm64 for Grace superchips GH200/GB200, x86_64 otherwise);
- the older one, before `gpu_description` and `specs.gpus`: the GPU count, model, memory and form
  come from `description` ("8x Tesla V100 (16 GB)", "1x A100 (40 GB SXM4)");
- newer GPU names ("NVIDIA B200 (180 GB SXM)"); capacity regions given by `name` alone (country
  from the name); no `storage_gib` (disk left empty).
Skipped as not GPU offers: CPU-only types (`specs.gpus` 0, `gpu_description` "N/A", or a `cpu_`
name such as "cpu_4x_general").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus, regions
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number, skip
from gpubroker.vendors import VENDORS

GIB_TO_GB = 1.073741824
GPU_DESCRIPTION = re.compile(r"^(?P<model>.+?) \((?P<memory>\d+(?:\.\d+)?) GB(?: (?P<form>[^)]+))?\)$")
COUNTED = re.compile(r"^(?P<count>\d+)x (?P<gpu>.+)$")  # older layout's description: "8x Tesla V100 (16 GB)"
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
# Lambda region names whose prefix does not name the country (for regions sent without a description)
REGION_COUNTRY = {"asia-northeast-1": "JP", "asia-northeast-2": "KR", "asia-south-1": "IN", "me-west-1": "IL",
                  "australia-east-1": "AU", "europe-central-1": "DE"}  # fmt: skip
ARM_GPUS = {"GH200", "GB200"}  # Grace superchips: the host CPU is arm64
NO_CAPACITY = {"name": "unknown", "description": ""}


class LambdaHook(VendorHook):
    vendor = VENDORS["lambda"]
    variants = (
        Variant("older-layout", "instance-types.json", "before `gpu_description` and `specs.gpus`: GPUs "
                "read from `description`; a CPU-only `cpu_4x_general`"),
        Variant("newer-layout", "instance-types.json", "`architecture`, \"NVIDIA <GPU>\" names, regions by "
                "`name` only, a CPU-only type with `gpu_description` \"N/A\""),
    )

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/api/v1/instance-types")

    def items(self, pages: list[Any]) -> Iterator[tuple[str, Any]]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("data"), dict), 'expected {"data": {...}}')
            yield from page["data"].items()

    def item_offers(self, item: tuple[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        name, entry = item
        spec = entry["instance_type"]
        self.expect(spec["name"] == name, "instance type keyed under another name")
        count, gpu_name, memory_gb = _gpus(spec)
        if not (match := batch.gpu(gpu_name)):
            return
        capacity = entry["regions_with_capacity_available"]
        self.expect(isinstance(capacity, list), "regions_with_capacity_available is not a list")
        for region in capacity or [NO_CAPACITY]:
            yield self._offer(spec, count, memory_gb, region, bool(capacity), match, observed_at)

    def _offer(self, spec: dict[str, Any], count: int, memory_gb: float, region: dict[str, str], available: bool,
               match: gpus.GpuMatch, observed_at: datetime) -> Offer:
        specs = spec["specs"]
        place = region["name"] if available else "none"
        location = regions.from_place(region.get("description"))
        if location.country is None:
            location = regions.country(REGION_COUNTRY.get(region["name"]))
        if location.country is None:
            location = regions.from_place(region["name"])
        storage = specs.get("storage_gib")
        return self.offer(
            match,
            observed_at,
            region=region["name"],
            country=location.country,
            offer_id=f"{spec['name']}@{place}",
            instance_type=spec["name"],
            gpu_count=count,
            gpu_memory_gb=memory_gb,
            vcpus=specs["vcpus"],
            ram_gb=round(specs["memory_gib"] * GIB_TO_GB, 1),
            disk_gb=None if storage is None else round(storage * GIB_TO_GB, 1),
            price_per_hour=number(spec, "price_cents_per_hour") / 100,
            availability=Availability.AVAILABLE if available else Availability.UNAVAILABLE,
            cpu_arch=ARCHITECTURES.get(spec.get("architecture"))
            or ("arm64" if match.model.name in ARM_GPUS else "x86_64"),
        )


def _gpus(spec: dict[str, Any]) -> tuple[int, str, float]:
    """(GPUs per instance, GPU name with its form, per-GPU GB) from either layout; CPU-only types skipped."""
    count = spec["specs"].get("gpus")
    description = spec.get("gpu_description")
    if count == 0 or description == "N/A" or spec["name"].startswith("cpu_"):
        skip("CPU-only instance type")
    if description is None:  # older layout: "8x Tesla V100 (16 GB)"
        found = COUNTED.match(spec["description"])
        if found is None:
            raise ValueError(f"unparseable description {spec['description']!r}")
        count, description = int(found["count"]), found["gpu"]
    model, memory_gb, form = _gpu(description)
    return count, f"{model} {form}".strip(), memory_gb


def _gpu(description: str) -> tuple[str, float, str]:
    """'H100 (80 GB SXM5)' -> ('H100', 80.0, 'SXM5'); 'Tesla V100 (16 GB)' -> ('Tesla V100', 16.0, '')."""
    found = GPU_DESCRIPTION.match(description)
    if found is None:
        raise ValueError(f"unparseable gpu_description {description!r}")
    return found["model"], float(found["memory"]), found["form"] or ""
