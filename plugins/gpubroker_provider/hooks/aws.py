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
Known limits: no availability in a price list (UNKNOWN); no spot prices (a separate feed);
region files are large (hundreds of MB for EC2) in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.vendors import VENDORS

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

_EC2_KEEP = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
_STORAGE = re.compile(r"(\d+)\s*x\s*([\d,.]+)")


class AwsHook(VendorHook):
    vendor = VENDORS["aws"]

    def __init__(self, *args: Any, regions: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.regions = tuple(regions or DEFAULT_REGIONS)

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        for region in self.regions:
            for service in SERVICES:
                yield self.request(client, "GET", f"/offers/v1.0/aws/{service}/current/{region}/index.json")

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        for page in pages:
            self.expect(
                isinstance(page, dict) and isinstance(page.get("products"), dict)
                and isinstance(page.get("terms"), dict) and page.get("offerCode") in SERVICES,
                'expected an offer file {"offerCode", "products": {...}, "terms": {"OnDemand": {...}}}',
            )
            on_demand = page["terms"]["OnDemand"]
            sagemaker = page["offerCode"] == "AmazonSageMaker"
            for sku, product in page["products"].items():
                attrs = product["attributes"]
                if not (_sagemaker_row(product) if sagemaker else _ec2_row(product)):
                    continue
                instance_type = attrs["instanceName"] if sagemaker else attrs["instanceType"]
                family = instance_type.removeprefix("ml.").split(".")[0]
                if family not in GPU_FAMILIES:
                    if _gpu_count(attrs):  # a GPU instance our table cannot name: report it
                        batch.unknown_gpus[f"AWS {family} family"] += 1
                    continue
                price = _hourly_usd(on_demand.get(sku, {}))
                if not price:
                    continue
                gpu_name, memory = GPU_FAMILIES[family]
                self.expect(_gpu_count(attrs) > 0, f"{sku}: {instance_type} has no GPU count")
                if match := batch.gpu(f"NVIDIA {gpu_name}"):
                    region = attrs["regionCode"]
                    batch.add(self.offer(
                        match, observed_at,
                        region=region,
                        country=REGION_COUNTRY.get(region),
                        offer_id=f"{'sagemaker' if sagemaker else 'ec2'}:{instance_type}:{region}",
                        instance_type=instance_type,
                        gpu_count=_gpu_count(attrs),
                        gpu_memory_gb=memory,
                        vcpus=int(attrs.get("vcpu") or attrs["vCpu"]),
                        ram_gb=_number(attrs["memory"]),
                        disk_gb=_storage_gb(attrs.get("storage", "")),
                        price_per_hour=price,
                        cpu_arch="arm64" if "graviton" in attrs.get("physicalProcessor", "").lower() else "x86_64",
                    ))


def _ec2_row(product: dict[str, Any]) -> bool:
    attrs = product["attributes"]
    return (
        product.get("productFamily", "").startswith("Compute Instance")
        and all(attrs.get(k) == v for k, v in _EC2_KEEP.items())
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
