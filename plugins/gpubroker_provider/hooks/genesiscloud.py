"""Genesis Cloud: on-demand GPU prices read from the public price page.

Page: GET https://www.genesiscloud.com/pricing (Webflow, server-rendered; no key). Genesis Cloud's
REST API (https://api.genesiscloud.com/compute/v1/..., Bearer key) creates and lists the caller's
instances and reports availability, but has no instance-type or price listing: its documentation
lists the instance types and refers to the pricing page for their cost. Each GPU is a card
`div.pricing-two-price-item`: its name (`.pricing-two-price-title`, e.g. "NVIDIA HGX<sup>TM</sup>
H100"), price (`.pricing-two-price-text`: "$2.19/h", or "RFQ") and description
(`p.pricing-two-price-content`: "8x NVIDIA H100 GPU 80 GB", data-centre locations). The card classes
are the ones public Genesis Cloud scrapers on GitHub read.

Units: the price is USD per hour for ONE GPU, on-demand (vCPUs, RAM, boot disk and local NVMe
included); an instance type with n GPUs is billed n x that: `price_per_hour` = price x n
(vcpu-192_memory-1920g_nvidia-h100-sxm5-8 = 8 x $2.19 = $17.52). `gpu_memory_gb` is per GPU, GB, the
first size in the description. Memory and disks are GiB (API docs), converted to GB (x 1.073741824);
`disk_gb` = boot disk + local NVMe.

Not on the page, from the API documentation (INSTANCE_TYPES below): each card's instance types (id,
GPUs, vCPUs, memory, disks) and the regions that offer them (REGIONS: region -> country). One offer
per instance type and region; offer_id "<region>:<instance type>", e.g.
"NORD-NO-KRS-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8". A card whose name has no instance type
here is dropped with that reason (a new GPU on the page: add it from the API docs). The trademark
sign in a card name ("™", a superscript "TM") is not part of the GPU name; "HGX" names an SXM board.
Availability is "unknown" (the API's availability call needs a key). Skipped (counted): "RFQ" /
"Contact sales" cards (no public price). Long-term commitment prices are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, gb, usd

GIB_TO_GB = 1.073741824


class InstanceType(NamedTuple):
    name: str  # the API's instance type, e.g. "vcpu-192_memory-1920g_nvidia-h100-sxm5-8"
    gpus: int
    vcpus: int
    memory_gib: int
    disk_gib: int  # boot disk + local NVMe
    regions: tuple[str, ...]


# Genesis Cloud region -> ISO country (API docs: regions)
REGIONS = {"NORD-NO-KRS-1": "NO", "ARC-IS-HAF-1": "IS"}
_BOTH = ("NORD-NO-KRS-1", "ARC-IS-HAF-1")
# card name -> its instance types, from the API documentation (instance types, regions)
INSTANCE_TYPES = {
    "NVIDIA HGX B300": (InstanceType("vcpu-240_memory-2880g_nvidia-b300-sxm6-8", 8, 240, 2880, 200 + 30720, ("NORD-NO-KRS-1",)),),
    "NVIDIA HGX B200": (InstanceType("vcpu-240_memory-2880g_nvidia-b200-sxm6-8", 8, 240, 2880, 200 + 30720, ("NORD-NO-KRS-1",)),),
    "NVIDIA HGX H200": (InstanceType("vcpu-192_memory-2048g_nvidia-h200-sxm5-8", 8, 192, 2048, 200 + 28600, _BOTH),),
    "NVIDIA HGX H100": (InstanceType("vcpu-192_memory-1920g_nvidia-h100-sxm5-8", 8, 192, 1920, 200 + 28600, _BOTH),),
    "NVIDIA GB200 NVL72": (InstanceType("vcpu-224_memory-1920g_nvidia-gb200-8", 8, 224, 1920, 200 + 30720, ("NORD-NO-KRS-1",)),),
    "NVIDIA GeForce RTX 3090": (InstanceType("vcpu-4_memory-24g_nvidia-rtx-3090-1", 1, 4, 24, 80, ("ARC-IS-HAF-1",)),
                                InstanceType("vcpu-32_memory-192g_nvidia-rtx-3090-8", 8, 32, 192, 80, ("ARC-IS-HAF-1",))),
}  # fmt: skip
_TRADEMARK = re.compile(r"\s*(?:™|\bTM\b)")


class GenesisCloudHook(PageHook):
    vendor = VENDORS["genesiscloud"]
    page = "/pricing"
    rows_at = Cards("div.pricing-two-price-item",
                    {"gpu": ".pricing-two-price-title", "price": ".pricing-two-price-text",
                     "specs": "p.pricing-two-price-content"})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if re.search(r"\bRFQ\b|contact", row["price"] or "", re.IGNORECASE):
            skip("contact sales: no public price")
        gpu = _TRADEMARK.sub("", row["gpu"])  # "NVIDIA HGX TM H100" -> "NVIDIA HGX H100"
        if (types := INSTANCE_TYPES.get(gpu)) is None:
            raise ValueError(f"no instance type known for {gpu!r} (add it from Genesis Cloud's API docs)")
        per_gpu, memory = usd(row["price"]), gb(row["specs"])
        for kind in types:
            for region in kind.regions:
                yield {
                    "gpu": gpu,
                    "region": region,
                    "country": REGIONS[region],
                    "offer_id": f"{region}:{kind.name}",
                    "instance_type": kind.name,
                    "gpu_count": kind.gpus,
                    "gpu_memory_gb": memory,
                    "vcpus": kind.vcpus,
                    "ram_gb": round(kind.memory_gib * GIB_TO_GB, 1),  # GiB -> GB
                    "disk_gb": round(kind.disk_gib * GIB_TO_GB, 1),
                    "price_per_hour": per_gpu * kind.gpus,  # per GPU -> whole instance
                }
