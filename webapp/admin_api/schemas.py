"""What the admin API takes and answers (the OpenAPI document is made from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from offers.api import Provider


class SyncIn(Schema):
    providers: list[Provider] = Field(min_length=1, max_length=len(Provider), description="vendor slugs to sync")


class JobOut(Schema):
    id: int
    kind: Literal["warm", "sync"]
    providers: list[str] = Field(description="the vendors of a sync")
    state: Literal["queued", "running", "succeeded", "failed"]
    via: Literal["airflow", "in-process"] = Field(description="a DAG run in Airflow, or the webapp's own worker")
    run_id: str | None = Field(description="the Airflow DAG run's id (via airflow)")
    result: dict | None = Field(description="what it did (in-process): `warmed` {path: HTTP status}, and for a "
                                            "sync `synced` {provider: summary}")  # fmt: skip
    error: str | None = Field(description="why it failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
