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
Skipped (counted, by reason): other services, price types (DevTestConsumption) and units, Windows
meters, " Low Priority" meters (Batch low-priority VMs), meters without a positive price; and, per VM
size and region, fractional-GPU sizes and N-series sizes that carry no GPU. Dropped with their reason: a meter priced in another currency than USD, or without the fields
the grouping needs (armSkuName, armRegionName, skuName, a numeric retailPrice).
Units: `retailPrice` USD per VM-hour for the whole VM (all its GPUs). A Spot price above on-demand is
dropped; a size with a Spot meter and no on-demand one is a Spot offer (`pricing_type` spot, offer_id
`<size>:<region>@spot`). Reservation meters (`type` "Reservation", `reservationTerm` "1 Year" /
"3 Years") price the WHOLE term: / (730 h x months) is the hourly price of a reserved offer with
`commitment_months` 12 / 36, offer_id `<size>:<region>@reserved-<months>mo`.
Inferred: GPU model, GPU count, per-GPU memory (GB), vCPUs and RAM (GiB, as advertised) come
from `VM_SIZES` (ND/NC/NV families), since the price API carries no specs. Fractional-GPU sizes
(NVadsA10 v5 below 36 vCPUs) are skipped; an N-series size missing from the table is counted as
an unknown GPU. Known limits: no availability/quota information (UNKNOWN).
Layouts accepted: the default api-version answer, and api-version 2023-01-01-preview's, whose
Consumption items add `savingsPlan` prices (`[{"unitPrice", "retailPrice", "term"}]`, unused: they are
commitments, not on-demand prices); a query without the `priceType` filter, mixing Reservation
(`reservationTerm`: reserved offers) and DevTestConsumption items in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import httpx

from gpubroker.schema import Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, is_number, skip

DEFAULT_REGIONS = ("eastus", "westeurope", "swedencentral")
PATH = "/api/retail/prices"
MAX_PAGES_PER_REGION = 200
ON_DEMAND, SPOT, RESERVED = "on_demand", "spot", "reserved-"
HOURS_PER_MONTH = 730  # a reservation's price is for its whole term: 8760 h a year
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
        prices = latest_prices(batch.each(self.items(pages), meter))
        for (size, region), by_kind in prices.items():
            with batch.item():  # assembled from its meters: dropped alone if it does not validate
                for offer in self._offers(size, region, by_kind, observed_at, batch):
                    batch.add(offer)

    def _offers(self, size: str, region: str, by_kind: dict[str, Decimal], observed_at: datetime,
                batch: Batch) -> Iterator[Offer]:  # fmt: skip
        """The offers of one VM size in one region: on demand (with its Spot price), Spot alone where
        no on-demand meter is listed, and one reserved offer per reservation term."""
        if size in FRACTIONAL:
            skip("a fraction of one GPU (fractional NV size)")
        if size not in VM_SIZES:
            if not _GPU_SIZE.match(size):
                skip("not a GPU VM size")
            batch.unknown(f"Azure {size}")
            return
        gpu_name, count, memory, vcpus, ram = VM_SIZES[size]
        if not (match := batch.gpu(gpu_name)):
            return
        spec = dict(region=region, country=REGION_COUNTRY.get(region), instance_type=size, gpu_count=count,
                    gpu_memory_gb=memory, vcpus=vcpus, ram_gb=ram, cpu_arch="x86_64")  # fmt: skip
        price, spot = by_kind.get(ON_DEMAND), by_kind.get(SPOT)
        if price is not None:
            spot = spot if spot is not None and spot <= price else None
            yield self.offer(match, observed_at, offer_id=f"{size}:{region}", price_per_hour=price, spot_price=spot, **spec)
        elif spot is not None:
            yield self.offer(match, observed_at, offer_id=f"{size}:{region}@spot", price_per_hour=spot,
                             pricing_type=PricingType.SPOT, **spec)  # fmt: skip
        for kind, reserved in by_kind.items():
            if kind.startswith(RESERVED):
                months = int(kind.removeprefix(RESERVED))
                yield self.offer(match, observed_at, offer_id=f"{size}:{region}@reserved-{months}mo",
                                 price_per_hour=reserved, pricing_type=PricingType.RESERVED,
                                 commitment_months=months, **spec)  # fmt: skip


class Meter(NamedTuple):
    """One Linux VM-hour meter: what `latest_prices` needs of it, checked."""

    size: str  # armSkuName
    region: str  # armRegionName
    kind: str  # ON_DEMAND, SPOT or RESERVED + months ("reserved-12")
    price: Decimal  # USD per VM-hour (a reservation's term price spread over the term's hours)
    since: str  # effectiveStartDate, ISO 8601


def meter(item: dict[str, Any]) -> Meter:
    """A meter item as a `Meter`; meters that are not Linux on-demand/Spot/reserved VM hours are skipped."""
    kind, unit = item["type"], item["unitOfMeasure"]
    if item["serviceName"] != "Virtual Machines" or kind not in ("Consumption", "Reservation") or unit != "1 Hour":
        skip("not a Consumption or Reservation VM-hour meter (another service, price type or unit)")
    product = item["productName"]
    if not isinstance(product, str) or not product.startswith("Virtual Machines"):
        raise ValueError(f"productName {product!r} names no VM series")  # the OS is read from it: never guess
    if product.endswith("Windows"):
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
    if kind == "Reservation":
        months = _term_months(item.get("reservationTerm"))
        return Meter(size, region, f"{RESERVED}{months}", Decimal(str(price)) / (HOURS_PER_MONTH * months), since)
    return Meter(size, region, SPOT if sku_name.endswith(" Spot") else ON_DEMAND, Decimal(str(price)), since)


def _term_months(term: Any) -> int:
    """'1 Year' -> 12, '3 Years' -> 36: the months a reservation commits to."""
    found = re.fullmatch(r"(\d+) Years?", term) if isinstance(term, str) else None
    if found is None:
        raise ValueError(f"reservation without a term in years: {term!r}")
    return 12 * int(found.group(1))


def latest_prices(meters: list[Meter]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """USD per VM-hour by (size, region), then by kind (on demand, Spot, reserved-<months>); the
    latest meter of each kind wins."""
    latest: dict[tuple[str, str, str], Meter] = {}
    for m in meters:
        key = (m.size, m.region, m.kind)
        if key not in latest or m.since > latest[key].since:
            latest[key] = m
    prices: dict[tuple[str, str], dict[str, Decimal]] = {}
    for m in latest.values():
        prices.setdefault((m.size, m.region), {})[m.kind] = m.price
    return prices
