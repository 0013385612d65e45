"""Cudo Compute: VM machine types, priced per resource, per data centre.

Endpoint: GET {base}/v1/vms/machine-types-2 (the `ListVMMachineTypes2` call of Cudo's REST API).
Auth: `Authorization: Bearer <key>`. The listing also answers without a key (gpuhunt and SkyPilot call
it anonymously); the key is sent anyway, as for every other Cudo call.
Pagination: none; one response `{"machineTypes": [...]}` holds every (data centre, machine type,
GPU model) row.

Units, per row:
- `gpuPriceHr`, `vcpuPriceHr`, `memoryGibPriceHr`: USD per hour for ONE GPU / ONE vCPU / ONE GiB of
  RAM, each as a `{"value": "<decimal string>"}` object (google.type.Decimal);
- `minVcpuPerGpu`: vCPUs a VM must have per GPU; `maxVcpuPerMemoryGib`: at most this many vCPUs per
  GiB of RAM (so RAM >= vCPUs / maxVcpuPerMemoryGib);
- `maxGpuFree`: GPUs free on the emptiest single host; `totalGpuFree`: GPUs free in the data centre.

Inferred: Cudo VMs are built to order, so a "price" needs a shape. An offer here is the smallest VM
the row allows with ONE GPU: ceil(minVcpuPerGpu) vCPUs (at least 1) and the least RAM those vCPUs
need, ceil(vCPUs / maxVcpuPerMemoryGib) GiB. `price_per_hour` = GPU + those vCPUs + that RAM; boot
disk (`minStorageGibPriceHr`) and IPv4 (`ipv4PriceHr`) are billed on top and left out, as other
vendors' GPU prices leave them out. The listing carries no GPU memory: it comes from `_GPUS` below
(Cudo's advertised size per GPU model), or from the registry when the model has a single size
(marked inferred); a model sold in several sizes and not in `_GPUS` is dropped with that reason.
Availability: AVAILABLE when a host can still place one GPU (`maxGpuFree` >= 1), else UNAVAILABLE;
`available_count` is `totalGpuFree`.
Rows without a GPU (`gpuModelId` empty: CPU-only machine types) are skipped. Known limit: prices for
other shapes (more GPUs, more vCPUs/RAM) are linear in the same per-unit prices and not listed.

Shapes accepted besides the one above (each row parsed on its own):
- the older `machine-types` rows: `minVcpu` / `minMemoryGib` (the smallest VM, vCPUs and GiB) where
  `minVcpuPerGpu` / `maxVcpuPerMemoryGib` are not sent, and `gpuMemoryGib` (GB per GPU as Cudo states
  it, preferred to `_GPUS`);
- the Python SDK's `to_dict()`: `{"machine_types": [...]}` with snake_case keys (`data_center_id`,
  `gpu_price_hr`, ...), read as their camelCase twins;
- a price sent as a bare decimal string instead of `{"value": ...}`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip

MACHINE_TYPES = "/v1/vms/machine-types-2"

# Cudo `gpuModel` -> (name the registry resolves, GB per GPU as Cudo advertises it).
_GPUS: dict[str, tuple[str, float]] = {
    "H100 SXM": ("H100 SXM", 80),
    "H100 PCIe": ("H100 PCIe", 80),
    "H100 NVL": ("H100 NVL", 94),
    "A100 80GB PCIe": ("A100 PCIe", 80),
    "A100 40GB PCIe": ("A100 PCIe", 40),
    "L40S (compute mode)": ("L40S", 48),
    "A40 (compute mode)": ("A40", 48),
    "RTX A6000": ("RTX A6000", 48),
    "RTX A5000": ("RTX A5000", 24),
    "RTX A4000": ("RTX A4000", 16),
    "RTX 3080": ("RTX 3080", 10),
    "V100": ("V100", 16),
}

# Cudo data-centre id -> ISO country. Ids start with the country code; the table is the source.
_COUNTRY: dict[str, str] = {
    "gb-bournemouth-1": "GB",
    "gb-london-1": "GB",
    "no-luster-1": "NO",
    "se-smedjebacken-1": "SE",
    "se-stockholm-1": "SE",
    "us-santaclara-1": "US",
    "us-newyork-1": "US",
    "us-carlsbad-1": "US",
    "ca-montreal-1": "CA",
    "ca-montreal-3": "CA",
    "br-saopaulo-1": "BR",
}


def _usd(price: Any) -> Decimal:
    """A `{"value": "0.0025"}` price (or the bare "0.0025"); anything but a decimal is malformed (ValueError)."""
    value = price["value"] if isinstance(price, dict) else price
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not a decimal price: {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"not a decimal price: {value!r}") from None


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    """The SDK's snake_case row as the REST API's camelCase one ("data_center_id" -> "dataCenterId")."""
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key): value for key, value in row.items()}


class CudoHook(VendorHook):
    vendor = VENDORS["cudo"]
    variants = (
        Variant("older-machine-types", "machine-types-2.json", "the older `machine-types` rows: `minVcpu`, "
                "`minMemoryGib`, `gpuMemoryGib`, `minGpuPerVm`; no per-GPU ratios, no free counts"),
        Variant("sdk-dict", "machine-types-2.json", "the Python SDK's `to_dict()`: `machine_types`, snake_case "
                "keys"),
    )

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", MACHINE_TYPES)

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            rows = (page.get("machineTypes") or page.get("machine_types")) if isinstance(page, dict) else None
            self.expect(isinstance(rows, list), 'expected {"machineTypes": [...]}')
            yield from (_camel(row) if isinstance(row, dict) and "data_center_id" in row else row for row in rows)

    def item_offers(self, row: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if not row.get("gpuModelId", row["gpuModel"]):
            skip("CPU-only machine type")
        if found := self._gpu(row["gpuModel"], batch):
            match, memory = found
            yield self._offer(row, match, row.get("gpuMemoryGib") or memory, observed_at)

    @staticmethod
    def _gpu(cudo_name: str, batch: Batch) -> tuple[gpus.GpuMatch, float | None] | None:
        """Registry match and Cudo's advertised memory (None: the registry's, where it has one size)."""
        name, memory = _GPUS.get(cudo_name, (cudo_name, None))
        match = batch.gpu(name)
        return (match, memory) if match else None

    def _offer(self, row: dict[str, Any], match: gpus.GpuMatch, memory: float | None, observed_at: datetime) -> Offer:
        vcpus, ram_gib = _smallest_vm(row)
        price = _usd(row["gpuPriceHr"]) + vcpus * _usd(row["vcpuPriceHr"]) + ram_gib * _usd(row["memoryGibPriceHr"])
        data_centre = row["dataCenterId"]
        free = row.get("maxGpuFree", row.get("totalGpuFree"))  # neither: the older listing, stock unknown
        return self.offer(
            match,
            observed_at,
            region=data_centre,
            country=_COUNTRY.get(data_centre, data_centre.split("-", 1)[0]),
            offer_id=f"{data_centre}:{row['machineType']}:{row.get('gpuModelId') or row['gpuModel']}",
            instance_type=f"{row['machineType']} 1x {row['gpuModel']}",
            gpu_count=1,
            gpu_memory_gb=memory,
            vcpus=vcpus,
            ram_gb=ram_gib,
            price_per_hour=price,
            availability=Availability.UNKNOWN if free is None else Availability.AVAILABLE if free >= 1
            else Availability.UNAVAILABLE,
            available_count=int(row["totalGpuFree"]) if "totalGpuFree" in row else None,
        )


def _smallest_vm(row: dict[str, Any]) -> tuple[int, int]:
    """(vCPUs, GiB of RAM) of the smallest one-GPU VM the row allows."""
    vcpus = max(1, math.ceil(row["minVcpuPerGpu"] if "minVcpuPerGpu" in row else row["minVcpu"]))
    if "maxVcpuPerMemoryGib" in row:
        return vcpus, math.ceil(vcpus / row["maxVcpuPerMemoryGib"])
    return vcpus, math.ceil(row["minMemoryGib"])
