"""Oracle Cloud (OCI): GPU shapes priced from Oracle's public price list (the Cost Estimator API).

Endpoint (public, no auth, no key): GET {base}/pls/apex/cetools/api/v1/products/?currencyCode=USD
on https://apexapps.oracle.com. The live answer is one JSON document holding the whole price list
(a few hundred parts): `{"lastUpdated": "<ISO time>", "items": [item, ...]}`, each item
`{"partNumber", "displayName", "metricName", "serviceCategory",
"currencyCodeLocalizations": [{"currencyCode": "USD", "prices": [{"model": "PAY_AS_YOU_GO",
"value": <number>}]}]}`.
Pagination: none observed on the live service. The service is an Oracle APEX/ORDS REST module,
whose collections may carry `"links": [{"rel": "next", "href": ...}]`; the hook follows such a
link (its path and query, against the configured base URL, at most `MAX_PAGES`) and treats
`"hasMore": true` without a next link as a truncated, malformed listing.

Units: `value` is USD (we ask `currencyCode=USD` and require the "USD" localization) under the
"PAY_AS_YOU_GO" model, per unit of `metricName`. GPU parts are metered "GPU Per Hour": USD per
GPU-hour, all-in (the shape's OCPUs, memory and local NVMe are included), the same in every
region. A shape's `price_per_hour` is that rate times the shape's GPU count (USD/hour for the
whole shape). A GPU part the table uses that is not metered "GPU Per Hour" is dropped
(multiplying another unit by the GPU count would be wrong); one with a missing or $0 price leaves
its shapes unpriced, never landed.

Inferred (the price list carries no specs and no shapes): `SHAPES` maps each bare-metal (BM.) or
virtual-machine (VM.) GPU shape to its GPU, GPU count, per-GPU memory (GB), OCPUs and memory (GB,
as Oracle advertises), and to the price-list part (by `partNumber`, stable where display names
are not: "Compute  - GPU - A10", "OCI- Compute ...") that bills it. One OCPU is one physical core
= 2 vCPUs, so `vcpus` = 2 x OCPUs. Offers: one per shape per region of `regions=` (default
`DEFAULT_REGIONS`), offer_id "<shape>:<region>", country from `REGION_COUNTRY`.
Ignored: parts not metered "GPU Per Hour" (OCPU, memory, storage, VMware per-node rows) and
NVIDIA AI Enterprise licences (metered per GPU-hour but software, not capacity). A "GPU Per Hour"
compute part no shape uses (e.g. H100T) is counted as an unknown GPU.
Each part is an item: a part a shape uses that cannot be read (another meter, no single USD
pay-as-you-go price, a price that is not a number, listed twice) is dropped with its reason and its
shapes go unpriced; parts that are not GPU capacity are skipped (counted).
Known limits: the price list says nothing about which region offers which shape, or about
capacity: every configured region gets every shape, availability UNKNOWN. No spot/preemptible
prices (preemptible GPU capacity is a separate 50%-off programme, not in this feed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import httpx

from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, is_number, skip
from gpubroker.vendors import VENDORS

PATH = "/pls/apex/cetools/api/v1/products/"
CURRENCY = "USD"
PRICE_MODEL = "PAY_AS_YOU_GO"
GPU_METRIC = "GPU Per Hour"
MAX_PAGES = 20
VCPUS_PER_OCPU = 2  # an OCPU is one physical core with two hardware threads
DEFAULT_REGIONS = ("us-ashburn-1", "us-chicago-1", "eu-frankfurt-1", "uk-london-1", "ap-tokyo-1")
_LICENCE_MARKERS = ("AI Enterprise",)  # "GPU Per Hour" software licences, not capacity


class Shape(NamedTuple):
    part: str  # price-list partNumber billing it, USD per GPU-hour
    gpu: str  # registry name, with form factor
    gpus: int
    gpu_memory_gb: float  # per GPU
    ocpus: int
    ram_gb: float


# shape -> billing part and specs (Oracle's compute shapes reference)
SHAPES: dict[str, Shape] = {
    "BM.GPU.H100.8": Shape("B98415", "H100 SXM", 8, 80, 112, 2048),
    "BM.GPU.H200.8": Shape("B110519", "H200 SXM", 8, 141, 112, 3072),
    "BM.GPU.A100-v2.8": Shape("B95907", "A100 SXM", 8, 80, 128, 2048),
    "BM.GPU4.8": Shape("B93544", "A100 SXM", 8, 40, 64, 2048),  # part "OCI - Compute - GPU - E4"
    "BM.GPU.MI300X.8": Shape("B109485", "MI300X", 8, 192, 112, 2048),
    "BM.GPU.L40S-NC.4": Shape("B109479", "L40S", 4, 48, 112, 1024),
    "BM.GPU.A10.4": Shape("B95909", "A10", 4, 24, 64, 1024),
    "VM.GPU.A10.2": Shape("B95909", "A10", 2, 24, 30, 480),
    "VM.GPU.A10.1": Shape("B95909", "A10", 1, 24, 15, 240),
}
_PARTS = {shape.part for shape in SHAPES.values()}

REGION_COUNTRY = {
    "us-ashburn-1": "US", "us-phoenix-1": "US", "us-chicago-1": "US", "us-sanjose-1": "US",
    "ca-toronto-1": "CA", "ca-montreal-1": "CA", "sa-saopaulo-1": "BR", "mx-queretaro-1": "MX",
    "eu-frankfurt-1": "DE", "eu-amsterdam-1": "NL", "uk-london-1": "GB", "eu-paris-1": "FR",
    "eu-marseille-1": "FR", "eu-stockholm-1": "SE", "eu-madrid-1": "ES", "eu-milan-1": "IT",
    "eu-zurich-1": "CH", "ap-tokyo-1": "JP", "ap-osaka-1": "JP", "ap-seoul-1": "KR",
    "ap-singapore-1": "SG", "ap-mumbai-1": "IN", "ap-hyderabad-1": "IN", "ap-sydney-1": "AU",
    "ap-melbourne-1": "AU", "me-dubai-1": "AE", "me-jeddah-1": "SA", "il-jerusalem-1": "IL",
    "af-johannesburg-1": "ZA",
}


class OciHook(VendorHook):
    vendor = VENDORS["oci"]
    variants = (
        Variant("all-currencies", "products.json", "the price list asked without `currencyCode`: every part "
                "priced in every currency; the USD one is read"),
    )

    def __init__(self, *args: Any, regions: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.regions = tuple(regions or DEFAULT_REGIONS)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}  # public price list: a key, if configured, is never sent

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        path, params = PATH, {"currencyCode": CURRENCY}
        for _ in range(MAX_PAGES):
            page = self.request(client, "GET", path, params=params)
            yield page
            link = _next_link(page)
            if not link:
                break
            next_url = urlsplit(link)  # absolute link to the live host: keep path + query only
            path, params = next_url.path, dict(parse_qsl(next_url.query, keep_blank_values=True))

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("items"), list), 'expected {"items": [...]}')
            self.expect(not (page.get("hasMore") and not _next_link(page)), "hasMore without a next link")
            yield from page["items"]

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        seen: set[str] = set()
        per_gpu_hour = dict(p for p in batch.each(self.items(pages), lambda item: _priced_part(item, seen, batch)) if p)
        for shape_name, shape in SHAPES.items():
            if (price := per_gpu_hour.get(shape.part)) is None or (match := batch.gpu(shape.gpu)) is None:
                continue
            for region in self.regions:
                with batch.item():  # priced from its part: dropped alone if it does not validate
                    batch.add(self.offer(match, observed_at, **shape_fields(shape_name, shape, price, region)))


def _priced_part(item: dict[str, Any], seen: set[str], batch: Batch) -> tuple[str, Decimal] | None:
    """(partNumber, USD per GPU-hour) of a part a shape is billed by; None when it is unpriced.
    Unused GPU parts are counted as unknown GPUs; every other part is skipped."""
    part = item["partNumber"]
    if part in seen:
        raise ValueError("part listed twice")
    seen.add(part)
    if part in _PARTS:
        if (price := _gpu_hour_price(item)) is None:
            skip("GPU part without a positive pay-as-you-go price (not sold on demand)")
        return part, price
    if _unused_gpu_part(item):
        batch.unknown(f"{item['displayName']} ({part})")
        return None
    skip("not a GPU capacity part (OCPU, memory, storage, licences, ...)")


def shape_fields(shape_name: str, shape: Shape, per_gpu_hour: Decimal, region: str) -> dict[str, Any]:
    """The Offer fields of one shape in one region (the GPU itself aside)."""
    return {
        "region": region, "country": REGION_COUNTRY.get(region), "offer_id": f"{shape_name}:{region}",
        "instance_type": shape_name, "gpu_count": shape.gpus, "gpu_memory_gb": shape.gpu_memory_gb,
        "vcpus": shape.ocpus * VCPUS_PER_OCPU, "ram_gb": shape.ram_gb, "price_per_hour": per_gpu_hour * shape.gpus,
        "cpu_arch": "x86_64",
    }  # fmt: skip


def _gpu_hour_price(item: dict[str, Any]) -> Decimal | None:
    """USD per GPU-hour, pay-as-you-go, of a part a shape is billed by; None when unpriced."""
    if item["metricName"] != GPU_METRIC:
        raise ValueError(f"a shape's part metered {item['metricName']!r}, not {GPU_METRIC!r}")
    localizations = item["currencyCodeLocalizations"]
    if not isinstance(localizations, list):
        raise ValueError("currencyCodeLocalizations is not a list")
    usd = [loc for loc in localizations if loc["currencyCode"] == CURRENCY]
    if len(usd) != 1:
        raise ValueError(f"expected one {CURRENCY} price list, got {len(usd)}")
    payg = [p for p in usd[0]["prices"] if p["model"] == PRICE_MODEL]
    if not payg:
        return None
    if len(payg) != 1:
        raise ValueError(f"{len(payg)} {PRICE_MODEL} prices")
    value = payg[0].get("value")
    if value is None:
        return None
    if not is_number(value):
        raise ValueError("price is not a number")
    return Decimal(str(value)) if value > 0 else None


def _next_link(page: Any) -> str | None:
    if not isinstance(page, dict) or not isinstance(page.get("links"), list):
        return None
    hrefs = (link.get("href") for link in page["links"] if isinstance(link, dict) and link.get("rel") == "next")
    return next(hrefs, None)


def _unused_gpu_part(item: dict[str, Any]) -> bool:
    """A GPU capacity part (per GPU-hour, compute) that no shape in `SHAPES` is billed by."""
    return (
        item["metricName"] == GPU_METRIC
        and item["serviceCategory"].startswith("Compute - GPU")
        and not any(marker in item["displayName"] for marker in _LICENCE_MARKERS)
    )
