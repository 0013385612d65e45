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
    clouds, `minVcpu` and `minMemory` (GB of RAM) of the cheapest 1-GPU pod.
Offers: one per GPU type and cloud ("secure", "community"), each for ONE GPU, so the per-GPU price
is the whole offer's price. offer_id `<id>:<cloud>`. Region: the query names no data centre, so
region is "global" and country unknown. Inferred: availability from `stockStatus` (shared by both
clouds): High/Medium -> available, Low -> limited, null -> unavailable. The placeholder type RunPod
lists with id "unknown" is skipped (not a GPU); names the registry lacks are counted by `batch.gpu`.

Shapes accepted (each GPU type parsed on its own):
- the answer to GPU_TYPES_QUERY above;
- a query without `lowestPrice` (or `lowestPrice: null`): availability unknown, vCPUs/RAM empty;
- a query selecting fewer fields: without the `secureCloud`/`communityCloud` flags a cloud is sold
  where its price is set; without `memoryInGb` the memory comes from the registry (marked inferred);
  missing spot prices mean none. A type with neither `securePrice` nor `communityPrice` is dropped;
- a partial GraphQL answer, `data` beside `errors` (e.g. a `lowestPrice` resolver that failed for
  one type): the data is read, the errors logged. `errors` without `data` refuses the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, Variant, VendorHook, number_or_none, skip
from gpubroker_provider.vendors import VENDORS

GPU_TYPES_QUERY = """query GpuTypes {
  gpuTypes {
    id displayName manufacturer memoryInGb secureCloud communityCloud
    securePrice communityPrice secureSpotPrice communitySpotPrice
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


class RunPodHook(VendorHook):
    vendor = VENDORS["runpod"]
    variants = (
        Variant("without-lowest-price", "gpu-types.json", "`gpuTypes` queried without `lowestPrice`: "
                "availability unknown, no vCPUs/RAM"),
        Variant("fewer-fields", "gpu-types.json", "only `id displayName securePrice communityPrice`: no cloud "
                "flags, spot prices or memory (memory from the registry)"),
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
        match = batch.gpu(row["displayName"])
        for cloud in CLOUDS:
            if match and (offer := self._offer(row, cloud, match, observed_at)):
                yield offer

    def _offer(self, row: dict[str, Any], cloud: str, match: gpus.GpuMatch, observed_at: datetime) -> Offer | None:
        sold, price_field, spot_field = CLOUDS[cloud]
        price = number_or_none(row, price_field)
        if not row.get(sold, True) or not price:
            return None
        spot = number_or_none(row, spot_field) or None
        lowest = row.get("lowestPrice") or {}
        stock = lowest.get("stockStatus")
        self.expect(stock in STOCK, f"unknown stockStatus {stock!r}")
        memory = row.get("memoryInGb")
        return self.offer(
            match,
            observed_at,
            region="global",
            offer_id=f"{row['id']}:{cloud}",
            instance_type=f"1x {row['displayName']} ({cloud.title()} Cloud)",
            gpu_count=1,
            gpu_memory_gb=None if memory is None else float(memory),
            vcpus=lowest.get("minVcpu"),
            ram_gb=lowest.get("minMemory"),
            price_per_hour=price,
            spot_price=spot if spot and spot <= price else None,
            availability=STOCK[stock] if lowest else Availability.UNKNOWN,
        )


def _messages(page: Any) -> str:
    if isinstance(page, dict) and isinstance(page.get("errors"), list):
        return "; ".join(str(e.get("message")) for e in page["errors"] if isinstance(e, dict))
    return "none"
