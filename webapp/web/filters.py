"""The offers page's filter form: one control per parameter of `GET /api/v1/offers`, parsed by the
API's own schema (`search.OfferQuery`), so the page and the API accept exactly the same things."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict
from pydantic import ValidationError

from gpubroker import gpus, regions, search
from gpubroker.schema import Availability, FormFactor, Interconnect, PricingType
from gpubroker.vendors import VENDORS

MULTIPLE = ("provider", "availability", "interconnect", "pricing_type")  # repeated parameters
SORTS = {
    "price": "Price, cheapest first", "-price": "Price, dearest first",
    "price_per_gpu": "Price per GPU, cheapest first", "-price_per_gpu": "Price per GPU, dearest first",
    "price_per_gb_vram": "Price per GB of GPU memory", "-gpu_memory": "GPU memory, largest first",
    "gpu_memory": "GPU memory, smallest first", "-last_seen": "Seen most recently", "last_seen": "Seen longest ago",
}  # fmt: skip
ANY = ("", "Any")
PRICING_LABELS = {PricingType.ON_DEMAND: "On demand", PricingType.SPOT: "Spot", PricingType.RESERVED: "Reserved"}
INTERCONNECT_LABELS = {Interconnect.NVLINK: "NVLink", Interconnect.INFINIBAND: "InfiniBand", Interconnect.ROCE: "RoCE",
                       Interconnect.INFINITY_FABRIC: "Infinity Fabric", Interconnect.PCIE: "PCIe"}  # fmt: skip


@dataclass(frozen=True)
class Control:
    """One labelled form control. kind: text, number, select, multi (select several), checks."""

    name: str
    label: str
    kind: str
    options: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    more: bool = False  # shown under "More filters"
    attrs: tuple[tuple[str, str], ...] = ()  # e.g. (("min", "1"), ("step", "0.01"))


def _number(minimum: str, step: str = "1", maximum: str = "") -> tuple[tuple[str, str], ...]:
    return tuple(a for a in (("min", minimum), ("step", step), ("max", maximum)) if a[1])


CONTROLS = (
    Control("gpu", "GPU model", "text", hint="any name: H100, RTX 4090, H100 SXM", attrs=(("list", "gpu-models"),)),
    Control("provider", "Providers", "multi", tuple((slug, VENDORS[slug].name) for slug in sorted(VENDORS)),
            hint="none selected: all; Ctrl or Shift to pick several"),
    Control("max_price_per_gpu", "Max USD per GPU-hour", "number", attrs=_number("0.01", "0.01")),
    Control("availability", "Availability", "checks", tuple((a.value, a.value.capitalize()) for a in Availability)),
    Control("pricing_type", "Pricing", "checks", tuple((p.value, PRICING_LABELS[p]) for p in PricingType)),
    Control("sort", "Sort by", "select", tuple(SORTS.items())),
    Control("gpu_vendor", "GPU vendor", "select", (ANY, *((v, v) for v in search.GPU_VENDORS)), more=True),
    Control("form_factor", "Form factor", "select", (ANY, *((f.value, f.value) for f in FormFactor)), more=True),
    Control("interconnect", "Interconnect", "checks", tuple((i.value, INTERCONNECT_LABELS[i]) for i in Interconnect),
            hint="none ticked: any, including offers that do not say", more=True),
    Control("max_commitment_months", "Max commitment (months)", "number", hint="reserved offers; 0: none",
            more=True, attrs=_number("0", maximum="120")),
    Control("min_gpu_count", "Min GPUs", "number", more=True, attrs=_number("1", maximum="16")),
    Control("max_gpu_count", "Max GPUs", "number", more=True, attrs=_number("1", maximum="16")),
    Control("min_gpu_memory_gb", "Min memory per GPU (GB)", "number", more=True, attrs=_number("0")),
    Control("max_price", "Max USD per hour (whole offer)", "number", more=True, attrs=_number("0.01", "0.01")),
    Control("min_vcpus", "Min vCPUs", "number", more=True, attrs=_number("0")),
    Control("min_ram_gb", "Min RAM (GB)", "number", more=True, attrs=_number("0")),
    Control("spot", "Spot price", "select", (ANY, ("true", "With a spot price"), ("false", "Without")), more=True),
    Control("region", "Region", "text", hint="the vendor's name for it, e.g. us-east-1", more=True),
    Control("country", "Country", "select", (ANY, *((c, c) for c in sorted(regions.CONTINENT_OF))), more=True),
    Control("continent", "Continent", "select", (ANY, *((c, c) for c in search.CONTINENTS)), more=True),
    Control("at", "Prices as at", "text", hint="ISO 8601 with a timezone, e.g. 2026-12-01T12:00:00Z", more=True),
    Control("per_page", "Rows per page", "select", tuple((n, n) for n in ("25", "50", "100", "200")), more=True),
)  # fmt: skip
GPU_NAMES = tuple(m.name for m in gpus.MODELS)
DEFAULTS = {"sort": search.Sort.PRICE.value, "per_page": "50"}  # what the form shows when not given


def values(params: QueryDict) -> dict[str, Any]:
    """The parameters as given (blank ones dropped: an empty form field means "any")."""
    out: dict[str, Any] = {}
    for name in params:
        if name in MULTIPLE:
            if picked := [v for v in params.getlist(name) if v]:
                out[name] = picked
        elif value := params.get(name, "").strip():
            out[name] = value
    return out


def more_open(given: dict[str, Any], errors: dict[str, str]) -> bool:
    """Whether "More filters" starts open: one of its controls is set or wrong."""
    return any(c.more and c.name not in DEFAULTS and (c.name in given or c.name in errors) for c in CONTROLS)


def page_query(given: dict[str, Any], step: int) -> str:
    """The query string of the page `step` away from the one given."""
    current = given.get("page", "1")
    return urlencode({**given, "page": max(1, (int(current) if current.isdigit() else 1) + step)}, doseq=True)


def parse(given: dict[str, Any]) -> tuple[search.OfferQuery | None, dict[str, str]]:
    """The query, or None and one message per bad parameter."""
    try:
        return search.OfferQuery.model_validate(given), {}
    except ValidationError as invalid:
        return None, {str(e["loc"][0]): e["msg"] for e in invalid.errors()}
