"""Thunder Compute: GPU instance configurations and their hourly prices, from Thunder's own API.

Endpoints: GET {base}/v1/specs and GET {base}/v1/pricing (base https://api.thundercompute.com:8443,
as Thunder's `tnr` CLI calls them: Thunder-Compute/thunder-cli api/client.go, which calls /v1/pricing
"the public pricing data"). No key is needed; a token, where the connection has one, travels as
`Authorization: Bearer <token>` (the API's scheme). No pagination: one answer each.

- /v1/specs: `{"specs": {<config>: {displayName, vramGB, gpuCount, mode, vcpuOptions, ramPerVCPUGiB,
  storageGB: {min, max}, ephemeralStorageGB: {min, max}}}}`, one entry per configuration, keyed
  "<gpu>_x<count>_<mode>" ("h100_x2_production"); `mode` is "prototyping" (GPUs attached over the
  network and time-sliced between users; `tnr` warns long-running processes may be interrupted) or
  "production" (dedicated).
- /v1/pricing: `{"pricing": {<config>: USD per hour, ..., "additional_vcpus": USD per vCPU-hour,
  "disk_gb": USD per GB-hour, ...}}`: a configuration's price is for the WHOLE instance (all its
  GPUs: "h100_x2_prototyping" is twice "h100_x1_prototyping") with its included vCPUs, RAM and disk.

The pricing model (tnr's CalculateHourlyPrice): the configuration price includes the smallest vCPU
option (`vcpuOptions[0]`) with `ramPerVCPUGiB` GiB of RAM each and 100 GB of disk; more vCPUs cost
`additional_vcpus` each, more disk `disk_gb` per GB. So each configuration is one offer at its
configuration price: `vcpus` = vcpuOptions[0], `ram_gb` = vcpus x ramPerVCPUGiB GiB -> GB
(x 1.073741824), `disk_gb` = storageGB.min; `gpu_memory_gb` = vramGB (per GPU, GB). offer_id and
instance type are the configuration key. Both modes are on-demand prices (prototyping is a cheaper
product tier, not an interruptible price of the production one); the GPU is named by `displayName`
("NVIDIA A100 (80GB)", "NVIDIA H100", "RTX A6000").

Not in the answers: where the instances run (the API has no region or zone and Thunder publishes no
data-centre list: region "unknown", country empty), interconnect (prototyping GPUs are reached over
TCP, none of the fabrics we record), capacity (availability "unknown"). A configuration with no price
in /v1/pricing is dropped with that reason; one with no GPU (`gpuCount` 0) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

LISTINGS = ("/v1/specs", "/v1/pricing")
GIB_TO_GB = 1.073741824
MODES = ("prototyping", "production")


class ThunderComputeHook(VendorHook):
    vendor = VENDORS["thundercompute"]
    primary_only = False  # prices in /v1/pricing, configurations in /v1/specs

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for path in LISTINGS:
            yield self.request(client, "GET", path)

    def items(self, pages: list[Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(configuration key, the price list, its spec) for every configuration in /v1/specs."""
        self.expect(len(pages) == 2, "expected the answers of /v1/specs and /v1/pricing")
        specs, prices = (page.get(key) if isinstance(page, dict) else None
                         for page, key in zip(pages, ("specs", "pricing")))  # fmt: skip
        self.expect(isinstance(specs, dict) and specs, 'expected {"specs": {<config>: {...}}}')
        self.expect(isinstance(prices, dict) and prices, 'expected {"pricing": {<config>: <USD per hour>}}')
        for key, spec in specs.items():
            yield key, prices, spec

    def item_offers(self, item: tuple[str, dict[str, Any], dict[str, Any]], observed_at: datetime,
                    batch: Batch) -> Iterator[Offer]:  # fmt: skip
        key, prices, spec = item
        if spec["gpuCount"] == 0:
            skip("CPU-only configuration")
        if spec["mode"] not in MODES:
            raise ValueError(f"unknown mode {spec['mode']!r}")
        if key not in prices:
            raise ValueError(f"no price for {key!r} in /v1/pricing")
        if (match := batch.gpu(text(spec, "displayName"))) is None:
            return
        vcpus = int(spec["vcpuOptions"][0])  # the included vCPUs
        yield self.offer(
            match,
            observed_at,
            region="unknown",
            country=None,
            offer_id=key,
            instance_type=key,
            gpu_count=int(number(spec, "gpuCount")),
            gpu_memory_gb=number(spec, "vramGB"),
            vcpus=vcpus,
            ram_gb=round(vcpus * number(spec, "ramPerVCPUGiB") * GIB_TO_GB, 1),
            disk_gb=number(spec["storageGB"], "min"),
            price_per_hour=number(prices, key),  # the whole configuration, all its GPUs
        )
