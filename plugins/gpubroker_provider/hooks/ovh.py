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
Flavors whose technical blob has no `gpu` are CPU instances and skipped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from gpubroker.fx import TO_USD  # one dated rate for every vendor
from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

PATH = "/1.0/order/catalog/public/cloud"
PRICE_UNITS = Decimal(100_000_000)  # catalogue prices are in 10^-8 currency units

# OVHcloud region code (without its number) -> ISO country.
COUNTRY = {
    "GRA": "FR", "SBG": "FR", "RBX": "FR", "PAR": "FR", "EU-WEST-PAR": "FR", "EU-WEST-LZ-PAR": "FR",
    "BHS": "CA", "TOR": "CA", "CA-EAST-TOR": "CA", "DE": "DE", "LIM": "DE", "UK": "GB", "ERI": "GB",
    "WAW": "PL", "EU-SOUTH-MIL": "IT", "SGP": "SG", "AP-SOUTHEAST-SGP": "SG", "SYD": "AU",
    "AP-SOUTHEAST-SYD": "AU", "MUM": "IN", "AP-SOUTH-MUM": "IN", "US-EAST-VA": "US", "US-WEST-OR": "US",
}


class OvhHook(VendorHook):
    vendor = VENDORS["ovh"]
    subsidiary = "FR"

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", PATH, params={"ovhSubsidiary": self.subsidiary})

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for catalog in pages:
            self.expect(
                isinstance(catalog, dict) and isinstance(catalog.get("addons"), list) and isinstance(catalog.get("plans"), list),
                'expected a catalogue {"plans": [...], "addons": [...], "locale": {...}}',
            )
            currency = catalog["locale"]["currencyCode"]
            self.expect(currency in TO_USD, f"prices in {currency!r}, expected one of {sorted(TO_USD)}")
            instance_codes = {
                code
                for plan in catalog["plans"]
                for family in plan.get("addonFamilies") or []
                if family["name"] == "instance"
                for code in family["addons"]
            }
            flavors: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for addon in catalog["addons"]:
                if addon["planCode"] in instance_codes:
                    flavors[addon["invoiceName"]].append(addon)
            for flavor, plans in flavors.items():
                self._flavor(flavor, plans, TO_USD[currency], observed_at, batch)

    def _flavor(self, flavor: str, plans: list[dict[str, Any]], to_usd: Decimal, observed_at: datetime, batch: Batch) -> None:
        hourly = [(plan, pricing) for plan in plans if (pricing := _hourly_pricing(plan))]
        technical = (plans[0].get("blobs") or {}).get("technical") or {}
        gpu = technical.get("gpu")
        if not gpu or not hourly:
            return  # a CPU flavor, or one without an hourly price
        if (match := batch.gpu(gpu["model"])) is None:
            return
        all_regions = [r for plan in plans for r in _regions(plan)]
        offered: set[str] = set()
        for plan, pricing in hourly:
            price = Decimal(_integer(pricing["price"])) / PRICE_UNITS * to_usd
            for region in _regions(plan) or all_regions:
                if region in offered:
                    continue
                offered.add(region)
                batch.add(
                    self.offer(
                        match,
                        observed_at,
                        region=region,
                        country=_country(region),
                        offer_id=f"{flavor}:{region}",
                        instance_type=flavor,
                        gpu_count=int(gpu["number"]),
                        gpu_memory_gb=float(gpu["memory"]["size"]),
                        vcpus=int(technical["cpu"]["cores"]),
                        ram_gb=float(technical["memory"]["size"]),
                        disk_gb=float(sum(d["capacity"] * d.get("number", 1) for d in technical["storage"]["disks"])),
                        price_per_hour=price,
                        availability=Availability.UNKNOWN,
                    )
                )


def _hourly_pricing(plan: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in plan["pricings"] if p["intervalUnit"] == "hour"), None)


def _regions(plan: dict[str, Any]) -> list[str]:
    return [v for c in plan.get("configurations") or [] if c["name"] == "region" for v in c["values"]]


def _country(region: str) -> str | None:
    """GRA11 -> GRA -> FR; US-EAST-VA-1 -> US-EAST-VA -> US; EU-WEST-PAR -> FR."""
    code = re.sub(r"[-\d]+$", "", region.upper())
    return COUNTRY.get(code) or COUNTRY.get(re.sub(r"[^A-Z].*$", "", code))


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"price {value!r} is not an integer of 10^-8 currency units")
    return value
