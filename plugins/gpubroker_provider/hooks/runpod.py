"""RunPod: on-demand GPU pod prices from the GraphQL `gpuTypes` query.

Endpoint: POST {base}/graphql with `{"query": GPU_TYPES_QUERY}`; auth `?api_key=<key>` (RunPod's
GraphQL API also accepts `Authorization: Bearer`, the vendor table says query parameter).
No pagination: one query returns every GPU type. GraphQL reports failures as `{"errors": [...]}`
(HTTP 200 or 400); such a body is rejected as malformed, never read as "no offers".

Fields used, per GPU type (`id` is RunPod's stable GPU id, e.g. "NVIDIA H100 80GB HBM3"):
  `displayName` ("H100 SXM") — the name matched in the GPU registry (it carries the form factor);
  `memoryInGb` — per-GPU memory, GB;
  `securePrice` / `communityPrice` — USD per GPU per hour, on-demand, in Secure / Community Cloud;
    0 or null means the cloud does not offer the type;
  `secureSpotPrice` / `communitySpotPrice` — USD per GPU per hour, interruptible (0/null: none);
  `secureCloud` / `communityCloud` — whether the type is sold in that cloud;
  `lowestPrice(input: {gpuCount: 1})` — `stockStatus` ("High"/"Medium"/"Low"/null) across both
    clouds, `minVcpu` and `minMemory` (GB of RAM) of the cheapest 1-GPU pod;
  `oneMonthPrice` / `threeMonthPrice` / `sixMonthPrice` — USD per GPU per hour under a Secure Cloud
    savings plan of 1, 3 or 6 months (0/null: none): reserved offers `<id>:secure@reserved-<n>mo`.
Offers: one per GPU type and cloud ("secure", "community"), each for ONE GPU, so the per-GPU price
is the whole offer's price. offer_id `<id>:<cloud>`. Tags: the cloud (secure-cloud, community-cloud),
and on Secure Cloud offers the certifications `lowestPrice.compliance` lists (the per-data-centre
query: "SOC2", "ISO27001", ...; those the tag vocabulary lacks are left out). Region: the query names no data centre, so
region is "global" and country unknown. Inferred: availability from `stockStatus` (shared by both
clouds): High/Medium -> available, Low -> limited, null -> unavailable. Skipped: the placeholder
type RunPod lists with id "unknown" (not a GPU), and types priced in neither cloud (listed, not sold);
names the registry lacks are counted by `batch.gpu`.

Shapes accepted (each GPU type parsed on its own):
- the answer to GPU_TYPES_QUERY above;
- a query without `lowestPrice` (or `lowestPrice: null`): availability unknown, vCPUs/RAM empty;
- a query selecting fewer fields: without the `secureCloud`/`communityCloud` flags a cloud is sold
  where its price is set; without `memoryInGb` the memory comes from the registry (marked inferred);
  missing spot prices mean none. A type with neither `securePrice` nor `communityPrice` is dropped;
- the per-data-centre query (`gpuTypes(input:)` with `lowestPrice(input: {secureCloud, dataCenterId,
  gpuCount})`): `__typename`, `maxGpuCount`, `clusterPrice`, `nodeGroupDatacenters`, `countryCode`
  beside the fields above, no cloud flags and no spot prices;
- a partial GraphQL answer, `data` beside `errors` (e.g. a `lowestPrice` resolver that failed for
  one type): the data is read, the errors logged. `errors` without `data` refuses the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer, PricingType, Tag
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number_or_none, skip

GPU_TYPES_QUERY = """query GpuTypes {
  gpuTypes {
    id displayName manufacturer memoryInGb secureCloud communityCloud
    securePrice communityPrice secureSpotPrice communitySpotPrice
    oneMonthPrice threeMonthPrice sixMonthPrice
    lowestPrice(input: {gpuCount: 1}) { stockStatus minVcpu minMemory uninterruptablePrice minimumBidPrice }
  }
}"""

# cloud -> (sold-in flag, on-demand price field, spot price field)
CLOUDS = {
    "secure": ("secureCloud", "securePrice", "secureSpotPrice"),
    "community": ("communityCloud", "communityPrice", "communitySpotPrice"),
}
STOCK = {"High": Availability.AVAILABLE, "Medium": Availability.AVAILABLE, "Low": Availability.LIMITED,
         None: Availability.UNAVAILABLE}
PLACEHOLDER_ID = "unknown"
# savings plan price field -> months committed (Secure Cloud, USD per GPU per hour)
SAVINGS_PLANS = {"oneMonthPrice": 1, "threeMonthPrice": 3, "sixMonthPrice": 6}


class RunPodHook(VendorHook):
    vendor = VENDORS["runpod"]
    variants = (
        Variant("without-lowest-price", "gpu-types.json", "`gpuTypes` queried without `lowestPrice`: "
                "availability unknown, no vCPUs/RAM"),
        Variant("fewer-fields", "gpu-types.json", "only `id displayName securePrice communityPrice`: no cloud "
                "flags, spot prices or memory (memory from the registry)"),
        Variant("savings-plans", "gpu-types.json", "the per-data-centre query: savings plan prices "
                "(`oneMonthPrice`...), `clusterPrice`, `maxGpuCount`, `__typename`; no cloud flags or spot prices"),
        Variant("partial-errors", "gpu-types.json", "GraphQL `data` with `errors` beside it; "
                "`lowestPrice: null` where its resolver failed"),
    )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}

    def auth_params(self, api_key: str) -> dict[str, str]:
        return {"api_key": api_key}

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "POST", "/graphql", json={"query": GPU_TYPES_QUERY})

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict), "expected a GraphQL answer object")
            data = page.get("data")
            self.expect(isinstance(data, dict), f"GraphQL errors: {_messages(page)}")
            self.expect(isinstance(data.get("gpuTypes"), list), 'expected {"data": {"gpuTypes": [...]}}')
            if page.get("errors"):
                self.log.warning("runpod: partial GraphQL answer: %s", _messages(page))
            yield from data["gpuTypes"]

    def item_offers(self, row: dict[str, Any], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if row["id"] == PLACEHOLDER_ID:
            skip("placeholder GPU type 'unknown'")
        if not any(price_field in row for _sold, price_field, _spot in CLOUDS.values()):
            raise KeyError("securePrice")  # neither cloud's price was asked for: nothing to price
        if not any(_sold(row, cloud) for cloud in CLOUDS):
            skip("sold in neither cloud (no on-demand price)")
        if (match := batch.gpu(row["displayName"])) is None:
            return
        for cloud in CLOUDS:
            if _sold(row, cloud):
                yield self._offer(row, cloud, match, observed_at)
        for field, months in SAVINGS_PLANS.items():
            if _sold(row, "secure") and (price := number_or_none(row, field)):
                yield self._offer(row, "secure", match, observed_at, offer_id=f"{row['id']}:secure@reserved-{months}mo",
                                  price_per_hour=price, spot_price=None, pricing_type=PricingType.RESERVED,
                                  commitment_months=months)  # fmt: skip

    def _offer(self, row: dict[str, Any], cloud: str, match: gpus.GpuMatch, observed_at: datetime,
               **terms: Any) -> Offer:  # fmt: skip
        """The offer of one type in one cloud, on demand unless `terms` say otherwise (a savings plan)."""
        _sold_flag, price_field, spot_field = CLOUDS[cloud]
        price = number_or_none(row, price_field)
        spot = number_or_none(row, spot_field) or None
        lowest = row.get("lowestPrice") or {}
        stock = lowest.get("stockStatus")
        self.expect(stock in STOCK, f"unknown stockStatus {stock!r}")
        memory = row.get("memoryInGb")
        return self.offer(match, observed_at, region="global", **dict(
            offer_id=f"{row['id']}:{cloud}",
            instance_type=f"1x {row['displayName']} ({cloud.title()} Cloud)",
            gpu_count=1,
            gpu_memory_gb=None if memory is None else float(memory),
            vcpus=lowest.get("minVcpu"),
            ram_gb=lowest.get("minMemory"),
            price_per_hour=price,
            spot_price=spot if spot and spot <= price else None,
            availability=STOCK[stock] if lowest else Availability.UNKNOWN,
            tags=_tags(cloud, lowest),
        ) | terms)


def _tags(cloud: str, lowest: dict[str, Any]) -> tuple[Tag, ...]:
    """The cloud's tier, and the certifications RunPod lists for its Secure Cloud data centres."""
    stated = {str(c).lower() for c in lowest.get("compliance") or ()} if cloud == "secure" else set()
    return (Tag(f"{cloud}-cloud"), *(tag for tag in Tag if tag.value in stated))


def _sold(row: dict[str, Any], cloud: str) -> bool:
    """The cloud sells the type: its flag is not false and its on-demand price is set (not 0/null)."""
    sold, price_field, _spot = CLOUDS[cloud]
    return row.get(sold, True) is not False and bool(number_or_none(row, price_field))


def _messages(page: Any) -> str:
    if isinstance(page, dict) and isinstance(page.get("errors"), list):
        return "; ".join(str(e.get("message")) for e in page["errors"] if isinstance(e, dict))
    return "none"
