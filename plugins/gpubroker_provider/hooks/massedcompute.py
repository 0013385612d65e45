"""Massed Compute: on-demand GPU virtual machine prices read from the public price page's table.

Page: GET https://massedcompute.com/pricing (no key). The on-demand virtual machines are one table,
`#virtual-machines table.pricing-table`, columns "GPU Type" (the GPU and its memory per GPU, "H100
SXM5 80 GB"; "[NVLink]" marks NVLink-bridged cards), "Quantity" ("x 2"), "VRAM" (the VM's total),
"vCPUs", "RAM", "Storage", "Price" ("$2.68/hr", or "Request" where there is no public price). The
column layout and the GPU spellings are the ones thatkavish/OpenComputePrices' Massed Compute
collector reads (it also stops at the "Bare Metal" section, not read here either).

Units: "Price" is USD per hour for the whole VM (all its GPUs); memory and disks in GB as shown
("1.5 TB" -> 1500). One offer per row; offer_id "<gpu type>-x<n>" in lower case with dashes
("rtx-a6000-nvlink-x2"), the instance type the GPU type and count as shown.
Interconnect: NVLink where the GPU type says "[NVLink]" (the marker is not part of the GPU name:
an RTX A6000 stays a PCIe card); else not stated. Massed Compute runs its own machines in the
United States: region "us", country US (the page names no data centre). Capacity is not published
(availability "unknown"). "Request" rows are skipped (no public price).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.schema import Interconnect
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import PageHook, Table, gb, usd

_NVLINK = re.compile(r"\s*\[NVLink\]", re.IGNORECASE)
_QUANTITY = re.compile(r"^\s*[x×]\s*(\d+)\s*$", re.IGNORECASE)
_SIZE = re.compile(r"\s*\d+(?:\.\d+)?\s*GB\b.*$", re.IGNORECASE)


class MassedComputeHook(PageHook):
    vendor = VENDORS["massedcompute"]
    page = "/pricing"
    rows_at = Table("#virtual-machines table.pricing-table",
                    columns=("GPU Type", "Quantity", "vCPUs", "RAM", "Storage", "Price"))  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if row["Price"].strip().lower() == "request":
            skip("contact sales: no public price")
        gpu_type = _SIZE.sub("", row["GPU Type"])  # "RTX A6000 [NVLink] 48 GB" -> "RTX A6000 [NVLink]"
        gpus = _quantity(row["Quantity"])
        yield {
            "gpu": _NVLINK.sub("", gpu_type),
            "region": "us",
            "country": "US",
            "offer_id": f"{re.sub(r'[^a-z0-9]+', '-', gpu_type.lower()).strip('-')}-x{gpus}",
            "instance_type": f"{gpu_type} x{gpus}",
            "gpu_count": gpus,
            "gpu_memory_gb": gb(row["GPU Type"]),
            "vcpus": int(row["vCPUs"]),
            "ram_gb": gb(row["RAM"]),
            "disk_gb": gb(row["Storage"]),
            "price_per_hour": usd(row["Price"]),  # the whole VM
            "interconnect": Interconnect.NVLINK if _NVLINK.search(gpu_type) else None,
        }


def _quantity(text: str) -> int:
    """GPUs per VM as the page writes them: "x 2" -> 2."""
    if not (found := _QUANTITY.match(text)):
        raise ValueError(f"no GPU quantity in {text!r}")
    return int(found[1])
