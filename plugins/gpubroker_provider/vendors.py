"""The vendor table: every GPU vendor GPUBroker knows, as plain data.

Read by Airflow's ProvidersManager while Airflow itself is still importing, so this module
imports nothing from Airflow; hooks are named by dotted path and imported on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpubroker_provider.hooks.base import VendorHook


@dataclass(frozen=True)
class Vendor:
    slug: str  # provider slug in every offer, e.g. "vastai"
    name: str  # shown in the Airflow Connections UI
    base_url: str  # the vendor's live API
    hook: str  # dotted path of its VendorHook
    endpoint: str  # the primary listing call, e.g. "POST /api/v0/bundles/" (what `gpubroker normalize` reads)
    auth: str  # how the key travels, e.g. "Authorization: Bearer <key>"; "none" for public APIs
    mode: str = "api"  # "api": the vendor's live API; "static": a dated price list in catalogues/

    @property
    def api_key_required(self) -> bool:
        return self.mode == "api" and self.auth != "none"

    @property
    def conn_type(self) -> str:
        return f"gpubroker_{self.slug}"

    @property
    def default_conn_id(self) -> str:
        return self.conn_type

    def hook_class(self) -> type[VendorHook]:
        module, _, name = self.hook.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def connection_type_info(self) -> dict:
        return {
            "hook-class-name": self.hook,
            "hook-name": self.name,
            "connection-type": self.conn_type,
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "login", "port", "extra"],
                "relabeling": {"host": "API base URL", "password": "API key"},
                "placeholders": {
                    "host": f"{self.base_url} (empty = live API)",
                    "password": "API key" if self.api_key_required else "not needed: public API",
                },
            },
            "conn-fields": {},
        }


_H = "gpubroker_provider.hooks."
VENDORS: dict[str, Vendor] = {
    v.slug: v
    for v in (
        # slug, name, live base URL, hook, primary listing call, auth, mode
        Vendor("vastai", "Vast.ai", "https://console.vast.ai", _H + "vastai.VastAiHook",
               "POST /api/v0/bundles/", "Authorization: Bearer <key>"),
        Vendor("runpod", "RunPod", "https://api.runpod.io", _H + "runpod.RunPodHook",
               "POST /graphql (gpuTypes)", "?api_key=<key>"),
        Vendor("lambda", "Lambda", "https://cloud.lambdalabs.com", _H + "lambda_cloud.LambdaHook",
               "GET /api/v1/instance-types", "Authorization: Bearer <key>"),
        Vendor("aws", "AWS EC2 + SageMaker", "https://pricing.us-east-1.amazonaws.com", _H + "aws.AwsHook",
               "GET /offers/v1.0/aws/AmazonEC2/current/{region}/index.json", "none"),
        Vendor("azure", "Microsoft Azure", "https://prices.azure.com", _H + "azure.AzureHook",
               "GET /api/retail/prices?$filter=...", "none"),
        Vendor("gcp", "Google Cloud", "https://cloudbilling.googleapis.com", _H + "gcp.GcpHook",
               "GET /v1/services/6F81-5844-456A/skus", "?key=<key>"),
        Vendor("oci", "Oracle Cloud", "https://apexapps.oracle.com", _H + "oci.OciHook",
               "GET /pls/apex/cetools/api/v1/products/", "none"),
        Vendor("vultr", "Vultr", "https://api.vultr.com", _H + "vultr.VultrHook",
               "GET /v2/plans?type=vcg", "Authorization: Bearer <key>"),
        Vendor("datacrunch", "DataCrunch", "https://api.datacrunch.io", _H + "datacrunch.DataCrunchHook",
               "GET /v1/instance-types", "OAuth2 client credentials -> Bearer token"),
        Vendor("digitalocean", "DigitalOcean", "https://api.digitalocean.com", _H + "digitalocean.DigitalOceanHook",
               "GET /v2/sizes", "Authorization: Bearer <key>"),
        Vendor("tensordock", "TensorDock", "https://dashboard.tensordock.com", _H + "tensordock.TensorDockHook",
               "GET /api/v2/locations", "Authorization: Bearer <key>"),
        Vendor("cudo", "Cudo Compute", "https://rest.compute.cudo.org", _H + "cudo.CudoHook",
               "GET /v1/vms/machine-types-2", "Authorization: Bearer <key>"),
        Vendor("paperspace", "Paperspace", "https://www.paperspace.com/pricing", _H + "paperspace.PaperspaceHook",
               "published price list", "none", "static"),
        Vendor("fluidstack", "FluidStack", "https://platform.fluidstack.io", _H + "fluidstack.FluidStackHook",
               "GET /list_available_configurations", "api-key: <key>"),
        Vendor("jarvislabs", "JarvisLabs", "https://jarvislabs.ai/pricing", _H + "jarvislabs.JarvisLabsHook",
               "published price list", "none", "static"),
        Vendor("hyperstack", "Hyperstack", "https://infrahub-api.nexgencloud.com", _H + "hyperstack.HyperstackHook",
               "GET /v1/core/flavors", "api_key: <key>"),
        Vendor("nebius", "Nebius AI Cloud", "https://nebius.com/prices", _H + "nebius.NebiusHook",
               "published price list", "none", "static"),
        Vendor("crusoe", "Crusoe Cloud", "https://crusoe.ai/cloud/pricing", _H + "crusoe.CrusoeHook",
               "published price list", "none", "static"),
        Vendor("akash", "Akash Network", "https://console-api.akash.network", _H + "akash.AkashHook",
               "GET /v1/gpu-prices", "none"),
        Vendor("lium", "Lium", "https://lium.io", _H + "lium.LiumHook",
               "GET /api/executors", "X-API-Key: <key>"),
        Vendor("ovh", "OVHcloud", "https://eu.api.ovh.com", _H + "ovh.OvhHook",
               "GET /1.0/order/catalog/public/cloud?ovhSubsidiary=FR", "none"),
        Vendor("scaleway", "Scaleway", "https://api.scaleway.com", _H + "scaleway.ScalewayHook",
               "GET /instance/v1/zones/{zone}/products/servers", "X-Auth-Token: <key>"),
        Vendor("linode", "Akamai Linode", "https://api.linode.com", _H + "linode.LinodeHook",
               "GET /v4/linode/types (+ /v4/regions/availability)", "none"),
        Vendor("coreweave", "CoreWeave", "https://www.coreweave.com/pricing", _H + "coreweave.CoreWeaveHook",
               "published price list", "none", "static"),
        Vendor("genesiscloud", "Genesis Cloud", "https://www.genesiscloud.com/pricing",
               _H + "genesiscloud.GenesisCloudHook", "published price list", "none", "static"),
    )
}


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r}; known: {', '.join(sorted(VENDORS))}"


def vendor(slug: str) -> Vendor:
    try:
        return VENDORS[slug]
    except KeyError:
        raise UnknownProvider(slug) from None
