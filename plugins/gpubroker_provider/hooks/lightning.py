"""Lightning AI: GPU machine prices of every cloud Lightning sells, from its public accelerator catalogue.

Endpoint: GET https://lightning.ai/v1/core/accelerators?cloudProvider=<CLOUD>, once per cloud in
CLOUDS (the catalogue lightning.ai/pricing is rendered from; no key: Lightning's own
lightning-cost-estimation skill documents it as public). CLOUDS are the clouds that skill has
checked and names a cluster for (an unknown `cloudProvider` silently answers AWS's catalogue, and
LIGHTNING/DGX answer placeholders: never read); Vultr, which it lists without a cluster, is not
read. No pagination: one answer per cloud, `{"accelerator": [...]}`. The answer does not name its
cloud, so each page is kept as {"cloud": <CLOUD>, "response": <the answer>}.

Fields used, per machine (the skill's field table):
- `cost`: on-demand USD per hour for the WHOLE machine (all `resources.gpu` GPUs), not per GPU;
- `spotPrice`: interruptible USD per hour for the machine; 0 means the cloud sells no spot. Spot is
  not always cheaper on Lightning (GCP and AWS have shown spot above on-demand): a spot price at or
  above `cost` is no interruptible discount and is left out;
- `acceleratorType` "GPU" / "CPU" / "TPU" (CPU and TPU machines skipped); `enabled` (disabled ones
  skipped); `dwsOnly` (GCP Dynamic Workload Scheduler: queued allocation with no on-demand price,
  skipped);
- `resources.gpu` (GPUs), `resources.cpu` (vCPUs), `resources.memoryMb` (MiB, an int64 sent as a
  string -> GB x 1.048576 / 1000; a value above MAX_RAM_GB, which the skill reports AWS sending for
  one SKU, is not trusted: left empty), `resources.storageGb` (GB);
- `resources.gpuType` ("nvidia-h100-80gb", "nvidia-b200"): the GPU for the registry and, where it
  carries "<n>gb", its per-GPU memory; else VRAM_GB by `family` (the skill's VRAM table);
- `outOfCapacity`: "unavailable" when true, else "available" (a flag left out is false, as in
  proto3 JSON);
- `instanceId` (the cloud's own machine name, "p5.48xlarge") is the instance type; offer_id
  "<CLOUD>/<instanceId>"; `clusterId` (the cloud account, "lightning-baremetal") is the region.
Prices are global (the skill: "Pricing is global"); the catalogue names no data centre, so offers
have no country. `cloud` names the cloud behind an offer bought through Lightning (None for
Lightning's own bare metal, MACHINE). Not read: AWS capacity blocks (`capacityBlockPrice`, reserved
for days, not months: no `commitment_months` fits), Drive storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Availability, Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

# cloudProvider value -> the cloud behind the offer, as our provider slug (None: Lightning's own)
CLOUDS = {"MACHINE": None, "AWS": "aws", "GCP": "gcp", "LAMBDA_LABS": "lambda", "NEBIUS": "nebius",
          "VOLTAGE_PARK": "voltagepark"}  # fmt: skip
VRAM_GB = {"T4": 16, "L4": 24, "L40S": 48, "A40": 48, "H100": 80, "H200": 141, "B200": 180, "RTXP": 96}
MIB_TO_GB = 1.048576 / 1000
MAX_RAM_GB = 32_000  # no machine has more host RAM; above it the catalogue value is wrong
_VRAM = re.compile(r"-(\d+)gb\b", re.IGNORECASE)


class LightningHook(VendorHook):
    vendor = VENDORS["lightning"]
    primary_only = False  # one call per cloud, each page tagged with its cloud

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for cloud in CLOUDS:
            yield {"cloud": cloud, "response": self.request(client, "GET", "/v1/core/accelerators",
                                                            params={"cloudProvider": cloud})}  # fmt: skip

    def items(self, pages: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(cloud, machine) for every machine of every cloud's catalogue."""
        for page in pages:
            self.expect(isinstance(page, dict) and page.get("cloud") in CLOUDS, "expected a page of a known cloud")
            machines = page["response"].get("accelerator") if isinstance(page["response"], dict) else None
            self.expect(isinstance(machines, list), 'expected {"accelerator": [...]}')
            yield from ((page["cloud"], machine) for machine in machines)

    def item_offers(self, item: tuple[str, dict[str, Any]], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        cloud, machine = item
        kind = machine["acceleratorType"]
        if kind != "GPU":
            skip(f"{kind} machine")
        if not machine.get("enabled"):
            skip("machine not enabled")
        if machine.get("dwsOnly"):
            skip("GCP Dynamic Workload Scheduler only: no on-demand price")
        resources = machine["resources"]
        gpu_type = text(resources, "gpuType")
        if (match := batch.gpu(gpu_type)) is None:
            return
        cost = number(machine, "cost")
        spot = number(machine, "spotPrice") if "spotPrice" in machine else 0  # proto3 JSON may omit a 0
        yield self.offer(
            match,
            observed_at,
            region=text(machine, "clusterId"),
            country=None,
            offer_id=f"{cloud}/{text(machine, 'instanceId')}",
            instance_type=machine["instanceId"],
            gpu_count=int(number(resources, "gpu")),
            gpu_memory_gb=_vram(gpu_type, machine["family"]),
            vcpus=int(number(resources, "cpu")),
            ram_gb=_ram_gb(resources["memoryMb"]),
            disk_gb=resources.get("storageGb") or None,
            price_per_hour=cost,  # the whole machine
            spot_price=spot if 0 < spot < cost else None,
            availability=Availability.UNAVAILABLE if machine.get("outOfCapacity") else Availability.AVAILABLE,
            cloud=CLOUDS[cloud],
        )


def _vram(gpu_type: str, family: str) -> float | None:
    """Per-GPU GB: "nvidia-h100-80gb" -> 80; else the family's (None: the registry's, where it can tell)."""
    if found := _VRAM.search(gpu_type):
        return float(found[1])
    return VRAM_GB.get(family)


def _ram_gb(mib: Any) -> float | None:
    """Host RAM in GB from `memoryMb` (MiB, a number or a numeric string); None past MAX_RAM_GB."""
    gb = round(int(mib) * MIB_TO_GB, 1)
    return gb if gb <= MAX_RAM_GB else None
