"""CoreWeave: on-demand instance prices read from the public price page.

Page: GET https://www.coreweave.com/pricing (Webflow, server-rendered; no key). CoreWeave has no public
price API. Each GPU instance is a Webflow collection item `div.table-row-v2.kubernetes-gpu-pricing`
(the CPU rows are `kubernetes-cpu-pricing`) holding one `div.table-grid` of cells, in this order: the
name (`h3.table-model-name`, e.g. "NVIDIA HGX H100"), GPU count ("8"; "4<sup>1</sup>" with a footnote
for GB200 NVL72), VRAM per GPU (GB), vCPUs, system RAM (GB), local storage (TB) and the instance price
("$49.24", or "Contact Sales"). The row class and the cell order are the ones
thatkavish/OpenComputePrices' and becloudready/gpu-price's CoreWeave scrapers read.

Units: the price is USD per hour for the WHOLE instance (CoreWeave sells nodes: 8 GPUs for HGX
B200/H200/H100/A100 and the L40S, L40 and RTX PRO 6000 nodes, 4 for a GB200 NVL72 instance, 1 for
GH200), so it is the offer's `price_per_hour` as shown (HGX H100: $49.24/h for 8 GPUs, $6.155 per
GPU-hour). VRAM is per GPU in GB; RAM is the node's in GB ("2,048"); a "—" vCPU/RAM cell is None.
Local storage is not read.

Not on the page, from CoreWeave's docs (INSTANCES below): each row's instance type id, e.g.
"gd-8xh100ib-i128". The page prices North America, where every general-access zone is in the US:
one offer per instance type, region "US (North America general access)", offer_id
"<instance id>@US". A row whose name has no instance id here is dropped with that reason (a new GPU
on the page: add its id from the docs). The EU-SOUTH (Spain) zones have no published price.
Availability is "unknown" (the page says nothing of capacity). "HGX" names an SXM board (form factor
SXM); "NVL72" names the rack. Skipped (counted): "Contact Sales" rows (no public price). Spot prices
and reserved discounts are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, usd

REGION, COUNTRY = "US (North America general access)", "US"
# page name -> CoreWeave instance type id (docs: instance types)
INSTANCES = {
    "NVIDIA GB200 NVL72": "gb200-4x",
    "NVIDIA HGX B300": "b300-8x",
    "NVIDIA HGX B200": "b200-8x",
    "NVIDIA HGX H200": "gd-8xh200ib-i128",
    "NVIDIA HGX H100": "gd-8xh100ib-i128",
    "NVIDIA HGX A100": "gd-8xa100-i128",
    "NVIDIA L40S": "gd-8xl40s-i128",
    "NVIDIA L40": "gd-8xl40-i128",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": "rtxp6000-8x",
    "NVIDIA GH200": "gd-1xgh200",
}
_CELL = "div.table-grid > div.table-v2-cell:nth-child({})"
_FIGURE = re.compile(r"\s*(\d[\d,]*(?:\.\d+)?)")
_NONE = {"", "-", "—", "N/A"}


class CoreWeaveHook(PageHook):
    vendor = VENDORS["coreweave"]
    page = "/pricing"
    rows_at = Cards("div.table-row-v2.kubernetes-gpu-pricing",
                    {"name": "h3.table-model-name", "gpus": _CELL.format(2), "vram": _CELL.format(3),
                     "vcpus": _CELL.format(4), "ram": _CELL.format(5), "price": _CELL.format(7)})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if "contact" in (row["price"] or "").lower():
            skip("contact sales: no public price")
        if (instance := INSTANCES.get(row["name"])) is None:
            raise ValueError(f"no instance id known for {row['name']!r} (add it from CoreWeave's docs)")
        vcpus, ram = _optional(row["vcpus"], "vCPU count"), _optional(row["ram"], "RAM")
        yield {
            "gpu": row["name"],  # "NVIDIA HGX H100" -> H100, SXM
            "region": REGION,
            "country": COUNTRY,
            "offer_id": f"{instance}@{COUNTRY}",
            "instance_type": instance,
            "gpu_count": int(_figure(row["gpus"], "GPU count")),
            "gpu_memory_gb": _figure(row["vram"], "VRAM"),
            "vcpus": None if vcpus is None else int(vcpus),
            "ram_gb": ram,
            "price_per_hour": usd(row["price"]),  # the whole instance, as shown
        }


def _figure(text: str | None, what: str) -> float:
    """The leading number of a cell: "2,048" -> 2048; "4 1" (a count and its footnote mark) -> 4."""
    if not isinstance(text, str) or not (found := _FIGURE.match(text)):
        raise ValueError(f"no {what} in {text!r}")
    return float(found[1].replace(",", ""))


def _optional(text: str | None, what: str) -> float | None:
    """A figure the page may leave out ("—"): None then."""
    return None if text is None or text.strip() in _NONE else _figure(text, what)
