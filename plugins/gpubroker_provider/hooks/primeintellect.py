"""Prime Intellect: one API over GPU clouds and community hosts, with each offer's stock level.

Endpoint: GET {base}/api/v1/availability/gpus (base https://api.primeintellect.ai), what the official
`prime` CLI reads for `prime availability list`; auth `Authorization: Bearer <key>` (a free account's
key). Pagination: page numbers, `page=N&page_size=PAGE_SIZE`; each answer is
`{"items": [...], "totalCount": N}` and we stop once the items read reach `totalCount` (or a page
comes back empty, or after `MAX_PAGES`). Multi-node clusters (`/availability/multi-node`) are not read.

Per item (field names from the CLI's `GPUAvailability` model):
  `provider` — the cloud behind the offer ("lambdalabs", "datacrunch", "runpod", "primecompute"): the
    offer's `cloud`; `cloudId` — that cloud's plan token: the offer's instance type;
  `gpuType` — "<model>_<n>GB" ("H100_80GB", "RTX_PRO_6000B_96GB"): the model, and GB PER GPU from the
    suffix (without one, the registry's memory, marked inferred); `socket` — "PCIe", "SXM5", ...:
    the form factor; `gpuCount`; `gpuMemory` is not read (its unit, per GPU or per box, is undocumented;
    a peer's probe saw the box total);
  `prices` — `onDemand` (secure cloud) or `communityPrice` (community hosts, preferred where given, as
    the CLI does): USD PER HOUR for the WHOLE box (a 2-GPU box's price covers both GPUs); `currency`
    must be "USD";
  `vcpu.defaultCount`, `memory.defaultCount` (GB), `disk.defaultCount` (GB): the default configuration;
  `stockStatus` — "High"/"Medium"/"Available": AVAILABLE, "Low": LIMITED, "Unavailable": UNAVAILABLE;
  `isSpot` — a spot (interruptible) offer; `security` — "secure_cloud" / "community_cloud": the
    offer's tag (secure-cloud, community-cloud);
  `interconnectType` — "InfiniBand", "RoCE", "NVLink" where stated; else an SXM board of several GPUs
    is NVLink; `dataCenter` ("us-east-1") — the region (else the country); `country` — ISO code.
Offers: offer_id `<provider>/<cloudId>@<dataCenter>`, with "/community" and "/spot" where they apply.
Skipped: items stating zero GPUs. Dropped with a reason: no price, a non-USD currency, a missing GPU
count or plan token. Unknown GPU names are counted, not guessed.
Kind: cloud (hourly) — the offers are clouds' instance types with a coarse stock level, not a
listing of individual hosts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from gpubroker.schema import Availability, Interconnect, Offer, PricingType, Tag
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, is_number, number, number_or_none, skip, text

GPUS = "/api/v1/availability/gpus"
MAX_PAGES = 50
MEMORY_IN_TYPE = re.compile(r"_(\d+)GB$")  # "H100_80GB"
STOCK = {"high": Availability.AVAILABLE, "medium": Availability.AVAILABLE, "available": Availability.AVAILABLE,
         "low": Availability.LIMITED, "unavailable": Availability.UNAVAILABLE}  # fmt: skip
TIERS = {"secure_cloud": Tag.SECURE_CLOUD, "community_cloud": Tag.COMMUNITY_CLOUD}  # `security` -> the offer's tag
FABRICS = (("infiniband", Interconnect.INFINIBAND), ("roce", Interconnect.ROCE), ("nvlink", Interconnect.NVLINK))


class PrimeIntellectHook(VendorHook):
    vendor = VENDORS["primeintellect"]
    page_size: ClassVar[int] = 100

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        read = 0
        for page_number in range(1, MAX_PAGES + 1):
            page = self.request(client, "GET", GPUS, params={"page": page_number, "page_size": self.page_size})
            yield page
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list) or not items:
                return  # the last page (or not a listing: normalise refuses it)
            read += len(items)
            if not is_number(page.get("totalCount")) or read >= page["totalCount"]:
                return

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("items"), list) and is_number(
                page.get("totalCount")), 'expected {"items": [...], "totalCount": N}')  # fmt: skip
            yield from page["items"]

    def item_offers(self, item: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        count = number(item, "gpuCount")
        if count == 0:
            skip("CPU-only offer")
        gpu_type, socket = text(item, "gpuType"), str(item.get("socket") or "")
        if not (match := batch.gpu(f"{gpu_type} {socket}".strip())):
            return
        provider, data_center = text(item, "provider"), item.get("dataCenter") or item.get("country") or "unknown"
        community, spot = item.get("security") == "community_cloud", item.get("isSpot") is True
        memory = MEMORY_IN_TYPE.search(gpu_type)
        yield self.offer(
            match,
            observed_at,
            region=data_center,
            country=item.get("country"),
            offer_id=f"{provider}/{text(item, 'cloudId')}@{data_center}" + "/community" * community + "/spot" * spot,
            instance_type=item["cloudId"],
            gpu_count=count,
            gpu_memory_gb=float(memory[1]) if memory else None,
            vcpus=_default(item, "vcpu"),
            ram_gb=_default(item, "memory"),
            disk_gb=_default(item, "disk"),
            price_per_hour=_price(item["prices"]),
            availability=STOCK.get(str(item.get("stockStatus")).lower(), Availability.UNKNOWN),
            pricing_type=PricingType.SPOT if spot else PricingType.ON_DEMAND,
            interconnect=_interconnect(item, socket, count),
            cloud=provider,
            tags=[tag for security, tag in TIERS.items() if item.get("security") == security],
        )


def _price(prices: dict[str, Any]) -> Decimal:
    """USD per hour for the whole box: the community price where given, else the on-demand one."""
    if prices.get("currency", "USD") != "USD":
        raise ValueError(f"prices in {prices['currency']!r}, not USD")
    key = "communityPrice" if prices.get("communityPrice") is not None else "onDemand"
    return Decimal(str(number(prices, key)))


def _default(item: dict[str, Any], resource: str) -> int | float | None:
    """A resource's default size (`{"defaultCount": ...}`), None when the offer leaves it out."""
    return number_or_none(item[resource], "defaultCount") if item.get(resource) else None


def _interconnect(item: dict[str, Any], socket: str, count: int) -> Interconnect | None:
    stated = str(item.get("interconnectType") or "").lower()
    for word, fabric in FABRICS:
        if word in stated:
            return fabric
    return Interconnect.NVLINK if socket.upper().startswith("SXM") and count > 1 else None
