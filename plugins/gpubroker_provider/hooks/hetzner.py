"""Hetzner: dedicated GPU servers (GEX line) from Hetzner's public feed of its standard dedicated servers.

Endpoint: GET https://www.hetzner.com/_resources/app/data/app/live_data_en_EUR.json (no key: the
feed Hetzner's dedicated server finder reads; its keyed Robot API is for ordering). One answer,
`{"server": [product, ...]}`, every standard dedicated server product, most of them CPU-only
(skipped). The layout is the one open readers of the feed parse (e.g. Hetzner Radar's importer).

Fields used, per product: `name` ("GEX44"), `specials` (has "GPU" for a GPU server), `price`
(EUR per MONTH, net of VAT, including the primary IPv4 address), `threads` (vCPUs), `ram` (GB),
`serverDiskData.{nvme,sata,hdd}` (drive sizes, GB: their sum is `disk_gb`), `datacenter`
([{"datacenter": "FSN1", "country_shortcode": "DE", ...}]: where the product can be ordered).
The feed does not name the GPU: GPUS below gives each GEX product's GPU, from Hetzner's product
pages (GEX44: one NVIDIA RTX 4000 SFF Ada, 20 GB; GEX130: one NVIDIA RTX 6000 Ada, 48 GB); a GPU
product missing from it is dropped with that reason.

Price: Hetzner rents dedicated servers by the month (cancellable monthly; the one-off `setup_price`,
EUR, is not spread into the hourly price) and publishes no hourly price for them. So an offer is
`pricing_type` "reserved" with `commitment_months` 1, and its `price_per_hour` is the monthly price
spread over the month's 730 hours (8760 / 12), converted at gpubroker.fx (dated there):
GEX44 at EUR 185.70 a month -> 185.70 / 730 x 1.16 = USD 0.2951 an hour.
Offers: one per product and data centre, offer_id "<product>@<datacenter>" ("GEX44@FSN1"), region
the data centre code, country its `country_shortcode`. Availability is "unknown" (the feed lists what
can be ordered, not stock).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import httpx

from gpubroker.fx import TO_USD
from gpubroker.schema import Offer, PricingType
from gpubroker.vendors import VENDORS
from gpubroker_provider.hooks.base import Batch, VendorHook, number, skip, text

FEED = "/_resources/app/data/app/live_data_en_EUR.json"
HOURS_PER_MONTH = 730  # 8760 hours a year / 12


class Gpu(NamedTuple):
    name: str  # as the registry knows it
    count: int
    memory_gb: float


# GEX product -> its GPU (Hetzner's product pages)
GPUS = {"GEX44": Gpu("RTX 4000 SFF Ada", 1, 20.0), "GEX130": Gpu("RTX 6000 Ada", 1, 48.0)}


class HetznerHook(VendorHook):
    vendor = VENDORS["hetzner"]

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", FEED)

    def items(self, pages: list[Any]) -> Iterator[Any]:
        for page in pages:
            self.expect(isinstance(page, dict) and isinstance(page.get("server"), list), 'expected {"server": [...]}')
            yield from page["server"]

    def item_offers(self, product: Any, observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        name = text(product, "name")
        if "GPU" not in product["specials"]:
            skip("CPU server: no GPU")
        if (gpu := GPUS.get(name)) is None:
            raise ValueError(f"no GPU known for {name!r} (add it from Hetzner's product pages)")
        if (match := batch.gpu(gpu.name)) is None:
            return
        datacenters = product["datacenter"]
        if not isinstance(datacenters, list) or not datacenters:
            raise ValueError("no datacenter to order it in")
        hourly = Decimal(str(number(product, "price"))) / HOURS_PER_MONTH * TO_USD["EUR"]
        disks = product["serverDiskData"]
        for datacenter in datacenters:
            code = text(datacenter, "datacenter")
            yield self.offer(
                match,
                observed_at,
                region=code,
                country=text(datacenter, "country_shortcode"),
                offer_id=f"{name}@{code}",
                instance_type=name,
                gpu_count=gpu.count,
                gpu_memory_gb=gpu.memory_gb,
                vcpus=int(number(product, "threads")),
                ram_gb=float(number(product, "ram")),
                disk_gb=float(sum(disks["nvme"] + disks["sata"] + disks["hdd"])) or None,
                price_per_hour=hourly,
                pricing_type=PricingType.RESERVED,
                commitment_months=1,
                cpu_arch="x86_64",
            )
