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


async def offer_page(query: search.OfferQuery, data_version: int | None = None, owner: int | None = None) -> dict[str, Any]:
    """One page of offers for `query` (see `schemas.OfferPage`), the public ones and `owner`'s own
    (an API key's id; each item then says whether it is `owned`); BadQuery, NoData, DatabaseUnavailable."""
    found = search.build(query, VENDORS, owner)
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


HISTORY_LIMIT = 10_000  # prices one answer carries at most


async def offer_history(provider: str, offer_id: str, since: datetime | None, until: datetime | None) -> dict[str, Any] | None:
    """Every price one offer had from `since` to `until` (inclusive), oldest first, with its terms as
    last seen (see `schemas.OfferHistory`); None: no such offer."""
    terms = await offer_terms(provider, offer_id)
    if terms is None:
        return None
    rows = await db.fetch(
        "SELECT price_per_hour, spot_price, observed_at FROM price_history WHERE provider = %(p)s AND offer_id = %(o)s"
        " AND (%(since)s::timestamptz IS NULL OR observed_at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR observed_at <= %(until)s) ORDER BY observed_at LIMIT %(limit)s",
        {"p": provider, "o": offer_id, "since": since, "until": until, "limit": HISTORY_LIMIT},
    )  # fmt: skip
    return {"provider": provider, "offer_id": offer_id, **terms, "since": since, "until": until, "items": rows,
            "generated_at": datetime.now(timezone.utc)}  # fmt: skip
