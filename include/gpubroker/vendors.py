"""The vendor table: every GPU vendor GPUBroker reads, as plain data (no Airflow, no hooks imported).

Each row says how the vendor's prices are read (`source`), from where (`source_url`), how often
(`cadence`, seconds) and which hook module reads them (`hook`, a dotted path that only the provider
package imports: `gpubroker_provider.vendors.hook_class`). The webapp, the Flink jobs and the DAGs
read this table; nothing here imports from `plugins/`.

Sources:
- `api`: the vendor's price or catalogue API (JSON);
- `page`: the vendor's public price page (HTML, or the JSON embedded in it), read by `PageHook`;
- `list`: a dated price list we transcribed (`catalogues/<slug>.json`), only for a vendor that
  publishes neither; its offers are observed at the list's `as_of` date, so their age is true.

Cadence: marketplaces (prices and stock move by the minute) every 5 minutes, clouds and price pages
hourly, lists daily.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

__all__ = ["CADENCE", "VENDORS", "UnknownProvider", "Vendor", "vendor"]

Source = Literal["api", "page", "list"]
Kind = Literal["marketplace", "cloud"]
CADENCE: dict[str, int] = {"marketplace": 300, "cloud": 3600, "list": 86400}  # seconds between syncs (whole minutes)
DAILY_HOUR = 3  # lists sync daily at 03:MM UTC


@dataclass(frozen=True)
class Vendor:
    slug: str  # provider slug in every offer, e.g. "vastai"
    name: str  # shown in the Airflow Connections UI, the page and the API
    base_url: str  # where the hook's requests go live: the API's base URL, or the price page's site
    hook: str  # dotted path of its hook, e.g. "gpubroker_provider.hooks.vastai.VastAiHook"
    endpoint: str  # the primary call, e.g. "POST /api/v0/bundles/" or "GET /pricing" (a page)
    auth: str = "none"  # how the key travels, e.g. "Authorization: Bearer <key>"; "none" for public sources
    source: Source = "api"
    kind: Kind = "cloud"  # marketplaces sync every 5 minutes, clouds hourly (`cadence`)

    @property
    def api_key_required(self) -> bool:
        return self.source == "api" and self.auth != "none"

    @property
    def cadence(self) -> int:
        """Seconds between scheduled syncs."""
        return CADENCE["list" if self.source == "list" else self.kind]

    @property
    def offset(self) -> int:
        """Seconds into each cadence period at which the vendor syncs: spread by slug, so the hour's
        syncs do not all start at :00 (a whole minute, so it is also a cron schedule)."""
        minutes = zlib.crc32(self.slug.encode()) % min(self.cadence // 60, 60)
        return minutes * 60 + (DAILY_HOUR * 3600 if self.cadence == 86400 else 0)

    @property
    def schedule(self) -> str:
        """The cron expression of `cadence` and `offset` (what Airflow runs the vendor's sync DAG on)."""
        minute, hour = self.offset // 60 % 60, self.offset // 3600
        if self.cadence == 86400:
            return f"{minute} {hour} * * *"
        if self.cadence == 3600:
            return f"{minute} * * * *"
        step = self.cadence // 60
        return f"{minute}-59/{step} * * * *"

    def next_sync_after(self, moment: datetime) -> datetime:
        """When the vendor's next scheduled sync starts, after `moment` (UTC)."""
        epoch = int(moment.timestamp())
        periods = (epoch - self.offset) // self.cadence + 1
        return datetime.fromtimestamp(periods * self.cadence + self.offset, tz=timezone.utc)

    @property
    def source_url(self) -> str:
        """Where the prices are read: the primary call's URL, or the published list's page."""
        if self.source == "list":
            return self.base_url
        return self.base_url.rstrip("/") + self.endpoint.split()[1].split("?")[0]

    @property
    def conn_type(self) -> str:
        return f"gpubroker_{self.slug}"

    @property
    def default_conn_id(self) -> str:
        return self.conn_type


_H = "gpubroker_provider.hooks."
_BEARER = "Authorization: Bearer <key>"
VENDORS: dict[str, Vendor] = {
    v.slug: v
    for v in (
        # slug, name, live base URL, hook, primary call, auth, source, kind
        Vendor("vastai", "Vast.ai", "https://console.vast.ai", _H + "vastai.VastAiHook",
               "POST /api/v0/bundles/", _BEARER, kind="marketplace"),
        Vendor("runpod", "RunPod", "https://api.runpod.io", _H + "runpod.RunPodHook",
               "POST /graphql (gpuTypes)", "?api_key=<key>", kind="marketplace"),
        Vendor("lambda", "Lambda", "https://cloud.lambdalabs.com", _H + "lambda_cloud.LambdaHook",
               "GET /api/v1/instance-types", _BEARER),
        Vendor("aws", "AWS EC2 + SageMaker", "https://pricing.us-east-1.amazonaws.com", _H + "aws.AwsHook",
               "GET /offers/v1.0/aws/AmazonEC2/current/{region}/index.json"),
        Vendor("azure", "Microsoft Azure", "https://prices.azure.com", _H + "azure.AzureHook",
               "GET /api/retail/prices?$filter=..."),
        Vendor("gcp", "Google Cloud", "https://cloudbilling.googleapis.com", _H + "gcp.GcpHook",
               "GET /v1/services/6F81-5844-456A/skus", "?key=<key>"),
        Vendor("oci", "Oracle Cloud", "https://apexapps.oracle.com", _H + "oci.OciHook",
               "GET /pls/apex/cetools/api/v1/products/"),
        Vendor("vultr", "Vultr", "https://api.vultr.com", _H + "vultr.VultrHook",
               "GET /v2/plans?type=vcg", _BEARER),
        Vendor("datacrunch", "DataCrunch", "https://api.datacrunch.io", _H + "datacrunch.DataCrunchHook",
               "GET /v1/instance-types", "OAuth2 client credentials -> Bearer token"),
        Vendor("digitalocean", "DigitalOcean", "https://api.digitalocean.com", _H + "digitalocean.DigitalOceanHook",
               "GET /v2/sizes", _BEARER),
        Vendor("tensordock", "TensorDock", "https://dashboard.tensordock.com", _H + "tensordock.TensorDockHook",
               "GET /api/v2/locations", _BEARER, kind="marketplace"),
        Vendor("cudo", "Cudo Compute", "https://rest.compute.cudo.org", _H + "cudo.CudoHook",
               "GET /v1/vms/machine-types-2", _BEARER),
        Vendor("paperspace", "Paperspace", "https://www.paperspace.com", _H + "paperspace.PaperspaceHook",
               "GET /pricing", source="page"),
        Vendor("fluidstack", "FluidStack", "https://platform.fluidstack.io", _H + "fluidstack.FluidStackHook",
               "GET /list_available_configurations", "api-key: <key>"),
        Vendor("jarvislabs", "JarvisLabs", "https://jarvislabs.ai", _H + "jarvislabs.JarvisLabsHook",
               "GET /pricing", source="page"),
        Vendor("hyperstack", "Hyperstack", "https://infrahub-api.nexgencloud.com", _H + "hyperstack.HyperstackHook",
               "GET /v1/core/flavors", "api_key: <key>"),
        Vendor("nebius", "Nebius AI Cloud", "https://nebius.com", _H + "nebius.NebiusHook",
               "GET /prices", source="page"),
        Vendor("crusoe", "Crusoe Cloud", "https://www.crusoe.ai", _H + "crusoe.CrusoeHook",
               "GET /cloud/pricing", source="page"),
        Vendor("akash", "Akash Network", "https://console-api.akash.network", _H + "akash.AkashHook",
               "GET /v1/gpu-prices", kind="marketplace"),
        Vendor("lium", "Lium", "https://lium.io", _H + "lium.LiumHook",
               "GET /api/executors", "X-API-Key: <key>", kind="marketplace"),
        Vendor("ovh", "OVHcloud", "https://eu.api.ovh.com", _H + "ovh.OvhHook",
               "GET /1.0/order/catalog/public/cloud?ovhSubsidiary=FR"),
        Vendor("scaleway", "Scaleway", "https://api.scaleway.com", _H + "scaleway.ScalewayHook",
               "GET /instance/v1/zones/{zone}/products/servers", "X-Auth-Token: <key>"),
        Vendor("linode", "Akamai Linode", "https://api.linode.com", _H + "linode.LinodeHook",
               "GET /v4/linode/types (+ /v4/regions/availability)"),
        Vendor("coreweave", "CoreWeave", "https://www.coreweave.com", _H + "coreweave.CoreWeaveHook",
               "GET /pricing", source="page"),
        Vendor("genesiscloud", "Genesis Cloud", "https://www.genesiscloud.com",
               _H + "genesiscloud.GenesisCloudHook", "GET /pricing", source="page"),
        Vendor("cloudrift", "CloudRift", "https://api.cloudrift.ai", _H + "cloudrift.CloudRiftHook",
               "POST /api/v1/instance-types/list", kind="marketplace"),
        Vendor("thundercompute", "Thunder Compute", "https://api.thundercompute.com:8443",
               _H + "thundercompute.ThunderComputeHook", "GET /v1/pricing (+ /v1/specs)"),
        Vendor("clore", "Clore.ai", "https://api.clore.ai", _H + "clore.CloreHook",
               "GET /v1/marketplace", kind="marketplace"),
        Vendor("denvr", "Denvr Dataworks", "https://www.denvr.com", _H + "denvr.DenvrHook",
               "GET /pricing", source="page"),
        Vendor("shadeform", "Shadeform", "https://api.shadeform.ai", _H + "shadeform.ShadeformHook",
               "GET /v1/instances/types", "X-API-KEY: <key>"),
        Vendor("primeintellect", "Prime Intellect", "https://api.primeintellect.ai",
               _H + "primeintellect.PrimeIntellectHook", "GET /api/v1/availability/gpus", _BEARER),
        Vendor("lightning", "Lightning AI", "https://lightning.ai", _H + "lightning.LightningHook",
               "GET /v1/core/accelerators?cloudProvider=MACHINE (+ one call per cloud)"),
        Vendor("spheron", "Spheron", "https://app.spheron.ai", _H + "spheron.SpheronHook",
               "GET /api/gpu-offers", _BEARER, kind="marketplace"),
        Vendor("voltagepark", "Voltage Park", "https://www.voltagepark.com", _H + "voltagepark.VoltageParkHook",
               "GET /pricing", source="page"),
        Vendor("massedcompute", "Massed Compute", "https://massedcompute.com",
               _H + "massedcompute.MassedComputeHook", "GET /pricing", source="page"),
        Vendor("hyperbolic", "Hyperbolic", "https://api.hyperbolic.xyz", _H + "hyperbolic.HyperbolicHook",
               "POST /v1/marketplace", _BEARER, kind="marketplace"),
        Vendor("hotaisle", "Hot Aisle", "https://hotaisle.xyz", _H + "hotaisle.HotAisleHook",
               "GET /pricing/", source="page"),
        Vendor("tensorwave", "TensorWave", "https://tensorwave.com", _H + "tensorwave.TensorWaveHook",
               "GET /pricing", source="page"),
        Vendor("ionet", "io.net", "https://api.io.solutions", _H + "ionet.IoNetHook",
               "GET /enterprise/v1/io-cloud/caas/hardware", kind="marketplace"),
        Vendor("gcore", "Gcore", "https://api.gcore.com", _H + "gcore.GcoreHook",
               "GET /cloud/v3/gpu/{baremetal,virtual}/{project_id}/{region_id}/flavors?include_prices=true "
               "(+ /cloud/v1/projects, /cloud/v1/regions)", "Authorization: APIKey <key>"),
        Vendor("gmicloud", "GMI Cloud", "https://www.gmicloud.ai", _H + "gmicloud.GmiCloudHook",
               "GET /pricing", source="page"),
        Vendor("salad", "SaladCloud", "https://salad.com", _H + "salad.SaladHook", "GET /pricing", source="page"),
        Vendor("hetzner", "Hetzner", "https://www.hetzner.com", _H + "hetzner.HetznerHook",
               "GET /_resources/app/data/app/live_data_en_EUR.json"),
        Vendor("upcloud", "UpCloud", "https://api.upcloud.com", _H + "upcloud.UpCloudHook",
               "GET /1.3/plan (+ /1.3/price, /1.3/device/availability)", _BEARER),
        Vendor("novita", "Novita AI", "https://api.novita.ai", _H + "novita.NovitaHook",
               "GET /gpu-instance/openapi/v1/products", _BEARER),
        Vendor("seeweb", "Seeweb", "https://api.seeweb.it", _H + "seeweb.SeewebHook", "GET /ecs/v2/plans",
               "X-APITOKEN: <token>"),
        Vendor("leafcloud", "Leafcloud", "https://leaf.cloud", _H + "leafcloud.LeafcloudHook", "GET /pricing/",
               source="page"),
        Vendor("sesterce", "Sesterce", "https://api.cloud.sesterce.com", _H + "sesterce.SesterceHook",
               "GET /gpu-cloud/instances/offers", "X-API-KEY: <key>"),
        Vendor("aime", "AIME", "https://www.aime.info", _H + "aime.AimeHook", "GET /en/gpucloud/", source="page"),
        Vendor("e2enetworks", "E2E Networks", "https://www.e2enetworks.com", _H + "e2enetworks.E2eNetworksHook",
               "GET /pricing?region=us", source="page"),
        Vendor("together", "Together AI", "https://www.together.ai", _H + "together.TogetherHook",
               "GET /pricing", source="page"),
    )
}  # fmt: skip


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r}; known: {', '.join(sorted(VENDORS))}"


def vendor(slug: str) -> Vendor:
    try:
        return VENDORS[slug]
    except KeyError:
        raise UnknownProvider(slug) from None
