"""Airflow UI plugin (entry point `airflow.plugins`): a link to the data-quality reports."""

from airflow.plugins_manager import AirflowPlugin

from gpubroker import settings


class GpuBrokerPlugin(AirflowPlugin):
    name = "gpubroker"
    external_views = [
        {"name": "Data quality reports", "href": f"{settings.WEBAPP_URL}/dq/", "destination": "nav", "category": "browse"},
    ]
