"""Landing offer batches in PostgreSQL (tables owned by the webapp's Django migrations).

One transaction per batch: COPY into a temporary stage, one `INSERT ... ON CONFLICT` into `offers`,
price history for new and changed prices, vanished offers marked unavailable, and one outbox
event per changed price. Either all of it lands or none of it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from gpubroker import settings
from gpubroker.schema import OFFER_FIELDS, Offer, PriceUpdate, ProviderEvent

_COLUMNS = ", ".join(OFFER_FIELDS)
_UPDATES = ", ".join(f"{f} = EXCLUDED.{f}" for f in OFFER_FIELDS if f not in ("provider", "offer_id"))

# CTEs see the table as it was before the statement, so `previous` holds the old prices.
_UPSERT = f"""
WITH previous AS (
    SELECT o.provider, o.offer_id, o.price_per_hour
    FROM offers o JOIN offers_stage s USING (provider, offer_id)
), landed AS (
    INSERT INTO offers ({_COLUMNS}, first_seen, last_seen)
    SELECT {_COLUMNS}, observed_at, observed_at FROM offers_stage
    ON CONFLICT (provider, offer_id) DO UPDATE SET {_UPDATES}, last_seen = EXCLUDED.last_seen
    RETURNING provider, offer_id, price_per_hour, spot_price, observed_at
)
SELECT l.offer_id, p.price_per_hour AS old_price, l.price_per_hour, l.spot_price, l.observed_at
FROM landed l LEFT JOIN previous p USING (provider, offer_id)
WHERE p.price_per_hour IS DISTINCT FROM l.price_per_hour
"""


@dataclass(frozen=True)
class LandResult:
    offers: int  # rows upserted
    new: int  # offers seen for the first time
    changed: list[PriceUpdate]  # price changes of known offers, queued in the outbox
    vanished: int  # offers of this provider absent from the batch, now marked unavailable


def connect(url: str | None = None) -> psycopg.Connection:
    """Autocommit: every `conn.transaction()` block below is a real transaction, never a savepoint."""
    return psycopg.connect(url or settings.DATABASE_URL, autocommit=True)


def land(conn: psycopg.Connection, provider: str, offers: Sequence[Offer], observed_at: datetime) -> LandResult:
    """Upsert one provider's complete batch; queue `price_update` events for changed prices."""
    if any(o.provider != provider for o in offers):
        raise ValueError(f"batch for {provider!r} holds offers of another provider")
    by_id = {o.offer_id: o for o in offers}
    if len(by_id) != len(offers):
        raise ValueError(f"batch for {provider!r} repeats an offer_id")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE offers_stage ON COMMIT DROP AS SELECT {_COLUMNS} FROM offers WITH NO DATA")
        with cur.copy(f"COPY offers_stage ({_COLUMNS}) FROM STDIN") as copy:
            for offer in offers:
                copy.write_row(tuple(getattr(offer, f) for f in OFFER_FIELDS))
        cur.execute(_UPSERT)
        rows = cur.fetchall()
        cur.executemany(
            "INSERT INTO price_history (provider, offer_id, price_per_hour, spot_price, observed_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(provider, offer_id, price, spot, seen) for offer_id, _, price, spot, seen in rows],
        )
        changed = [PriceUpdate.between(by_id[offer_id], old) for offer_id, old, *_ in rows if old is not None]
        queue_events(cur, settings.Topics.PRICE_UPDATES, changed)
        cur.execute(
            "UPDATE offers SET availability = 'unavailable', available_count = 0"
            " WHERE provider = %s AND last_seen < %s AND availability <> 'unavailable'",
            (provider, observed_at),
        )
        vanished = cur.rowcount
        _provider_status(cur, provider, stale=False, reason="", good_rows=len(offers), good_at=observed_at)
    return LandResult(offers=len(offers), new=len(rows) - len(changed), changed=changed, vanished=vanished)


def _provider_status(cur, provider: str, stale: bool, reason: str, good_rows=None, good_at=None) -> None:
    cur.execute(
        "INSERT INTO provider_status (provider, last_good_at, last_good_rows, stale, stale_reason, updated_at)"
        " VALUES (%(p)s, %(at)s, %(rows)s, %(stale)s, %(reason)s, now())"
        " ON CONFLICT (provider) DO UPDATE SET stale = EXCLUDED.stale, stale_reason = EXCLUDED.stale_reason,"
        " updated_at = now(),"
        " last_good_at = COALESCE(EXCLUDED.last_good_at, provider_status.last_good_at),"
        " last_good_rows = COALESCE(EXCLUDED.last_good_rows, provider_status.last_good_rows)",
        {"p": provider, "at": good_at, "rows": good_rows, "stale": stale, "reason": reason},
    )


def last_good_rows(conn: psycopg.Connection, provider: str) -> int | None:
    row = conn.execute("SELECT last_good_rows FROM provider_status WHERE provider = %s", (provider,)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Quarantined:
    provider: str
    reason: str
    failures: list[dict]
    sample_rows: list[dict]
    rows: int
    raw_ref: str
    offers_ref: str
    at: datetime


def quarantine(conn: psycopg.Connection, q: Quarantined) -> None:
    """Keep a refused batch, mark the provider's served data stale, and say why on provider-events."""
    event = ProviderEvent(type="quarantine", provider=q.provider, status="stale", reason=q.reason,
                          details={"rows": q.rows, "failures": q.failures}, timestamp=q.at)  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO quarantine (provider, created_at, reason, failures, sample_rows, rows, raw_ref, offers_ref)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (q.provider, q.at, q.reason, Jsonb(q.failures), Jsonb(q.sample_rows), q.rows, q.raw_ref, q.offers_ref),
        )
        _provider_status(cur, q.provider, stale=True, reason=q.reason)
        queue_events(cur, settings.Topics.PROVIDER_EVENTS, [event])


def quarantines_since(conn: psycopg.Connection, since: datetime) -> int:
    return conn.execute("SELECT count(*) FROM quarantine WHERE created_at >= %s", (since,)).fetchone()[0]


def queue_events(cur: psycopg.Cursor, topic: str, events: Sequence[PriceUpdate | ProviderEvent]) -> None:
    cur.executemany(
        "INSERT INTO event_outbox (event_id, topic, key, payload, created_at)"
        " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (event_id) DO NOTHING",
        [(e.event_id, topic, e.key, Jsonb(e.model_dump(mode="json"))) for e in events],
    )


def current_price(conn: psycopg.Connection, provider: str, offer_id: str) -> Decimal | None:
    row = conn.execute(
        "SELECT price_per_hour FROM offers WHERE provider = %s AND offer_id = %s", (provider, offer_id)
    ).fetchone()
    return row[0] if row else None
