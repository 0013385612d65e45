"""OVHcloud: Public Cloud GPU flavors from the public order catalogue.

Endpoint: GET {base}/1.0/order/catalog/public/cloud?ovhSubsidiary=<SUBSIDIARY>; public, no key.
The catalogue is one document (no pagination): `plans` (the Public Cloud project plan, whose
`addonFamilies[name=instance].addons` lists the instance plan codes), `addons` (one entry per plan
code: `invoiceName` is the flavor, `pricings`, `configurations`, `blobs`) and `locale`
(`currencyCode`, `subsidiary`).
SUBSIDIARY is "FR": eu.api.ovh.com (the vendor row's base URL) serves only European subsidiaries
(FR, DE, GB, IE, ...) and answers 400 "invalid ovhSubsidiary" for US; the FR catalogue lists every
Public Cloud region outside the US, priced in EUR.

Units of the fields used:
- `pricings[].price`: an integer in 10^-8 of the catalogue currency ("micro-cents": 279000000 =
  2.79), VAT excluded (`tax` is the VAT amount, unused). The hourly (on-demand) price is the pricing
  with `intervalUnit: "hour"` on the flavor's consumption plan (`<flavor>.consumption`); monthly
  plans (`intervalUnit: "month"`) are not prices per hour and are used only for their regions.
  It is the price of the whole instance (all its GPUs). EUR is converted at gpubroker.fx.EUR_USD (dated
  there); USD catalogues are used as they are; any other currency is rejected.
- `blobs.technical.gpu`: {model, number, memory: {size: GB PER GPU}}; `cpu.cores` vCPUs;
  `memory.size` GB; `storage.disks[]` {capacity GB, number}.
- regions: `configurations[name=region].values` (e.g. GRA11, BHS5, DE1, EU-WEST-PAR). The catalogue
  often leaves them empty on the hourly plan and lists them on the flavor's monthly plan: the
  regions of all the flavor's plans are then used. One offer per flavor per region (offer_id
  `<flavor>:<region>`); availability "unknown" (orderable regions, not stock).
Each addon is an item, read on its own: addons that are not instance plans (storage, network) and
flavors whose technical blob has no `gpu` (CPU instances) are skipped (counted); a plan that cannot
be read is dropped with its reason, and its flavor keeps its other plans. Each GPU flavor is then an
item too: one sold only monthly (no hourly plan) or orderable in no region is skipped with that reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import httpx

from gpubroker.fx import TO_USD  # one dated rate for every vendor
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook, skip, text
from gpubroker.vendors import VENDORS

PATH = "/1.0/order/catalog/public/cloud"
PRICE_UNITS = Decimal(100_000_000)  # catalogue prices are in 10^-8 currency units

# OVHcloud region code (without its number) -> ISO country.
COUNTRY = {
    "GRA": "FR", "SBG": "FR", "RBX": "FR", "PAR": "FR", "EU-WEST-PAR": "FR", "EU-WEST-LZ-PAR": "FR",
    "BHS": "CA", "TOR": "CA", "CA-EAST-TOR": "CA", "DE": "DE", "LIM": "DE", "UK": "GB", "ERI": "GB",
    "WAW": "PL", "EU-SOUTH-MIL": "IT", "SGP": "SG", "AP-SOUTHEAST-SGP": "SG", "SYD": "AU",
    "AP-SOUTHEAST-SYD": "AU", "MUM": "IN", "AP-SOUTH-MUM": "IN", "US-EAST-VA": "US", "US-WEST-OR": "US",
}


class FlavorPlan(NamedTuple):
    """One plan (addon) of a GPU flavor, read and checked on its own."""

    flavor: str  # invoiceName, e.g. "h100-380"
    hourly_usd: Decimal | None  # None for a monthly plan
    regions: tuple[str, ...]
    spec: dict[str, Any]  # the offer fields of the flavor's technical blob


class OvhHook(VendorHook):
    vendor = VENDORS["ovh"]
    subsidiary = "FR"

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", PATH, params={"ovhSubsidiary": self.subsidiary})

    def items(self, pages: list[Any]) -> Iterator[tuple[Decimal, frozenset[str], Any]]:
        """(USD per catalogue unit, the instance plan codes, addon) for every addon of every catalogue."""
        for catalog in pages:
            self.expect(
                isinstance(catalog, dict) and isinstance(catalog.get("addons"), list) and isinstance(catalog.get("plans"), list),
                'expected a catalogue {"plans": [...], "addons": [...], "locale": {...}}',
            )
            currency = catalog["locale"]["currencyCode"]
            self.expect(currency in TO_USD, f"prices in {currency!r}, expected one of {sorted(TO_USD)}")
            instance_codes = frozenset(
                code
                for plan in catalog["plans"]
                for family in plan.get("addonFamilies") or []
                if family["name"] == "instance"
                for code in family["addons"]
            )
            yield from ((TO_USD[currency], instance_codes, addon) for addon in catalog["addons"])

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        plans: dict[str, list[FlavorPlan]] = defaultdict(list)
        for plan in batch.each(self.items(pages), lambda item: _flavor_plan(*item)):
            plans[plan.flavor].append(plan)
        for flavor, flavor_plans in plans.items():
            with batch.item():  # assembled from its plans: dropped alone if it does not validate
                for offer in self._flavor(flavor, flavor_plans, observed_at, batch):
                    batch.add(offer)

    def _flavor(self, flavor: str, plans: list[FlavorPlan], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        spec = dict(plans[0].spec)
        if (match := batch.gpu(spec.pop("gpu"))) is None:
            return
        all_regions = [r for plan in plans for r in plan.regions]
        if all(plan.hourly_usd is None for plan in plans):
            skip("monthly plans only: no hourly (on-demand) price")
        if not all_regions:
            skip("orderable in no region")
        offered: set[str] = set()
        for plan in plans:
            if plan.hourly_usd is None:
                continue  # a monthly plan: its regions only
            for region in [r for r in plan.regions or all_regions if r not in offered]:
                offered.add(region)
                yield self.offer(match, observed_at, region=region, country=_country(region),
                                 offer_id=f"{flavor}:{region}", instance_type=flavor, price_per_hour=plan.hourly_usd,
                                 availability=Availability.UNKNOWN, **spec)  # fmt: skip


def _flavor_plan(to_usd: Decimal, instance_codes: frozenset[str], addon: dict[str, Any]) -> FlavorPlan:
    """One addon of the catalogue as a GPU flavor's plan; other addons are skipped."""
    if addon["planCode"] not in instance_codes:
        skip("not an instance plan (storage, network, ...)")
    technical = (addon.get("blobs") or {}).get("technical") or {}
    if not (gpu := technical.get("gpu")):
        skip("CPU instance flavor")
    hourly = next((p for p in addon["pricings"] if p["intervalUnit"] == "hour"), None)
    disks = technical["storage"]["disks"]
    memory = (gpu.get("memory") or {}).get("size")  # GB per GPU; None: the registry's
    return FlavorPlan(
        flavor=text(addon, "invoiceName"),
        hourly_usd=None if hourly is None else Decimal(_integer(hourly["price"])) / PRICE_UNITS * to_usd,
        regions=tuple(_regions(addon)),
        spec={
            "gpu": str(gpu["model"]),
            "gpu_count": int(gpu["number"]),
            "gpu_memory_gb": None if memory is None else float(memory),
            "vcpus": int(technical["cpu"]["cores"]),
            "ram_gb": float(technical["memory"]["size"]),
            "disk_gb": float(sum(d["capacity"] * d.get("number", 1) for d in disks)),
        },
    )


def _regions(plan: dict[str, Any]) -> list[str]:
    found = [v for c in plan.get("configurations") or [] if c["name"] == "region" for v in c["values"]]
    if not all(isinstance(r, str) and r for r in found):
        raise ValueError("region values are not names")
    return found


def _country(region: str) -> str | None:
    """GRA11 -> GRA -> FR; US-EAST-VA-1 -> US-EAST-VA -> US; EU-WEST-PAR -> FR."""
    code = re.sub(r"[-\d]+$", "", region.upper())
    return COUNTRY.get(code) or COUNTRY.get(re.sub(r"[^A-Z].*$", "", code))


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"price {value!r} is not an integer of 10^-8 currency units")
    return value
