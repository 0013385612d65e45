"""Microsoft Azure: GPU virtual machines from the Azure Retail Prices API.

Endpoint (public, no auth): GET {base}/api/retail/prices?$filter=<OData>, one query per region:
  serviceName eq 'Virtual Machines' and priceType eq 'Consumption'
  and armRegionName eq '<region>' and contains(armSkuName, 'Standard_N')
Pagination: each page is `{"BillingCurrency", "CustomerEntityId", "CustomerEntityType",
"Items": [...], "NextPageLink": "<absolute URL with $skip=...>" | null, "Count"}`; the hook
follows NextPageLink (its path and query, against the configured base URL) until it is null.
Regions fetched: `regions=` (default `DEFAULT_REGIONS`).

Rows: one meter per item, each read on its own. Kept: serviceName "Virtual Machines", type
"Consumption", unitOfMeasure "1 Hour", Linux meters (Windows meters have productName ending in
"Windows"). skuName ending " Spot" is the Spot meter (-> `spot_price`); the rest are on-demand, the
latest `effectiveStartDate` winning where a VM size has several. Items are matched by `armSkuName`
(e.g. "Standard_ND96isr_H100_v5").
Skipped (counted, by reason): other services, price types (DevTestConsumption, Reservation) and
units, Windows meters, " Low Priority" meters (Batch low-priority VMs), and meters without a positive
price. Dropped with their reason: a meter priced in another currency than USD, or without the fields
the grouping needs (armSkuName, armRegionName, skuName, a numeric retailPrice).
Units: `retailPrice` USD per VM-hour for the whole VM (all its GPUs). A Spot price above on-demand is
dropped.
Inferred: GPU model, GPU count, per-GPU memory (GB), vCPUs and RAM (GiB, as advertised) come
from `VM_SIZES` (ND/NC/NV families), since the price API carries no specs. Fractional-GPU sizes
(NVadsA10 v5 below 36 vCPUs) are skipped; an N-series size missing from the table is counted as
an unknown GPU. Known limits: no availability/quota information (UNKNOWN).
Layouts accepted: the default api-version answer, and api-version 2023-01-01-preview's, whose
Consumption items add `savingsPlan` prices (`[{"unitPrice", "retailPrice", "term"}]`, unused: they are
commitments, not on-demand prices); a query without the `priceType` filter, mixing Reservation
(`reservationTerm`) and DevTestConsumption items in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import httpx

from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, is_number, skip
from gpubroker_provider.vendors import VENDORS

DEFAULT_REGIONS = ("eastus", "westeurope", "swedencentral")
PATH = "/api/retail/prices"
MAX_PAGES_PER_REGION = 200
FILTER = (
    "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
    "and armRegionName eq '{region}' and contains(armSkuName, 'Standard_N')"
)

# armSkuName -> (GPU name, GPUs per VM, GB per GPU, vCPUs, RAM GiB)
VM_SIZES: dict[str, tuple[str, int, float, int, float]] = {
    "Standard_ND96isr_H100_v5": ("H100 SXM", 8, 80, 96, 1900),
    "Standard_ND96isr_H200_v5": ("H200 SXM", 8, 141, 96, 1850),
    "Standard_ND96isr_MI300X_v5": ("MI300X", 8, 192, 96, 1850),
    "Standard_ND96amsr_A100_v4": ("A100 SXM", 8, 80, 96, 1900),
    "Standard_ND96asr_v4": ("A100 SXM", 8, 40, 96, 900),
    "Standard_NC40ads_H100_v5": ("H100 NVL", 1, 94, 40, 320),
    "Standard_NC80adis_H100_v5": ("H100 NVL", 2, 94, 80, 640),
    "Standard_NC24ads_A100_v4": ("A100 PCIe", 1, 80, 24, 220),
    "Standard_NC48ads_A100_v4": ("A100 PCIe", 2, 80, 48, 440),
    "Standard_NC96ads_A100_v4": ("A100 PCIe", 4, 80, 96, 880),
    "Standard_NC4as_T4_v3": ("T4", 1, 16, 4, 28),
    "Standard_NC8as_T4_v3": ("T4", 1, 16, 8, 56),
    "Standard_NC16as_T4_v3": ("T4", 1, 16, 16, 110),
    "Standard_NC64as_T4_v3": ("T4", 4, 16, 64, 440),
    "Standard_NC6s_v3": ("V100", 1, 16, 6, 112),
    "Standard_NC24s_v3": ("V100", 4, 16, 24, 448),
    "Standard_NV36ads_A10_v5": ("A10", 1, 24, 36, 440),
    "Standard_NV72ads_A10_v5": ("A10", 2, 24, 72, 880),
    "Standard_NV32as_v4": ("Radeon Instinct MI25", 1, 16, 32, 112),
}
FRACTIONAL = {  # a slice of one GPU: not a whole-GPU offer
    "Standard_NV6ads_A10_v5", "Standard_NV12ads_A10_v5", "Standard_NV18ads_A10_v5",
    "Standard_NV4as_v4", "Standard_NV8as_v4", "Standard_NV16as_v4",
}
_GPU_SIZE = re.compile(r"^Standard_N[CDV]\d")

REGION_COUNTRY = {
    "eastus": "US", "eastus2": "US", "westus": "US", "westus2": "US", "westus3": "US", "centralus": "US",
    "southcentralus": "US", "northcentralus": "US", "canadacentral": "CA", "brazilsouth": "BR",
    "westeurope": "NL", "northeurope": "IE", "uksouth": "GB", "ukwest": "GB", "francecentral": "FR",
    "germanywestcentral": "DE", "swedencentral": "SE", "norwayeast": "NO", "switzerlandnorth": "CH",
    "polandcentral": "PL", "italynorth": "IT", "japaneast": "JP", "japanwest": "JP", "koreacentral": "KR",
    "southeastasia": "SG", "eastasia": "HK", "centralindia": "IN", "australiaeast": "AU",
    "uaenorth": "AE", "southafricanorth": "ZA",
}


class AzureHook(VendorHook):
    vendor = VENDORS["azure"]
    variants = (
        Variant("savings-plan", "eastus-1.json", "api-version 2023-01-01-preview: items with `savingsPlan` "
                "prices beside the on-demand one"),
        Variant("all-price-types", "eastus-1.json", "a query without the `priceType` filter: Reservation, "
                "DevTestConsumption and Windows items mixed in"),
    )

    def __init__(self, *args: Any, regions: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.regions = tuple(regions or DEFAULT_REGIONS)

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for region in self.regions:
            path, params = PATH, {"$filter": FILTER.format(region=region)}
            for _ in range(MAX_PAGES_PER_REGION):
                page = self.request(client, "GET", path, params=params)
                yield page
                link = page.get("NextPageLink") if isinstance(page, dict) else None
                if not link:
                    break
                next_url = urlsplit(link)  # absolute link to the live host: keep path + query only
                path, params = next_url.path, dict(parse_qsl(next_url.query, keep_blank_values=True))

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("Items"), list), 'expected {"Items": [...]}')
            yield from page["Items"]

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        on_demand, spot = latest_prices(batch.each(self.items(pages), meter))
        for (size, region), price in on_demand.items():
            if size in FRACTIONAL:
                continue
            if size not in VM_SIZES:
                if _GPU_SIZE.match(size):
                    batch.unknown_gpus[f"Azure {size}"] += 1
                continue
            gpu_name, count, memory, vcpus, ram = VM_SIZES[size]
            with batch.item():  # assembled from its meters: dropped alone if it does not validate
                if not (match := batch.gpu(gpu_name)):
                    continue
                spot_price = spot.get((size, region))
                batch.add(self.offer(
                    match, observed_at, region=region, country=REGION_COUNTRY.get(region), offer_id=f"{size}:{region}",
                    instance_type=size, gpu_count=count, gpu_memory_gb=memory, vcpus=vcpus, ram_gb=ram,
                    price_per_hour=price,
                    spot_price=spot_price if spot_price is not None and spot_price <= price else None,
                    cpu_arch="x86_64",
                ))  # fmt: skip


class Meter(NamedTuple):
    """One Linux VM-hour meter: what `latest_prices` needs of it, checked."""

    size: str  # armSkuName
    region: str  # armRegionName
    spot: bool
    price: float  # USD per VM-hour
    since: str  # effectiveStartDate, ISO 8601


def meter(item: dict[str, Any]) -> Meter:
    """A meter item as a `Meter`; meters that are not Linux on-demand/Spot VM hours are skipped."""
    kind, unit = item["type"], item["unitOfMeasure"]
    if item["serviceName"] != "Virtual Machines" or kind != "Consumption" or unit != "1 Hour":
        skip("not a Consumption VM-hour meter (another service, price type or unit)")
    if item["productName"].endswith("Windows"):
        skip("Windows meter")
    sku_name = item["skuName"]
    if sku_name.endswith(" Low Priority"):
        skip("Low Priority meter")
    if item["currencyCode"] != "USD":
        raise ValueError(f"price in {item['currencyCode']!r}, not USD")
    price = item.get("retailPrice")
    if price is None or price == 0:
        skip("no price")  # never land a $0 or missing price
    size, region, since = item["armSkuName"], item["armRegionName"], item["effectiveStartDate"]
    if not all(isinstance(v, str) and v for v in (size, region, since)) or not is_number(price) or price < 0:
        raise ValueError("meter without a size, region, start date or positive numeric price")
    return Meter(size, region, sku_name.endswith(" Spot"), float(price), since)


def latest_prices(meters: list[Meter]) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(on-demand, Spot) USD per VM-hour by (size, region); the latest meter wins."""
    latest: dict[tuple[bool, str, str], Meter] = {}
    for m in meters:
        key = (m.spot, m.size, m.region)
        if key not in latest or m.since > latest[key].since:
            latest[key] = m
    on_demand = {(m.size, m.region): m.price for m in latest.values() if not m.spot}
    spot = {(m.size, m.region): m.price for m in latest.values() if m.spot}
    return on_demand, spot
