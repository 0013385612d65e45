"""The landing benches' strong baseline (upsert.py, ingest.py): `store.land` as a competent Django
developer would write it with the ORM, doing the same work, and the check that two landings left
the same tables.

`bulk_land`, in one `transaction.atomic()`: per chunk of offers, one query for the old price,
availability and observed_at of the chunk's known offers, one `bulk_create(update_conflicts=True)`
upsert (previous_price / previous_availability from that query; an offer observed later than the
batch is left alone, as `store.land` does), one `bulk_create` of price history for new and changed
prices and one of the outbox (one `OfferObserved` per offer); then the vanished offers (one query,
one update, their events) and the provider's status. No per-row statements.

Import it once Django is set up (`scratch.use`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice

import psycopg
from django.db import transaction
from django.db.models import F

from gpubroker import settings
from gpubroker.schema import OFFER_FIELDS, Offer, OfferObserved
from offers.models import EventOutbox, Offer as OfferRow, PriceHistory, ProviderStatus

_UPDATED = [f for f in OFFER_FIELDS if f not in ("provider", "offer_id")] + [
    "last_seen", "previous_price", "previous_availability"]  # fmt: skip
CHUNK = 5000  # offers per bulk_create: 1,000 was slower on 20,000 offers; 2,000, 5,000 and 10,000 alike

# each table's rows as two landings of the same batches must leave them: all columns but ids and
# wall-clock times; an event's payload compared as data (the SQL spells observed_at with microseconds)
_CONTENTS = {
    "offers": "SELECT to_jsonb(t) - 'id' FROM offers t",
    "price_history": "SELECT to_jsonb(t) - 'id' FROM price_history t",
    "event_outbox": "SELECT (to_jsonb(t) - 'id' - 'created_at') || jsonb_build_object('payload', jsonb_set("
    "t.payload, '{observed_at}', to_jsonb((t.payload->>'observed_at')::timestamptz))) FROM event_outbox t",
    "provider_status": "SELECT to_jsonb(t) - 'updated_at' FROM provider_status t",
}


def bulk_land(provider: str, offers: Iterable[Offer], observed_at: datetime, chunk: int = CHUNK) -> int:
    """Land one provider's complete batch of `Offer`s (see the module docstring); returns the offers upserted."""
    offers, seen, landed = iter(offers), set(), 0
    with transaction.atomic():
        while part := list(islice(offers, chunk)):
            landed += _land_chunk(provider, part, seen)
        _vanish(provider, observed_at)
        ProviderStatus.objects.update_or_create(provider=provider, defaults=dict(
            stale=False, stale_reason="", last_good_at=observed_at, last_good_rows=len(seen)))  # fmt: skip
    return landed


def _land_chunk(provider: str, offers: list[Offer], seen: set[str]) -> int:
    ids = {o.offer_id for o in offers}
    if len(ids) != len(offers) or ids & seen:
        raise ValueError(f"batch for {provider!r} repeats an offer_id")
    if any(o.provider != provider for o in offers):
        raise ValueError(f"batch for {provider!r} holds offers of another provider")
    seen |= ids
    known = {oid: (price, availability, at) for oid, price, availability, at in OfferRow.objects.filter(
        provider=provider, offer_id__in=ids).values_list("offer_id", "price_per_hour", "availability", "observed_at")}  # fmt: skip
    fresh = [o for o in offers if o.offer_id not in known or known[o.offer_id][2] <= o.observed_at]
    old = {o.offer_id: known.get(o.offer_id, (None, None))[:2] for o in fresh}
    OfferRow.objects.bulk_create(
        [OfferRow(**dict(o), first_seen=o.observed_at, last_seen=o.observed_at, previous_price=old[o.offer_id][0],
                  previous_availability=old[o.offer_id][1]) for o in fresh],
        update_conflicts=True, unique_fields=["provider", "offer_id"], update_fields=_UPDATED,
    )  # fmt: skip
    PriceHistory.objects.bulk_create(
        PriceHistory(provider=o.provider, offer_id=o.offer_id, price_per_hour=o.price_per_hour,
                     spot_price=o.spot_price, observed_at=o.observed_at)
        for o in fresh if old[o.offer_id][0] is None or old[o.offer_id][0] != o.price_per_hour
    )  # fmt: skip
    _queue(OfferObserved.of(o, *old[o.offer_id]) for o in fresh)
    return len(fresh)


def _vanish(provider: str, observed_at: datetime) -> None:
    """The provider's offers the batch no longer lists: marked unavailable, one event each."""
    gone = list(OfferRow.objects.filter(provider=provider, last_seen__lt=observed_at)
                .exclude(availability="unavailable").values(*OFFER_FIELDS, "pk"))  # fmt: skip
    OfferRow.objects.filter(pk__in=[g.pop("pk") for g in gone]).update(
        availability="unavailable", available_count=0,
        previous_price=F("price_per_hour"), previous_availability=F("availability"),
    )  # fmt: skip
    _queue(OfferObserved.of(Offer(**g | {"availability": "unavailable", "available_count": 0, "observed_at": observed_at}),
                            g["price_per_hour"], g["availability"]) for g in gone)  # fmt: skip


def _queue(events: Iterable[OfferObserved]) -> None:
    EventOutbox.objects.bulk_create(
        (EventOutbox(event_id=e.event_id, topic=settings.Topics.PRICE_UPDATES, key=e.key, payload=e.model_dump(mode="json"))
         for e in events), ignore_conflicts=True,
    )  # fmt: skip


def snapshot(conn: psycopg.Connection) -> None:
    """Keep what the landings so far left in the tables (in `conn`'s temporary tables) for `differences`."""
    for table, rows in _CONTENTS.items():
        conn.execute(f"DROP TABLE IF EXISTS kept_{table}")
        conn.execute(f"CREATE TEMP TABLE kept_{table} (row jsonb)")
        conn.execute(f"INSERT INTO kept_{table} {rows}")


def differences(conn: psycopg.Connection) -> dict[str, int]:
    """Per table, rows the snapshot holds and the table no longer does, and the other way round."""
    counts = {}
    for table, rows in _CONTENTS.items():
        (counts[table],) = conn.execute(
            f"SELECT count(*) FROM ((SELECT row FROM kept_{table} EXCEPT ALL {rows})"
            f" UNION ALL ({rows} EXCEPT ALL SELECT row FROM kept_{table})) d"
        ).fetchone()
    return counts


def same_tables(conn: psycopg.Connection, what: str) -> None:
    """Fail unless the tables hold what `snapshot` kept (`what`: the landing that should have matched)."""
    counts = differences(conn)
    if any(counts.values()):
        raise AssertionError(f"{what} left other table contents than store.land: {counts} rows differ")
    (rows,) = conn.execute("SELECT count(*) FROM kept_offers").fetchone()
    print(f"  {what}: same table contents as store.land ({rows:,} offers; history, outbox, status)")
