"""AWS: EC2 and SageMaker on-demand GPU instances from the public Price List Bulk API.

Endpoints (public, no auth), one offer file per service and region:
  GET {base}/offers/v1.0/aws/AmazonEC2/current/{region}/index.json
  GET {base}/offers/v1.0/aws/AmazonSageMaker/current/{region}/index.json
No pagination: each file is one JSON document
`{"formatVersion", "offerCode", "version", "publicationDate", "products": {sku: product},
"terms": {"OnDemand": {sku: {offerTermCode: term}}, "Reserved": {...}}}`.
Regions fetched: `regions=` (default `DEFAULT_REGIONS`, a handful of GPU regions).

EC2 products kept: productFamily "Compute Instance" (or "... (bare metal)"), Linux,
tenancy "Shared", preInstalledSw "NA" (no SQL Server etc.), capacitystatus "Used" (not the
capacity-reservation rows), marketoption "OnDemand" where present (not Capacity Blocks).
SageMaker products kept: productFamily "ML Instance", component "Training", `ml.*` instanceName
(Hosting/Notebook/Processing rows and fees without a component are other products).
SageMaker is its own product line: offer_id `sagemaker:<ml.type>:<region>`, instance_type `ml.*`.

Units: `pricePerUnit.USD` is a decimal string, USD per instance-hour for the whole instance
(all GPUs) when `unit` is "Hrs" (other units are fees, skipped); `vcpu`/`vCpu` a count;
`memory` "<n> GiB" (kept as the advertised number); `storage` "<k> x <n> [NVMe ]SSD" in GB or
"EBS only" (None); `gpu` the GPU count per instance (string). A $0 on-demand price is skipped.
Inferred: the GPU model and per-GPU memory come from `GPU_FAMILIES` (instance family -> GPU),
since the price list's `gpuMemory` is "NA" for most GPU types; a GPU family missing from the
table is counted as an unknown GPU; `cpu_arch` is arm64 for Graviton processors, else x86_64.
Reserved terms (`terms.Reserved`, where the file or entry carries them): the standard, No Upfront
reservation's "Hrs" rate for a `LeaseContractLength` of 1yr / 3yr is a reserved offer
(`commitment_months` 12 / 36, offer_id `<on-demand id>@reserved-<months>mo`); upfront and
convertible options are not read.
Known limits: no availability in a price list (UNKNOWN); no spot prices (a separate feed);
region files are large (hundreds of MB for EC2) in production.

Each product is an item. Skipped (counted): other product families (storage, data transfer, fees),
other operating systems, tenancies, pre-installed software or capacity rows, CPU-only instance types,
and products without an on-demand hourly price. Layouts accepted:
- the offer file above (`regionCode`, `capacitystatus`, `marketoption`, `gpuMemory` present);
- older offer files, before `regionCode`, `capacitystatus` and `marketoption`: the region comes from
  `location` ("US East (N. Virginia)") through `LOCATION_REGION`;
- the Price List Query API's GetProducts answer (`{"FormatVersion": "aws_v1", "PriceList": [...],
  "NextToken"}`), one JSON-encoded product with its own terms per entry, as `aws pricing
  get-products` saves it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from gpubroker.schema import Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, skip

DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-central-1")
SERVICES = ("AmazonEC2", "AmazonSageMaker")

# instance family -> (GPU name as AWS sells it, per-GPU memory in GB)
GPU_FAMILIES: dict[str, tuple[str, float]] = {
    "p5": ("H100", 80), "p5e": ("H200", 141), "p5en": ("H200", 141), "p6-b200": ("B200", 180),
    "p4d": ("A100", 40), "p4de": ("A100", 80), "p3": ("V100", 16), "p3dn": ("V100", 32),
    "g6e": ("L40S", 48), "g6": ("L4", 24), "gr6": ("L4", 24), "g5": ("A10G", 24),
    "g4dn": ("T4", 16), "g5g": ("T4G", 16),
}

REGION_COUNTRY = {
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US", "ca-central-1": "CA",
    "sa-east-1": "BR", "eu-central-1": "DE", "eu-west-1": "IE", "eu-west-2": "GB", "eu-west-3": "FR",
    "eu-north-1": "SE", "eu-south-1": "IT", "eu-south-2": "ES", "eu-central-2": "CH",
    "ap-northeast-1": "JP", "ap-northeast-2": "KR", "ap-northeast-3": "JP", "ap-south-1": "IN",
    "ap-southeast-1": "SG", "ap-southeast-2": "AU", "ap-east-1": "HK", "me-central-1": "AE",
}

# region name in older offer files (no `regionCode`) -> region code
LOCATION_REGION = {
    "US East (N. Virginia)": "us-east-1", "US East (Ohio)": "us-east-2", "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2", "Canada (Central)": "ca-central-1", "South America (Sao Paulo)": "sa-east-1",
    "EU (Frankfurt)": "eu-central-1", "EU (Ireland)": "eu-west-1", "EU (London)": "eu-west-2", "EU (Paris)": "eu-west-3",
    "EU (Stockholm)": "eu-north-1", "EU (Milan)": "eu-south-1", "EU (Spain)": "eu-south-2", "EU (Zurich)": "eu-central-2",
    "Asia Pacific (Tokyo)": "ap-northeast-1", "Asia Pacific (Seoul)": "ap-northeast-2", "Asia Pacific (Osaka)": "ap-northeast-3",
    "Asia Pacific (Mumbai)": "ap-south-1", "Asia Pacific (Singapore)": "ap-southeast-1", "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Hong Kong)": "ap-east-1", "Middle East (UAE)": "me-central-1",
}

RESERVATION_MONTHS = {"1yr": 12, "3yr": 36}
_EC2_KEEP = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
_STORAGE = re.compile(r"(\d+)\s*x\s*([\d,.]+)")


class AwsHook(VendorHook):
    vendor = VENDORS["aws"]
    variants = (
        Variant("older-layout", "ec2-us-east-1.json", "an offer file from before `regionCode`, `capacitystatus` "
                "and `marketoption`: the region from `location`"),
        Variant("reserved-terms", "ec2-us-east-1.json", "an offer file with `terms.Reserved`: 1yr/3yr standard "
                "No Upfront, Partial/All Upfront and convertible reservations beside the on-demand terms"),
        Variant("get-products", "ec2-us-east-1.json", "the Price List Query API's GetProducts answer: "
                "`PriceList` of JSON-encoded products, each with its own terms"),
    )

    def __init__(self, *args: Any, regions: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.regions = tuple(regions or DEFAULT_REGIONS)

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for region in self.regions:
            for service in SERVICES:
                yield self.request(client, "GET", f"/offers/v1.0/aws/{service}/current/{region}/index.json")

    def items(self, pages: list[Any]) -> Iterator[tuple[str | None, dict[str, Any] | None, Any]]:
        """(service, the file's terms by type, product) per product; (None, None, entry) per
        GetProducts entry, which carries its own service and terms."""
        for page in pages:
            if isinstance(page, dict) and isinstance(page.get("PriceList"), list):
                yield from ((None, None, entry) for entry in page["PriceList"])
                continue
            self.expect(
                isinstance(page, dict) and isinstance(page.get("products"), dict)
                and isinstance(page.get("terms"), dict) and page.get("offerCode") in SERVICES
                and isinstance(page["terms"].get("OnDemand"), dict),
                'expected an offer file {"offerCode", "products": {...}, "terms": {"OnDemand": {...}}} '
                'or a GetProducts answer {"PriceList": [...]}',
            )
            yield from ((page["offerCode"], page["terms"], product) for product in page["products"].values())

    def item_offers(self, item: tuple, observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        service, product, terms, reserved = _priced_product(*item)
        instance_type, family = _instance(service, product)
        if family not in GPU_FAMILIES:
            if _gpu_count(product["attributes"]):  # a GPU instance our table cannot name: report it
                batch.unknown(f"AWS {family} family")
                return
            skip("CPU-only instance type")
        gpu_name, memory = GPU_FAMILIES[family]
        if match := batch.gpu(f"NVIDIA {gpu_name}"):
            fields = offer_fields(service, instance_type, product, terms) | {"gpu_memory_gb": memory}
            yield self.offer(match, observed_at, **fields)
            for months, price in reserved_hourly(reserved).items():
                yield self.offer(match, observed_at, **fields | {
                    "offer_id": f"{fields['offer_id']}@reserved-{months}mo", "price_per_hour": price,
                    "pricing_type": PricingType.RESERVED, "commitment_months": months})  # fmt: skip


def _priced_product(service: str | None, terms: dict[str, Any] | None, product: Any) -> tuple[str, dict, dict, dict]:
    """(service, product, its on-demand terms, its reserved terms) from an offer file's product or a
    GetProducts entry."""
    if service is None:  # a GetProducts entry: JSON text of {"serviceCode", "product", "terms"} of ONE product
        entry = json.loads(product) if isinstance(product, str) else product
        if entry["serviceCode"] not in SERVICES:
            skip("another service")
        service, product, terms, sku = entry["serviceCode"], entry["product"], entry["terms"], None
    else:
        sku = product["sku"]
    on_demand, reserved = terms.get("OnDemand") or {}, terms.get("Reserved") or {}
    if sku is not None:
        on_demand, reserved = on_demand.get(sku) or {}, reserved.get(sku) or {}
    return service, product, on_demand, reserved


def reserved_hourly(terms: dict[str, Any]) -> dict[int, float]:
    """{months: USD per instance-hour} of the standard, No Upfront reservations (a rate per hour with no
    fee; the upfront options mix a fee in): 1yr -> 12, 3yr -> 36."""
    prices = {}
    for term in terms.values():
        attributes = term.get("termAttributes") or {}
        months = RESERVATION_MONTHS.get(attributes.get("LeaseContractLength"))
        if months and attributes.get("OfferingClass") == "standard" and attributes.get("PurchaseOption") == "No Upfront":
            if price := _hourly_usd({"term": term}):
                prices[months] = price
    return prices


def _instance(service: str, product: dict[str, Any]) -> tuple[str, str]:
    """(instance type, family) of a kept on-demand instance product; every other product is skipped."""
    sagemaker = service == "AmazonSageMaker"
    if not (_sagemaker_row(product) if sagemaker else _ec2_row(product)):
        skip("not a Linux shared on-demand instance (another family, OS, tenancy or capacity row)")
    instance_type = product["attributes"]["instanceName" if sagemaker else "instanceType"]
    return instance_type, instance_type.removeprefix("ml.").split(".")[0]


def offer_fields(service: str, instance_type: str, product: dict[str, Any], terms: dict[str, Any]) -> dict[str, Any]:
    """The Offer fields of one priced GPU instance product (the GPU itself aside)."""
    attrs = product["attributes"]
    price = _hourly_usd(terms)
    if not price:
        skip("no on-demand hourly price")
    count = _gpu_count(attrs)
    if count < 1:
        raise ValueError("GPU instance family without a GPU count")
    region = attrs.get("regionCode") or _region_of(attrs["location"])
    line = "sagemaker" if service == "AmazonSageMaker" else "ec2"
    return {
        "region": region,
        "country": REGION_COUNTRY.get(region),
        "offer_id": f"{line}:{instance_type}:{region}",
        "instance_type": instance_type,
        "gpu_count": count,
        "vcpus": int(attrs.get("vcpu") or attrs["vCpu"]),
        "ram_gb": _number(attrs["memory"]),
        "disk_gb": _storage_gb(attrs.get("storage", "")),
        "price_per_hour": price,
        "cpu_arch": "arm64" if "graviton" in attrs.get("physicalProcessor", "").lower() else "x86_64",
    }


def _region_of(location: str) -> str:
    if location not in LOCATION_REGION:
        raise ValueError(f"unknown location {location!r}")
    return LOCATION_REGION[location]


def _ec2_row(product: dict[str, Any]) -> bool:
    attrs = product["attributes"]
    return (
        product.get("productFamily", "").startswith("Compute Instance")
        and all(attrs.get(k, "Used" if k == "capacitystatus" else None) == v for k, v in _EC2_KEEP.items())
        and attrs.get("marketoption", "OnDemand") == "OnDemand"
    )


def _sagemaker_row(product: dict[str, Any]) -> bool:
    attrs = product["attributes"]
    return (
        product.get("productFamily") == "ML Instance"
        and attrs.get("component") == "Training"
        and attrs.get("instanceName", "").startswith("ml.")
        and attrs.get("locationType", "AWS Region") == "AWS Region"
    )


def _gpu_count(attrs: dict[str, Any]) -> int:
    value = attrs.get("gpu", "NA")
    return int(value) if value.isdigit() else 0


def _hourly_usd(terms: dict[str, Any]) -> float | None:
    """The instance-hour rate of a SKU's on-demand term; None when it has none (or a fee only)."""
    for term in terms.values():
        for dimension in term["priceDimensions"].values():
            if dimension["unit"] == "Hrs":
                return float(dimension["pricePerUnit"]["USD"])
    return None


def _number(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def _storage_gb(text: str) -> float | None:
    m = _STORAGE.search(text)
    return int(m.group(1)) * float(m.group(2).replace(",", "")) if m else None
