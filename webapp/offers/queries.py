"""Offer search shared by the REST API and the WebSocket `get_offers` message (async, plain SQL)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from gpubroker import search
from gpubroker.vendors import VENDORS
from gpubroker_web import db
from offers import providers


class NoData(RuntimeError):
    """Nothing has landed yet: there is no offer to search (the API answers 503 with Retry-After)."""


async def offer_page(query: search.OfferQuery, data_version: int | None = None) -> dict[str, Any]:
    """One page of offers for `query` (see `schemas.OfferPage`); BadQuery, NoData, DatabaseUnavailable."""
    found = search.build(query, VENDORS)
    rows, statuses = await asyncio.gather(db.fetch(found.sql, found.params), providers.statuses())
    total = rows[0]["total"] if rows else (await db.fetch_one(found.count_sql, found.params))["total"]
    if total == 0 and await db.fetch_one("SELECT 1 AS any FROM offers LIMIT 1") is None:
        raise NoData("no offers have landed yet: the first sync is still running")
    now = datetime.now(timezone.utc)
    return {
        "total": total, "items": [search.item(r, now) for r in rows], "page": query.page,
        "per_page": query.per_page, "has_next": (query.page - 1) * query.per_page + len(rows) < total,
        "warnings": found.warnings + providers.warnings(statuses, found.providers),
        "generated_at": now, "data_version": data_version, "at": query.at,
    }  # fmt: skip


async def offer_terms(provider: str, offer_id: str) -> dict[str, Any] | None:
    """How an offer's prices are bought and its GPUs connected, as last seen (`schemas.OfferHistory`
    carries them beside its prices): {pricing_type, commitment_months, interconnect}; None: no such offer."""
    return await db.fetch_one(
        "SELECT pricing_type, commitment_months, interconnect FROM offers WHERE provider = %s AND offer_id = %s",
        (provider, offer_id),
    )
