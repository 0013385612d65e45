"""Operators of the GPUBroker provider: what the DAGs run, one provider per task instance."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from gpubroker_provider import sync


class FetchOffersOperator(BaseOperator):
    """Fetch one provider's listing under its circuit breaker and normalise it.

    Raw payload and offers go to the staging directory; the return value (XCom) is a small summary
    with their paths and counts, never the offers themselves.
    """

    template_fields = ("provider",)
    ui_color = "#d6eaf8"

    def __init__(self, *, provider: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.provider = provider

    def execute(self, context: Any) -> dict:
        summary = sync.fetch_offers(self.provider)
        if summary["unknown_gpus"]:
            self.log.warning("%s: GPU names not in the registry: %s", self.provider, summary["unknown_gpus"])
        return summary


class ProviderHealthOperator(BaseOperator):
    """Probe one provider with its cheapest call; record outcome and latency in its breaker."""

    template_fields = ("provider",)

    def __init__(self, *, provider: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.provider = provider

    def execute(self, context: Any) -> dict:
        return sync.probe(self.provider)
