"""GPUBroker Airflow provider: GPU vendor hooks normalising offers to one schema."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Provider metadata for Airflow's ProvidersManager (entry point `apache_airflow_provider`)."""
    from gpubroker_provider.vendors import VENDORS, connection_type_info

    return {
        "package-name": "gpubroker",
        "name": "GPUBroker",
        "description": "GPU price intelligence: one hook per GPU vendor, offers normalised to one schema.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "GPUBroker", "tags": ["service"]},
            {"integration-name": "GPUBroker Vault credentials", "tags": ["software"]},
            *({"integration-name": v.name, "tags": ["service"]} for v in VENDORS.values()),
        ],
        "hooks": [
            {"integration-name": "GPUBroker Vault credentials", "python-modules": ["gpubroker_provider.hooks.vault"]},
            *({"integration-name": v.name, "python-modules": [v.hook.rpartition(".")[0]]} for v in VENDORS.values()),
        ],
        "operators": [{"integration-name": "GPUBroker", "python-modules": ["gpubroker_provider.operators"]}],
        "connection-types": [connection_type_info(v) for v in VENDORS.values()],
    }
