"""The vendor table's Airflow side: each vendor's hook class and connection type.

The table itself is plain data in `gpubroker.vendors` (the core, shared with the webapp and Flink).
Read by Airflow's ProvidersManager while Airflow itself is still importing, so this module imports
nothing from Airflow; hooks are named by dotted path and imported on demand.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gpubroker.vendors import VENDORS, UnknownProvider, Vendor, vendor

if TYPE_CHECKING:
    from gpubroker_provider.hooks.base import VendorHook

__all__ = ["VENDORS", "UnknownProvider", "Vendor", "connection_type_info", "hook_class", "vendor"]


def hook_class(slug: str) -> type[VendorHook]:
    """The hook class of a vendor (imported on first use); UnknownProvider for an unknown slug."""
    module, _, name = vendor(slug).hook.rpartition(".")
    return getattr(importlib.import_module(module), name)


def connection_type_info(row: Vendor) -> dict:
    """The vendor's Airflow connection type (provider.yaml's `connection-types` entry)."""
    return {
        "hook-class-name": row.hook,
        "hook-name": row.name,
        "connection-type": row.conn_type,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "API base URL" if row.source == "api" else "Site URL", "password": "API key"},
            "placeholders": {
                "host": f"{row.base_url} (empty = the vendor's own)",
                "password": "API key" if row.api_key_required else f"not needed: public {row.source}",
            },
        },
        "conn-fields": {},
    }
