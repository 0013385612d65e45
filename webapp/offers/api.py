"""REST API v1 (django-ninja; OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest
from ninja import Field, NinjaAPI, Query, Schema, Status

from offers.queries import MAX_PER_PAGE, BadFilter, OfferFilter, cheapest_per_region, search

api = NinjaAPI(title="GPUBroker API", version="1", description="GPU offers across vendors, live.")


class OfferOut(Schema):
    provider: str
    offer_id: str
    instance_type: str
    gpu_model: str
    gpu_form_factor: str | None
    gpu_vendor: str
    gpu_count: int
    gpu_memory_gb: float
    vcpus: int | None
    ram_gb: float | None
    disk_gb: float | None
    price_per_hour: float
    spot_price: float | None
    region: str
    country: str | None
    continent: str | None
    availability: str
    available_count: int | None
    cpu_arch: str | None
    observed_at: datetime
    first_seen: datetime
    last_seen: datetime


class OfferPage(Schema):
    total: int
    items: list[OfferOut]
    page: int
    per_page: int
    has_next: bool
    warnings: list[str]


class OfferQuery(Schema):
    gpu: str | None = Field(None, description="GPU model, canonical or any vendor alias (H100, 'RTX 4090')")
    provider: str | None = Field(None, description="provider slug, e.g. vastai")
    region: str | None = Field(None, description="vendor region, case-insensitive")
    max_price: Decimal | None = Field(None, gt=0, description="USD per hour for the whole offer")
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=MAX_PER_PAGE)


class Error(Schema):
    detail: str


@api.get("/offers", response={200: OfferPage, 400: Error}, summary="Search GPU offers, cheapest first")
def list_offers(request: HttpRequest, query: Query[OfferQuery]):
    filters = OfferFilter(gpu=query.gpu, provider=query.provider, region=query.region, max_price=query.max_price)
    try:
        return search(filters, query.page, query.per_page)
    except BadFilter as error:
        return Status(400, {"detail": str(error)})


class CheapestOut(Schema):
    gpu: str
    regions: dict[str, dict]
    source: str  # "cache" (precomputed, <= 60 s old) or "database"


@api.get("/gpus/{gpu}/cheapest", response={200: CheapestOut, 400: Error}, summary="Cheapest offer per region")
def cheapest(request: HttpRequest, gpu: str):
    try:
        return cheapest_per_region(gpu)
    except BadFilter as error:
        return Status(400, {"detail": str(error)})
