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
    api_key_required: bool = True

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


VENDORS: dict[str, Vendor] = {
    v.slug: v
    for v in (
        Vendor("vastai", "Vast.ai", "https://console.vast.ai", "gpubroker_provider.hooks.vastai.VastAiHook"),
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
