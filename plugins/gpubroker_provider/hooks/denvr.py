"""Denvr Dataworks (Denvr Cloud): GPU prices read from the JSON embedded in the public price page.

Page: GET https://www.denvr.com/pricing (Wix, no key). Wix renders the page's price table from a
Wix Data collection and embeds that collection in the page as JSON: `<script type="application/json"
id="wix-warmup-data">`, records at `appsWarmupData.dataBinding.dataStore.recordsByCollectionId.
GPUInstances` (an object of records keyed by record id; becloudready/gpu-price's Denvr source reads
the same path and fields). One record per instance size:
`title` ("NVIDIA H100 SXM 80GB"), `gpuCount` (8), `gpuVram` ("80 GB", per GPU), `vCpUs` ("208"),
`memory` ("1024 GB", host RAM), `localStorage` ("8x 3.84TB NVMe"), `price` ("$2.10 / GPU").

Units: `price` is USD per GPU per hour, as its "/ GPU" says (a price in another unit is dropped
with that reason, never taken for a per-GPU price): an offer's `price_per_hour` = price x gpuCount.
`localStorage` "<n>x <size>TB" is n drives: disk_gb = n x size x 1000. Memory in GB as shown.
One offer per record; offer_id "<record id>" (Wix's stable `_id`), instance type the title and size.

Not on the page: where the instances run (Denvr publishes no data-centre list on the page or in
the embedded records; region "unknown"), capacity (availability "unknown"), interconnect, reserved
prices. A record whose GPU the registry does not know is counted in `unknown_gpus`; one priced
"Contact Sales" is skipped (no public price).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import EmbeddedJson, PageHook, gb, usd

_DRIVES = re.compile(r"(\d+)\s*[x×]\s*(\d+(?:\.\d+)?)\s*TB", re.IGNORECASE)


class DenvrHook(PageHook):
    vendor = VENDORS["denvr"]
    page = "/pricing"
    rows_at = EmbeddedJson("script#wix-warmup-data",
                           "appsWarmupData.dataBinding.dataStore.recordsByCollectionId.GPUInstances")  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if "contact" in str(row["price"]).lower():
            skip("contact sales: no public price")
        gpus = _int(row["gpuCount"], "gpuCount")
        yield {
            "gpu": row["title"],
            "region": "unknown",
            "country": None,
            "offer_id": row["_id"],
            "instance_type": f"{row['title']} x{gpus}",
            "gpu_count": gpus,
            "gpu_memory_gb": gb(row["gpuVram"]),
            "vcpus": _int(row["vCpUs"], "vCpUs"),
            "ram_gb": gb(row["memory"]),
            "disk_gb": _disk_gb(row.get("localStorage")),
            "price_per_hour": _per_gpu(row["price"]) * gpus,  # per GPU -> the whole instance
        }


def _per_gpu(text: Any) -> Decimal:
    """USD per GPU-hour from "$2.10 / GPU"; ValueError for a price in any other unit."""
    if not isinstance(text, str) or not re.search(r"/\s*GPU\b", text, re.IGNORECASE):
        raise ValueError(f"price {text!r} is not per GPU")
    return usd(text)


def _int(value: Any, field: str) -> int:
    """A count the records give as a number or a numeric string ("208")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"field {field!r} is not a count")


def _disk_gb(text: Any) -> float | None:
    """Local NVMe in GB: "8x 3.84TB NVMe" -> 30720; None when the record gives none."""
    if not text:
        return None
    if not (found := _DRIVES.search(str(text))):
        return gb(str(text))
    return round(int(found[1]) * float(found[2]) * 1000, 1)
