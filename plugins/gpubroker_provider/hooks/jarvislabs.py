"""JarvisLabs: on-demand GPU prices read from the public price page.

Page: GET https://jarvislabs.ai/pricing (server-rendered: the table is in the page as served; no
key). JarvisLabs' price API (`GET /misc/server_meta` on its region backends, read by its `jl` CLI
and SDK and by dstackai/gpuhunt) needs an account's Bearer key, so the page is the public source.
The on-demand prices are a plain HTML table (`#gpu-pricing table`), one row per GPU type, columns
"GPU" ("H100 SXM", "A100 40GB"), "Generation", "VRAM", "vCPUs", "RAM" and "Price ($/hr)" ("$2.69").
thatkavish/OpenComputePrices' JarvisLabs collector reads the same plain `<table>`s, finding the
columns by these header words; the markup around the table is written from the page's visible table
(the container id to be checked live).

Units: the price is USD per hour for ONE GPU, on-demand (billed per minute). An instance takes 1-8
GPUs of one type, so an offer's `price_per_hour` = per-GPU price x GPU count. "vCPUs" and "RAM" (GB)
are the page's per-GPU allocation: an n-GPU instance gets n times that (the page shows one GPU's
allocation and "scale to 8 GPUs per instance"). "VRAM" is per GPU, GB.

Not on the page, from JarvisLabs' launch form and its CLI's region list (GPU_TYPES below): the GPU
counts each type is offered in and the regions that offer it (REGIONS: IN1 India, EU1 Europe,
Finland). One offer per GPU type, GPU count and region; offer_id "<n>x <GPU as JarvisLabs names
it>@<region>", e.g. "8x H100 SXM@EU1", "1x A100 40GB@IN1" (an "NVIDIA " prefix, if the page adds
one, is not part of it). A row whose GPU type has no entry here is dropped with that reason (a new
GPU on the page: add it). Availability is "unknown". Spot (up to 56% off, filled in by script) and
commitment prices, and storage ($0.10/GB-month), are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.page import PageHook, Table, gb, usd


class GpuType(NamedTuple):
    gpu_counts: tuple[int, ...]
    regions: tuple[str, ...]


# JarvisLabs region -> ISO country (CLI: region codes; EU1 is in Finland)
REGIONS = {"IN1": "IN", "EU1": "FI"}
_ANY_SIZE = (1, 2, 4, 8)
# page GPU name -> its GPU counts and regions (launch form, region list)
GPU_TYPES = {
    "H200 SXM": GpuType((1, 8), ("EU1",)),
    "H100 SXM": GpuType((1, 8), ("IN1", "EU1")),
    "RTX Pro 6000 Blackwell": GpuType(_ANY_SIZE, ("IN1",)),
    "A100 80GB": GpuType(_ANY_SIZE, ("IN1",)),
    "A100 40GB": GpuType(_ANY_SIZE, ("IN1",)),
    "A30": GpuType(_ANY_SIZE, ("IN1",)),
    "L4": GpuType(_ANY_SIZE, ("IN1",)),
}
_VENDOR_PREFIX = re.compile(r"^(NVIDIA|AMD)\s+", re.IGNORECASE)


class JarvisLabsHook(PageHook):
    vendor = VENDORS["jarvislabs"]
    page = "/pricing"
    rows_at = Table("#gpu-pricing table", columns=("GPU", "VRAM", "vCPUs", "RAM", "Price ($/hr)"))

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        name = _VENDOR_PREFIX.sub("", row["GPU"])  # "H100 SXM", "A100 80GB": unique per row
        if (kind := GPU_TYPES.get(name)) is None:
            raise ValueError(f"no GPU counts or regions known for {name!r} (add them from JarvisLabs' launch form)")
        per_gpu, vcpus, ram = usd(row["Price ($/hr)"]), int(row["vCPUs"]), gb(row["RAM"])
        for region in kind.regions:
            for n in kind.gpu_counts:
                yield {
                    "gpu": name,
                    "region": region,
                    "country": REGIONS[region],
                    "offer_id": f"{n}x {name}@{region}",
                    "instance_type": f"{n}x {name}",
                    "gpu_count": n,
                    "gpu_memory_gb": gb(row["VRAM"]),
                    "vcpus": vcpus * n,
                    "ram_gb": ram * n,
                    "price_per_hour": per_gpu * n,  # per GPU -> whole instance
                }
