"""REST API v1, offers: search, point in time, history, cheapest per region, provider status.

Async views over plain SQL (gpubroker_web.db); answers are rendered once with orjson and marked
cacheable, so the gateway serves repeats from its two-tier cache. Bad parameters are 4xx with a
message (422 for shapes, text with NUL included; 400 for names GPUBroker does not know or paging past
the end); views raise, and gpubroker_web/api.py's handlers answer.
"""

from __future__ import annotations

import asyncio

from datetime import datetime, timezone
from enum import StrEnum

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from gpubroker import gpus, search
from gpubroker.vendors import VENDORS
from gateway.callers import data_version
from gpubroker_web import db
from gpubroker_web.responses import PRICING_TTL, STATIC_TTL, json_response
from offers import health, providers, queries, schemas

router = Router(tags=["offers"])
Provider = StrEnum("Provider", {slug: slug for slug in sorted(VENDORS)})


class OfferQuery(search.OfferQuery):
    """The search's parameters, with the provider slugs spelt out (so the OpenAPI document lists them)."""

    provider: list[Provider] | None = Field(None, description="provider slug; repeat for several: provider=vastai&provider=lambda")


OfferId = search.text(200)  # as the vendor names it (offers.offer_id)


@router.get("/offers", response={200: schemas.OfferPage, **schemas.ERRORS}, summary="Search GPU offers")
async def list_offers(request: HttpRequest, query: Query[OfferQuery]):
    """Offers matching every filter given, sorted (cheapest first by default), one page at a time.

    `warnings` says when a filter was read differently (a GPU alias) and when a provider in the
    answer is served from stale data or is unhealthy. With `at`, prices are those of that moment.
    """
    return json_response(await queries.offer_page(query, data_version(request)), max_age=PRICING_TTL)


class HistoryQuery(Schema):
    since: search.Timestamp | None = Field(None, description="from this time (ISO 8601 with timezone)")
    until: search.Timestamp | None = Field(None, description="up to this time, inclusive (before `since`: no prices)")


@router.get("/offers/{provider}/{offer_id}/history", response={200: schemas.OfferHistory, 404: schemas.Error, **schemas.ERRORS},
            summary="Every price one offer had")  # fmt: skip
async def offer_history(request: HttpRequest, provider: str, offer_id: OfferId, query: Query[HistoryQuery]):
    if provider not in VENDORS:
        raise HttpError(404, f"unknown provider {provider!r}")
    history = await queries.offer_history(provider, offer_id, query.since, query.until)
    if history is None:
        raise HttpError(404, f"no offer {offer_id!r} at {provider}")
    return json_response(history, max_age=PRICING_TTL)


@router.get("/gpus/{gpu}/cheapest", response={200: schemas.CheapestOut, 404: schemas.Error, **schemas.ERRORS},
            summary="Cheapest offer per region")  # fmt: skip
async def cheapest(request: HttpRequest, gpu: str):
    """`gpu`: any name of the model (H100, 'RTX 4090'); 404 for a GPU the registry does not know."""
    try:
        model = gpus.resolve(gpu).model.name
    except gpus.UnknownGpu:
        raise HttpError(404, f"unknown GPU model {gpu!r}; use a name such as H100, A100, RTX4090") from None
    found = search.build(search.OfferQuery(gpu=model, availability=["available", "limited", "unknown"],
                                           per_page=search.MAX_PER_PAGE), VENDORS)  # fmt: skip
    rows = await db.fetch(found.sql, found.params)
    now = datetime.now(timezone.utc)
    regions: dict[str, dict] = {}
    for row in rows:  # cheapest first: the first offer of each region is its cheapest
        regions.setdefault(row["region"], search.item(row, now))
    return json_response({"gpu": model, "regions": regions, "generated_at": now}, max_age=PRICING_TTL)


@router.get("/health", response={200: schemas.GatewayHealth, **schemas.ERRORS}, summary="The gateway's health")
async def gateway_health(request: HttpRequest):
    """PostgreSQL, Redis, Kafka, Flink's jobs, Airflow, open WebSockets, each provider (health, weight,
    latency, breaker, score) and Vault, probed at most every 5 s and never waited on past 0.5 s
    (`/readyz` stays what orchestrators use). 200 whatever the status: the body says what is down."""
    return json_response(await health.report(), max_age=int(health.PROBE_SECONDS))


@router.get("/providers", response={200: schemas.ProviderList, **schemas.ERRORS}, summary="Every provider's status")
async def list_providers(request: HttpRequest):
    """Per provider: health, latency, breaker state, last good sync, offer count, staleness, last quarantine;
    and the health of the Vault the syncs read vendor keys from."""
    items, vault = await asyncio.gather(providers.statuses(), providers.vault())
    return json_response({"items": items, "vault": vault, "generated_at": datetime.now(timezone.utc)},
                         max_age=STATIC_TTL // 10)  # fmt: skip
