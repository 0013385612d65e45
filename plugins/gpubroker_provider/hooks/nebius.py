"""Nebius AI Cloud: on-demand GPU prices read from the public price page.

Page: GET https://nebius.com/prices (Next.js with Gravity UI's page-constructor, server-rendered; no
key). Nebius has no public price API. The GPU prices are a page-constructor highlight table
(`div.pc-highlight-table-block`): a head row and body rows `div.pc-highlight-table-block__row` of
cells `div.pc-highlight-table-block__cell` (text in a `<p>`), columns "Item" (e.g. "NVIDIA HGX
H100"), "vCPUs", "RAM, GB", "Preemptible, GPU-hour" and, last, "On-demand, GPU-hour" ("$4.50", "from
$1.55", or "Contact us"). becloudready/gpu-price's and gpu_index's Nebius scrapers read the same
classes and columns. The table is found by its headings (2nd "vCPUs", 3rd "RAM", last "On-demand"),
so a moved or added column is a changed page, never a preemptible price read as on-demand.

Units: the price is USD per hour for ONE GPU, on-demand; since 2025-10-01 Nebius bills a preset's GPU,
vCPUs and RAM as one item, so it covers the preset's vCPUs and RAM too. vCPUs and RAM are a GPU's
share: an n-GPU preset has n times that. An offer's `price_per_hour` = per-GPU price x the preset's
GPU count (8gpu-128vcpu-1600gb H100 = 8 x $4.50). "RAM, GB" is GiB (docs.nebius.com: the "200gb" of
a preset name is 200 GiB), converted to GB (x 1.073741824).

Not on the page, from docs.nebius.com (PLATFORMS below): each item's platform, its GPU memory (GB,
per GPU), the GPU counts of its presets and the regions that offer it (REGIONS: region -> country).
The preset name follows Nebius's naming from the page's shares: "<n>gpu-<n x vCPUs>vcpu-<n x RAM>gb".
One offer per preset and region; offer_id "<platform>/<preset>@<region>", e.g.
"gpu-h100-sxm/8gpu-128vcpu-1600gb@eu-north1". An item with no platform here is dropped with that
reason (a new GPU on the page: add it from the docs). L40S prices are "from" prices: only the smallest
preset, whose price that is, is an offer; an L40S item names its host CPU ("... with Intel Ice
Lake"), which is not part of the GPU name. Availability is "unknown" (the page says nothing of
capacity); "HGX" names an SXM board (form factor SXM).
Skipped (counted): "Contact us" rows (no public price). Preemptible prices, commitment discounts and
ILS prices (Israeli companies) are not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import skip
from gpubroker_provider.hooks.page import Cards, PageHook, usd

GIB_TO_GB = 1.073741824


class Platform(NamedTuple):
    name: str  # Nebius's platform, e.g. "gpu-h100-sxm"
    gpu_memory_gb: int  # per GPU
    gpu_counts: tuple[int, ...]  # GPUs of its presets
    regions: tuple[str, ...]


# Nebius region -> ISO country (docs: regions)
REGIONS = {"eu-north1": "FI", "eu-north2": "IS", "eu-west1": "FR", "us-central1": "US", "uk-south1": "GB"}
_H200_REGIONS = ("eu-north1", "eu-north2", "eu-west1", "us-central1")
# page item -> platform, from docs.nebius.com (Compute: platforms and presets, regions)
PLATFORMS = {
    "NVIDIA HGX B300": Platform("gpu-b300-sxm", 288, (8,), ("uk-south1",)),
    "NVIDIA HGX B200": Platform("gpu-b200-sxm", 180, (1, 8), ("us-central1",)),
    "NVIDIA HGX H200": Platform("gpu-h200-sxm", 141, (1, 8), _H200_REGIONS),
    "NVIDIA HGX H100": Platform("gpu-h100-sxm", 80, (1, 8), ("eu-north1",)),
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": Platform("gpu-rtx-pro-6000", 96, (1,), ("eu-north1",)),
    "NVIDIA L40S PCIe with Intel Ice Lake": Platform("gpu-l40s-a", 48, (1,), ("eu-north1",)),
    "NVIDIA L40S PCIe with AMD Genoa": Platform("gpu-l40s-d", 48, (1,), ("eu-north1",)),
}
_CELL = "div.pc-highlight-table-block__cell"
# the on-demand GPU table, found by its headings (`:lexbor-contains` is the parser's text match): a
# column moved, renamed or added after "On-demand" leaves no such table, i.e. a changed page
_HEADINGS = (("nth-child(2)", "vCPUs"), ("nth-child(3)", "RAM"), ("last-child", "On-demand"))
GPU_TABLE = "div.pc-highlight-table-block" + "".join(
    f':has(div.pc-highlight-table-block__head {_CELL}:{at} p:lexbor-contains("{heading}"))' for at, heading in _HEADINGS
)


class NebiusHook(PageHook):
    vendor = VENDORS["nebius"]
    page = "/prices"
    rows_at = Cards(f"{GPU_TABLE} div.pc-highlight-table-block__body div.pc-highlight-table-block__row",
                    {"item": f"{_CELL}:nth-child(1)", "vcpus": f"{_CELL}:nth-child(2)",
                     "ram": f"{_CELL}:nth-child(3)", "price": f"{_CELL}:last-child"})  # fmt: skip

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        if "contact" in (row["price"] or "").lower():
            skip("contact sales: no public price")
        if (platform := PLATFORMS.get(row["item"])) is None:
            raise ValueError(f"no platform known for {row['item']!r} (add it from Nebius's docs)")
        per_gpu, vcpus, ram_gib = usd(row["price"]), int(row["vcpus"]), int(row["ram"])
        for region in platform.regions:
            for n in platform.gpu_counts:
                preset = f"{n}gpu-{n * vcpus}vcpu-{n * ram_gib}gb"
                yield {
                    "gpu": row["item"].split(" with ")[0],  # "NVIDIA HGX H100" -> H100, SXM
                    "region": region,
                    "country": REGIONS[region],
                    "offer_id": f"{platform.name}/{preset}@{region}",
                    "instance_type": f"{platform.name} {preset}",
                    "gpu_count": n,
                    "gpu_memory_gb": platform.gpu_memory_gb,
                    "vcpus": n * vcpus,
                    "ram_gb": round(n * ram_gib * GIB_TO_GB, 1),  # GiB -> GB
                    "price_per_hour": per_gpu * n,  # per GPU -> whole VM
                }

