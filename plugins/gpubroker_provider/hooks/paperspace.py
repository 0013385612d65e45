"""Paperspace (DigitalOcean): hourly CORE machine prices read from the public price page.

Page: GET https://www.paperspace.com/pricing (no key). Paperspace has no public price API (its API
needs an account key and lists the caller's machines). The hourly machine prices are a table
(`#machines table`), one row per machine type, columns "Machine" (Paperspace's machine type, e.g.
"H100x8"), "GPU" ("NVIDIA H100 80GB"), "GPU memory" ("80 GB", per GPU), "vCPUs", "RAM" ("1638 GB")
and "Price/hr" ("$47.60/hr"). No peer scraper reads this page by its markup:
thatkavish/OpenComputePrices' collector calls it heavily script-rendered and pattern-matches GPU
names and prices in it. The markup is written from the page's visible machine table; selectors to be
checked live (should the table come only from script, DigitalOcean's static docs page
docs.digitalocean.com/products/paperspace/pricing/ publishes the same hourly prices as a table).

Units: "Price/hr" is USD per hour for the WHOLE machine (all its GPUs, vCPUs and RAM), the way
Paperspace prices machine types, so it is the offer's `price_per_hour` as shown. A machine type
"<type>x<n>" has n GPUs (Paperspace's naming: "A6000x4" is four A6000), else one. GPU memory is per
GPU, RAM the machine's, both GB as shown.

Not on the page, from DigitalOcean's Paperspace docs (availability, DATACENTERS below): the
datacenters of each machine type (NY2 and CA1 in the US, AMS1 in the Netherlands). One offer per
machine type and datacenter; offer_id "<machine type>@<datacenter>", e.g. "H100x8@NY2". A row whose
machine type has no datacenters here is dropped with that reason (a new machine type: add it from the
docs). Availability is "unknown". Storage and the monthly access fee of hourly machines are billed on
top and are not included; 36-month commitment prices (marked * / ** on the page) are not read.
A GPU the registry does not know (a Pascal-era Quadro P-series card) is counted as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.page import PageHook, Table, gb, usd

# Paperspace datacenter -> ISO country (docs: regions)
COUNTRIES = {"NY2": "US", "CA1": "US", "AMS1": "NL"}
_EAST_WEST = ("NY2", "CA1")
# machine type -> the datacenters that offer it (docs: machine availability)
DATACENTERS = {
    "H100": ("NY2",),
    "H100x8": ("NY2",),
    "A100-80G": ("NY2",),
    "A100-80Gx8": ("NY2",),
    "A100": ("NY2",),
    "A6000": _EAST_WEST,
    "A6000x4": _EAST_WEST,
    "A5000": _EAST_WEST,
    "A4000": ("NY2", "CA1", "AMS1"),
    "V100": ("NY2", "AMS1"),
    "V100-32G": ("NY2",),
    "RTX4000": ("NY2", "CA1", "AMS1"),
}
_GPUS = re.compile(r"x(\d+)$")


class PaperspaceHook(PageHook):
    vendor = VENDORS["paperspace"]
    page = "/pricing"
    rows_at = Table("#machines table", columns=("Machine", "GPU", "GPU memory", "vCPUs", "RAM", "Price/hr"))

    def expand(self, row: dict[str, Any], page: Any) -> Iterator[dict[str, Any]]:
        machine = row["Machine"]
        if (datacenters := DATACENTERS.get(machine)) is None:
            raise ValueError(f"no datacenters known for machine type {machine!r} (add it from Paperspace's docs)")
        gpus = int(found[1]) if (found := _GPUS.search(machine)) else 1
        for dc in datacenters:
            yield {
                "gpu": row["GPU"],
                "region": dc,
                "country": COUNTRIES[dc],
                "offer_id": f"{machine}@{dc}",
                "instance_type": machine,
                "gpu_count": gpus,
                "gpu_memory_gb": gb(row["GPU memory"]),
                "vcpus": int(row["vCPUs"]),
                "ram_gb": gb(row["RAM"]),
                "price_per_hour": usd(row["Price/hr"]),  # already the whole machine
            }
