"""TensorDock: GPU offerings per marketplace location, from the v2 locations listing.

Endpoint: GET {base}/api/v2/locations; auth `Authorization: Bearer <key>`. No pagination: one answer,
`{"data": {"locations": [{"id", "city", "stateprovince", "country", "tier", "gpus": [...]}]}}`.

Fields and units, per GPU of a location:
  `v0Name` ("h100-sxm5-80gb") — TensorDock's stable GPU id; `displayName` ("H100 SXM5 80GB") — the
    name matched in the registry; per-GPU memory is the "<n>GB" in it (GB);
  `price_per_hr` — USD per hour for ONE GPU, on-demand;
  `pricing.per_vcpu_hr`, `pricing.per_gb_ram_hr`, `pricing.per_gb_storage_hr` — USD per hour per
    vCPU / per GB of RAM / per GB of storage, billed on top of the GPU;
  `max_count` — GPUs deployable there now; `resources.max_*` — the most one VM can take.
A TensorDock VM is built to order, so an offer is defined here as the smallest VM with ONE GPU:
BASE_VCPUS vCPUs, BASE_RAM_GB GB RAM and the 100 GB minimum storage (inferred: TensorDock documents
the 100 GB storage minimum; 2 vCPUs / 4 GB RAM is its documented example configuration). Its price
is `price_per_hr` + 2 x per_vcpu_hr + 4 x per_gb_ram_hr + 100 x per_gb_storage_hr.
offer_id `<location id>:<v0Name>`; region "<city>, <country>" (country by name); available_count
= `max_count` (0 -> unavailable). No spot prices in this listing.
Each GPU of each location is an item; a GPU name without "<n>GB" (in `displayName` or `v0Name`)
gets its memory from the registry when the model has one size (marked inferred).

Shapes accepted besides the locations listing (the same one-GPU offer, priced the same way):
- the v2 hostnodes listing (GET /api/v2/hostnodes): `{"data": {"hostnodes": [{"id", "location":
  {"city", "country", ...}, "available_resources": {"gpus": [{"v0Name", "availableCount",
  "price_per_hr"}], ...}, "pricing": {"per_vcpu_hr", "per_gb_ram_hr", "per_gb_storage_hr"}}]}}`;
  offer_id `<hostnode id>:<v0Name>`, the GPU named by its `v0Name` ("geforcertx4090-pcie-24gb");
- the v0 marketplace (GET /api/v0/client/deploy/hostnodes): `{"hostnodes": {<id>: {"location":
  {"city", "country"}, "specs": {"gpu": {<v0Name>: {"amount", "price", "vram"}}, "cpu": {"amount",
  "price"}, "ram": {...}, "storage": {...}}}}}`: `amount` GPUs free, `price` USD per GPU-hour, per
  vCPU-hour, per GB-hour; `vram` GB per GPU. offer_id `<hostnode id>:<v0Name>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number, number_or_none

BASE_VCPUS, BASE_RAM_GB, MIN_STORAGE_GB = 2, 4, 100
MEMORY = re.compile(r"(\d+)\s*GB\b", re.IGNORECASE)


class TensorDockHook(VendorHook):
    vendor = VENDORS["tensordock"]
    variants = (
        Variant("hostnodes", "locations.json", "the v2 hostnodes listing: GPUs under `available_resources` "
                "named by `v0Name` only, `availableCount`, the node's `pricing`"),
        Variant("v0-marketplace", "locations.json", "the v0 marketplace: `hostnodes` keyed by id, "
                "`specs.gpu.<v0Name>` {amount, price, vram}, `specs.cpu|ram|storage.price`"),
    )

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", "/api/v2/locations")

    def items(self, pages: list[Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """(shape, location or hostnode, one GPU offered there): each GPU of each place is an item."""
        for page in pages:
            self.expect(isinstance(page, dict), "expected a JSON object")
            if isinstance(page.get("hostnodes"), dict):  # v0 marketplace
                for node_id, node in page["hostnodes"].items():
                    self.expect(isinstance(node, dict) and isinstance((node.get("specs") or {}).get("gpu"), dict),
                                'expected each hostnode to list its "specs.gpu"')  # fmt: skip
                    yield from (("v0", node | {"id": node_id}, (name, gpu)) for name, gpu in node["specs"]["gpu"].items())
                continue
            data = page["data"]
            if "hostnodes" in data:
                self.expect(isinstance(data["hostnodes"], list), 'expected {"data": {"hostnodes": [...]}}')
                for node in data["hostnodes"]:
                    gpus_there = ((node.get("available_resources") or {}).get("gpus")) if isinstance(node, dict) else None
                    self.expect(isinstance(gpus_there, list), 'expected each hostnode to list "available_resources.gpus"')
                    yield from (("hostnode", node, gpu) for gpu in gpus_there)
                continue
            locations = data["locations"]
            self.expect(isinstance(locations, list), 'expected {"data": {"locations": [...]}}')
            for location in locations:
                gpus_there = location.get("gpus") if isinstance(location, dict) else None
                self.expect(isinstance(gpus_there, list), 'expected each location to list its "gpus"')
                yield from (("location", location, gpu) for gpu in gpus_there)

    def item_offers(self, item: tuple[str, dict[str, Any], Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        shape, place, gpu = item
        fields = {"location": _location_gpu, "hostnode": _hostnode_gpu, "v0": _v0_gpu}[shape](place, gpu)
        if match := batch.gpu(fields.pop("gpu")):
            yield self._offer(place.get("location") or place, fields, match, observed_at)

    def _offer(self, location: dict[str, Any], gpu: dict[str, Any], match: gpus.GpuMatch,
               observed_at: datetime) -> Offer:
        """The smallest one-GPU VM, from `gpu`: {"id", "v0Name", "gpu_price", "rates" (vcpu, ram, storage),
        "count" (GPUs free)} and the place's `location` {"city", "country"}."""
        vcpu, ram, storage = gpu["rates"]
        price = gpu["gpu_price"] + BASE_VCPUS * vcpu + BASE_RAM_GB * ram + MIN_STORAGE_GB * storage
        memory = gpu["memory_gb"] or _memory(gpu["v0Name"])
        count = gpu["count"]
        self.expect(isinstance(count, int) and count >= 0, "max_count is not a count")
        return self.offer(
            match,
            observed_at,
            region=", ".join(filter(None, (location.get("city"), location["country"]))),
            country=location["country"],
            offer_id=f"{gpu['id']}:{gpu['v0Name']}",
            instance_type=f"1x {gpu['v0Name']}",
            gpu_count=1,
            gpu_memory_gb=memory,  # None: from the registry
            vcpus=BASE_VCPUS,
            ram_gb=BASE_RAM_GB,
            disk_gb=MIN_STORAGE_GB,
            price_per_hour=round(price, 4),
            availability=Availability.AVAILABLE if count else Availability.UNAVAILABLE,
            available_count=count,
        )


def _location_gpu(location: dict[str, Any], gpu: dict[str, Any]) -> dict[str, Any]:
    """A GPU of the v2 locations listing, as `_offer` reads it."""
    rates = gpu["pricing"]
    return {
        "gpu": gpu["displayName"], "id": location["id"], "v0Name": gpu["v0Name"], "count": gpu["max_count"],
        "gpu_price": number(gpu, "price_per_hr"), "memory_gb": _memory(gpu["displayName"]),
        "rates": [number(rates, k) for k in ("per_vcpu_hr", "per_gb_ram_hr", "per_gb_storage_hr")],
    }


def _hostnode_gpu(node: dict[str, Any], gpu: dict[str, Any]) -> dict[str, Any]:
    """A GPU of the v2 hostnodes listing: the node's rates, the GPU named by its `v0Name`."""
    rates = node["pricing"]
    return {
        "gpu": _v0_display(gpu["v0Name"]), "id": node["id"], "v0Name": gpu["v0Name"], "count": gpu["availableCount"],
        "gpu_price": number(gpu, "price_per_hr"), "memory_gb": None,
        "rates": [number(rates, k) for k in ("per_vcpu_hr", "per_gb_ram_hr", "per_gb_storage_hr")],
    }


def _v0_gpu(node: dict[str, Any], named: tuple[str, Any]) -> dict[str, Any]:
    """A GPU of a v0 marketplace hostnode: `specs.gpu.<v0Name>` {"amount", "price", "vram"}."""
    name, gpu = named
    specs = node["specs"]
    return {
        "gpu": _v0_display(name), "id": node["id"], "v0Name": name, "count": gpu["amount"],
        "gpu_price": number(gpu, "price"), "memory_gb": number_or_none(gpu, "vram"),
        "rates": [number(specs[k], "price") for k in ("cpu", "ram", "storage")],
    }


def _v0_display(v0_name: str) -> str:
    """A `v0Name` as a GPU name: "geforcertx4090-pcie-24gb" -> "rtx4090 pcie 24gb"."""
    return " ".join(v0_name.removeprefix("geforce").split("-"))


def _memory(name: str) -> float | None:
    found = MEMORY.search(name)
    return float(found.group(1)) if found else None
