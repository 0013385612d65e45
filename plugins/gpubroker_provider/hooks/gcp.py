"""Google Cloud: accelerator-optimised Compute Engine machine types from the Cloud Billing Catalog.

Endpoint: GET {base}/v1/services/6F81-5844-456A/skus?currencyCode=USD&pageSize=5000
(Compute Engine's service id); auth `?key=<API key>`.
Pagination: `{"skus": [...], "nextPageToken": "..."}`; the hook repeats the call with
`pageToken=<nextPageToken>` until the token is empty or absent.

A SKU: `description` ("Nvidia Tesla A100 80GB GPU running in Americas", "Spot Preemptible ...",
"A2 Instance Core running in Americas"), `category.resourceGroup` ("GPU", "CPU", "RAM", ...),
`category.usageType` ("OnDemand", "Preemptible" = Spot, "Commit1Yr"/"Commit3Yr" = 1/3-year
committed-use prices, their SKUs named "Commitment v1: A2 Cpu in Americas for 1 Year"),
`serviceRegions` (the regions it prices), `pricingInfo[0].pricingExpression.tieredRates[]
.unitPrice` = {"units": "<int string>", "nanos": <int>} USD per `usageUnit`: "h" per GPU-hour
for GPUs, per vCPU-hour for cores, "GiBy.h" per GiB-hour for RAM. The price is units + nanos/1e9
of the last tier starting at 0 usage (tiers above 0 are volume discounts, ignored).

An offer is one machine type in one region, priced as GCP bills it:
  gpus x GPU rate + vCPUs x core rate + RAM GiB x RAM rate   (USD/hour, whole machine)
with the machine's shape from `MACHINE_TYPES` (inferred: the catalog has no machine specs).
A machine type whose GPU is priced in a region without its core or RAM SKU is dropped there with that
reason (no partial price); one whose GPU is not priced in a region is not sold there.
`spot_price` is the same sum over the Preemptible SKUs, when all three exist. Where the catalog prices
all three parts under a 1- or 3-year commitment ("A2 Cpu" / "A2 Ram" = the "A2 Instance Core" /
"A2 Instance Ram" parts), the same sum is a reserved offer: `commitment_months` 12 / 36, offer_id
`<machine>:<region>@reserved-<months>mo`.
Regions kept: `regions=` (default `DEFAULT_REGIONS`). Known limits: no availability (UNKNOWN);
zonal GPU availability within a region is not in the catalog.
Each SKU is an item, read into its rates on its own. Skipped (counted): SKUs of other resource
families (storage, network), usage types or units, zero-priced SKUs, and GPU SKUs no machine type
here uses (GPUs attached to custom N1 machines, families not in MACHINE_TYPES): a part, not an offer. A SKU that
cannot be read is dropped with its reason; the machine types needing it are then left unpriced.
Layouts accepted: the current catalog; older Spot SKU names ("Preemptible Nvidia Tesla A100 GPU ...",
before the "Spot " prefix); and `pricingInfo` with several entries (a catalog read with
`startTime`/`endTime`): the one with the latest `effectiveTime` is the price.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip

SERVICE = "6F81-5844-456A"
PAGE_SIZE = 5000
MAX_PAGES = 100
DEFAULT_REGIONS = ("us-central1", "europe-west4", "asia-northeast1")
SPOT_PREFIX = "Spot Preemptible "
OLD_SPOT_PREFIX = "Preemptible "  # Spot SKUs' names before the "Spot " prefix
USAGE_TYPES = {"OnDemand": "on_demand", "Preemptible": "spot", "Commit1Yr": "reserved-12", "Commit3Yr": "reserved-36"}
COMMITMENT = re.compile(r"^Commitment v\d+: (?P<name>.+?) in .+ for \d+ Years?$")  # "... A2 Cpu in Americas for 1 Year"
COMMITTED_PARTS = {" Cpu": " Instance Core", " Ram": " Instance Ram"}  # commitment SKU names -> on-demand ones
HOURLY_UNITS = {"h", "GiBy.h"}  # per GPU/vCPU-hour, per GiB-hour; other units are not machine time

# machine type -> (GPU SKU name, GPUs, GB per GPU, vCPUs, RAM GiB, core SKU name, RAM SKU name)
MACHINE_TYPES: dict[str, tuple[str, int, float, int, float, str, str]] = {
    "a2-highgpu-1g": ("Nvidia Tesla A100 GPU", 1, 40, 12, 85, "A2 Instance Core", "A2 Instance Ram"),
    "a2-highgpu-8g": ("Nvidia Tesla A100 GPU", 8, 40, 96, 680, "A2 Instance Core", "A2 Instance Ram"),
    "a2-ultragpu-1g": ("Nvidia Tesla A100 80GB GPU", 1, 80, 12, 170, "A2 Instance Core", "A2 Instance Ram"),
    "a2-ultragpu-8g": ("Nvidia Tesla A100 80GB GPU", 8, 80, 96, 1360, "A2 Instance Core", "A2 Instance Ram"),
    "a3-highgpu-8g": ("Nvidia H100 80GB GPU", 8, 80, 208, 1872, "A3 Instance Core", "A3 Instance Ram"),
    "g2-standard-4": ("Nvidia L4 GPU", 1, 24, 4, 16, "G2 Instance Core", "G2 Instance Ram"),
    "g2-standard-24": ("Nvidia L4 GPU", 2, 24, 24, 96, "G2 Instance Core", "G2 Instance Ram"),
    "g2-standard-48": ("Nvidia L4 GPU", 4, 24, 48, 192, "G2 Instance Core", "G2 Instance Ram"),
}

PRICED_GPUS = {shape[0] for shape in MACHINE_TYPES.values()}

REGION_COUNTRY = {
    "us-central1": "US", "us-east1": "US", "us-east4": "US", "us-east5": "US", "us-south1": "US",
    "us-west1": "US", "us-west2": "US", "us-west3": "US", "us-west4": "US",
    "northamerica-northeast1": "CA", "southamerica-east1": "BR", "europe-west1": "BE",
    "europe-west2": "GB", "europe-west3": "DE", "europe-west4": "NL", "europe-west6": "CH",
    "europe-west8": "IT", "europe-west9": "FR", "europe-north1": "FI", "europe-central2": "PL",
    "asia-northeast1": "JP", "asia-northeast3": "KR", "asia-east1": "TW", "asia-east2": "HK",
    "asia-southeast1": "SG", "asia-south1": "IN", "australia-southeast1": "AU", "me-west1": "IL",
}


class GcpHook(VendorHook):
    vendor = VENDORS["gcp"]
    variants = (
        Variant("older-spot-names", "skus-1.json", 'Spot SKUs named "Preemptible <component> running in ..."'),
        Variant("commitments", "skus-1.json", "1- and 3-year commitment SKUs (\"Commitment v1: A2 Cpu in Americas "
                "for 1 Year\", usageType Commit1Yr/Commit3Yr) beside the on-demand ones, on one page"),
        Variant("price-history", "skus-1.json", "`pricingInfo` with an older and the current price (a catalog "
                "read over a time range)"),
    )

    def __init__(self, *args: Any, regions: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.regions = tuple(regions or DEFAULT_REGIONS)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}

    def auth_params(self, api_key: str) -> dict[str, str]:
        return {"key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        params: dict[str, Any] = {"currencyCode": "USD", "pageSize": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            page = self.request(client, "GET", f"/v1/services/{SERVICE}/skus", params=params)
            yield page
            token = page.get("nextPageToken") if isinstance(page, dict) else None
            if not token:
                break
            params = {**params, "pageToken": token}

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("skus"), list), 'expected {"skus": [...]}')
            yield from page["skus"]

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        rates = {key: price for sku_rates in batch.each(self.items(pages), sku_rates) for key, price in sku_rates
                 if key[2] in self.regions}  # fmt: skip
        for region in self.regions:
            for machine, shape in MACHINE_TYPES.items():
                fields = machine_fields(rates, machine, shape, region)
                if fields is None and (shape[0], "on_demand", region) in rates:
                    with batch.item():  # its GPU is sold there: a machine type that must not vanish unsaid
                        raise ValueError("GPU priced in the region without its machine's core or RAM SKU")
                if fields:
                    with batch.item():  # assembled from three SKUs: dropped alone if it does not validate
                        if match := batch.gpu(shape[0]):
                            batch.add(self.offer(match, observed_at, **fields))
                            for months, price in committed_prices(rates, shape, region).items():
                                batch.add(self.offer(match, observed_at, **fields | {
                                    "offer_id": f"{fields['offer_id']}@reserved-{months}mo", "price_per_hour": price,
                                    "spot_price": None, "pricing_type": PricingType.RESERVED,
                                    "commitment_months": months}))  # fmt: skip


def sku_rates(sku: dict[str, Any]) -> list[tuple[tuple[str, str, str], float]]:
    """((component name, "on_demand"|"spot", region), USD per unit) for each region a SKU prices."""
    usage = USAGE_TYPES.get(sku["category"]["usageType"])
    expression = _current(sku["pricingInfo"])["pricingExpression"]
    if usage is None or sku["category"]["resourceFamily"] != "Compute" or expression["usageUnit"] not in HOURLY_UNITS:
        skip("not a machine-time SKU (another resource family, usage type or unit)")
    price = _unit_price(expression)
    if price <= 0:
        skip("zero price")
    name = _component(sku["description"])
    if sku["category"].get("resourceGroup") == "GPU" and name not in PRICED_GPUS:
        skip("GPU SKU of no machine type priced here (N1-attachable GPUs, other families)")
    regions = sku["serviceRegions"]
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ValueError("serviceRegions is not a list of regions")
    return [((name, usage, region), price) for region in regions]


def _component(description: str) -> str:
    """The machine part a SKU prices, as its on-demand SKU names it: "Nvidia Tesla A100 GPU",
    "A2 Instance Core" (from "Spot Preemptible A2 Instance Core running in Americas" or, for a
    commitment, "Commitment v1: A2 Cpu in Americas for 1 Year")."""
    if found := COMMITMENT.match(description):
        name = found["name"]
        return next((name.removesuffix(s) + full for s, full in COMMITTED_PARTS.items() if name.endswith(s)), name)
    return description.split(" running in ")[0].removeprefix(SPOT_PREFIX).removeprefix(OLD_SPOT_PREFIX)


def committed_prices(rates: dict, shape: tuple, region: str) -> dict[int, float]:
    """{months: USD per hour} of one machine type under each commitment all three of its parts are priced for."""
    gpu_sku, count, _memory, vcpus, ram, core_sku, ram_sku = shape
    prices = {}
    for usage in ("reserved-12", "reserved-36"):
        price = _machine_price(rates, usage, region, (gpu_sku, count), (core_sku, vcpus), (ram_sku, ram))
        if price is not None:
            prices[int(usage.removeprefix("reserved-"))] = round(price, 6)
    return prices


def machine_fields(rates: dict, machine: str, shape: tuple, region: str) -> dict[str, Any] | None:
    """The Offer fields of one machine type in one region, priced as GCP bills it; None when unpriced."""
    gpu_sku, count, memory, vcpus, ram, core_sku, ram_sku = shape
    parts = ((gpu_sku, count), (core_sku, vcpus), (ram_sku, ram))
    price = _machine_price(rates, "on_demand", region, *parts)
    if price is None:
        return None
    spot = _machine_price(rates, "spot", region, *parts)
    return {
        "region": region, "country": REGION_COUNTRY.get(region), "offer_id": f"{machine}:{region}",
        "instance_type": machine, "gpu_count": count, "gpu_memory_gb": memory, "vcpus": vcpus, "ram_gb": ram,
        "price_per_hour": round(price, 6), "spot_price": round(spot, 6) if spot is not None and spot <= price else None,
        "cpu_arch": "x86_64",
    }  # fmt: skip


def _current(pricing_info: list[dict[str, Any]]) -> dict[str, Any]:
    """The pricing in effect: the latest `effectiveTime` (a catalog read over a time range lists several)."""
    if not isinstance(pricing_info, list) or not pricing_info:
        raise ValueError("pricingInfo is not a list of prices")
    return max(pricing_info, key=lambda info: info.get("effectiveTime") or "")


def _unit_price(expression: dict[str, Any]) -> float:
    """USD per usage unit: units + nanos of the base tier (startUsageAmount 0)."""
    base = [t for t in expression["tieredRates"] if float(t["startUsageAmount"]) == 0]
    if not base:
        raise ValueError("no base tier (startUsageAmount 0)")
    money = base[-1]["unitPrice"]
    return int(money.get("units") or 0) + int(money.get("nanos") or 0) / 1e9


def _machine_price(rates, usage: str, region: str, *parts: tuple[str, float]) -> float | None:
    total = 0.0
    for sku_name, quantity in parts:
        rate = rates.get((sku_name, usage, region))
        if rate is None:
            return None
        total += rate * quantity
    return total
