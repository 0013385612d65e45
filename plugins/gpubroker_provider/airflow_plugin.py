"""Airflow plugin (entry point `airflow.plugins`): a link to the data-quality reports, and the syncs'
priority weight strategy (`priority.ProviderWeight`)."""

from airflow.plugins_manager import AirflowPlugin

from gpubroker import settings
from gpubroker_provider.priority import ProviderWeight


class GpuBrokerPlugin(AirflowPlugin):
    name = "gpubroker"
    external_views = [
        {"name": "Data quality reports", "href": f"{settings.WEBAPP_URL}/dq/", "destination": "nav", "category": "browse"},
    ]
    priority_weight_strategies = [ProviderWeight]
