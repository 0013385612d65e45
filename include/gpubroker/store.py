"""Landing offer batches in PostgreSQL (tables owned by the webapp's Django migrations).

One transaction per batch, landed chunk by chunk (`Landing`: each chunk while the caller parses the
next): COPY into a temporary stage, one `INSERT ... ON CONFLICT` into `offers` per chunk, price
history for new and changed prices; then vanished offers marked unavailable; and the outbox:
one `offer_observed` event (`gpubroker.schema.OfferObserved`) per offer of the batch and per offer
that vanished, carrying the previous price and availability that only this transaction knows. All
of it is bulk SQL (no per-row round trips); either all of it lands or none of it does. Classifying
changes (percent, direction), anomalies and aggregates are the stream's (flink/README.md).

A batch observed before the data already landed (a late retry, an approved old quarantine) changes
no offer it has in common with it: offers move only forward in `observed_at`, and such offers get no
history row and no event. Retention: `price_history` keeps one row per price change (not per
observation) for good — it is the product's history, small next to the offers it describes; the
outbox's published rows are deleted after `settings.OUTBOX_RETENTION_DAYS` (events.prune_published).

An owner's batch (landed with an API key's own vendor credentials, `land_owned`) goes to
`owned_offers` instead, keyed by owner too: no price history, no events, no provider status.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import get_args, get_origin

import psycopg
from psycopg.types.json import Jsonb

from gpubroker import settings
from gpubroker.schema import OFFER_FIELDS, Offer, OfferObserved, ProviderEvent

_COLUMNS = ", ".join(OFFER_FIELDS)
_UPDATES = ", ".join(f"{f} = EXCLUDED.{f}" for f in OFFER_FIELDS if f not in ("provider", "offer_id"))


# OfferObserved as SQL over a row `e` of offers columns plus old_price, old_availability, and the
# observation time spelled once (`seen`); the id is `schema.observation_id`'s (tests keep them equal).
_OBSERVED = {
    "type": "'offer_observed'",
    "event_id": "e.event_id",
    "provider": "e.provider",
    "offer_id": "e.offer_id",
    "gpu": "e.gpu_model",
    "gpu_form_factor": "e.gpu_form_factor",
    "gpu_count": "e.gpu_count",
    "region": "e.region",
    "country": "e.country",
    "continent": "e.continent",
    "price_per_hour": "e.price_per_hour",
    "price_per_gpu": "round(e.price_per_hour / e.gpu_count, 4)",
    "spot_price": "e.spot_price",
    "availability": "e.availability",
    "available_count": "e.available_count",
    "old_price": "e.old_price",
    "old_availability": "e.old_availability",
    "interconnect": "e.interconnect",
    "pricing_type": "e.pricing_type",
    "commitment_months": "e.commitment_months",
    "observed_at": "e.seen",
    "landed_at": "NULL::text",  # stamped by the outbox relay with the commit time (events.publish_pending)
}
assert tuple(_OBSERVED) == tuple(OfferObserved.model_fields), "the outbox payload must be an OfferObserved"
# to_jsonb of a row of these columns: the same value as jsonb_build_object, in 0.72 s instead of 1.03 s per
# 100k offers (the outbox insert 3.3 -> 2.8 s)
_PAYLOAD_ROW = "SELECT " + ", ".join(f"{v} AS {k}" for k, v in _OBSERVED.items())


def _queue_observed(rows: str) -> str:
    """An outbox insert of one `offer_observed` event per row of the CTE `rows` (seen_at: observation time)."""
    seen = """to_char(r.seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return f"""INSERT INTO event_outbox (event_id, topic, key, payload, created_at)
    SELECT e.event_id, '{settings.Topics.PRICE_UPDATES}', e.provider || ':' || e.offer_id, to_jsonb(observed_event), now()
    FROM (SELECT r.*, s.seen, md5(r.provider || ':' || r.offer_id || '@' || s.seen)::uuid AS event_id
          FROM {rows} r, LATERAL (SELECT {seen} AS seen) s) e, LATERAL ({_PAYLOAD_ROW}) observed_event
    ON CONFLICT (event_id) DO NOTHING"""


# The old price and availability of each offer come through the conflict itself (`previous_*` set from
# the row being replaced): no statement here joins or looks up `offers`, so no plan can turn into a
# scan of it per row when its statistics are off (an autoanalyze that caught a first big landing
# uncommitted says the table is empty, while the landing's own rows are there).
_UPSERT = f"""
WITH landed AS (
    INSERT INTO offers ({_COLUMNS}, first_seen, last_seen)
    SELECT {_COLUMNS}, observed_at, observed_at FROM offers_stage
    ON CONFLICT (provider, offer_id) DO UPDATE SET {_UPDATES}, last_seen = EXCLUDED.last_seen,
        previous_price = offers.price_per_hour, previous_availability = offers.availability
    WHERE offers.observed_at <= EXCLUDED.observed_at  -- an older batch never overwrites newer data
    RETURNING {_COLUMNS}, observed_at AS seen_at, previous_price AS old_price, previous_availability AS old_availability
), history AS (
    INSERT INTO price_history (provider, offer_id, price_per_hour, spot_price, observed_at)
    SELECT provider, offer_id, price_per_hour, spot_price, observed_at FROM landed
    WHERE old_price IS DISTINCT FROM price_per_hour
), outbox AS (
    {_queue_observed("landed")}
)
SELECT count(*), count(*) FILTER (WHERE old_price IS NULL), count(*) FILTER (WHERE old_price <> price_per_hour)
FROM landed
"""

# Offers of the provider the batch no longer lists (SET reads the row as it was: previous_* get the old values).
_VANISH = f"""
WITH gone AS (
    UPDATE offers SET availability = 'unavailable', available_count = 0,
        previous_price = price_per_hour, previous_availability = availability
    WHERE provider = %(provider)s AND last_seen < %(at)s AND availability <> 'unavailable'
    RETURNING {_COLUMNS}, %(at)s::timestamptz AS seen_at, price_per_hour AS old_price, previous_availability AS old_availability
), outbox AS (
    {_queue_observed("gone")}
)
SELECT count(*) FROM gone
"""


@dataclass(frozen=True)
class LandResult:
    offers: int  # rows upserted (each queued as an `offer_observed` event); a late batch's older rows are not
    new: int  # offers seen for the first time
    changed: int  # known offers whose price changed
    vanished: int  # offers of this provider absent from the batch, now marked unavailable (and queued)


def _holds_tuples(annotation: object) -> bool:
    return get_origin(annotation) is tuple or any(get_origin(a) is tuple for a in get_args(annotation))


# the fields held as tuples (e.g. `inferred`): COPY takes them as arrays, that is lists
_TUPLE_FIELDS = tuple(i for i, f in enumerate(Offer.model_fields.values()) if _holds_tuples(f.annotation))


def row(offer: Offer) -> tuple:
    """The offer as a COPY row, its fields in OFFER_FIELDS order (one per offer of a batch: kept cheap)."""
    values = list(offer.__dict__.values())
    for i in _TUPLE_FIELDS:
        if values[i] is not None:
            values[i] = list(values[i])
    return tuple(values)


assert tuple(Offer.model_fields) == OFFER_FIELDS  # an Offer's __dict__ holds its fields in this order


def connect(url: str | None = None) -> psycopg.Connection:
    """Autocommit: every `conn.transaction()` block below is a real transaction, never a savepoint."""
    return psycopg.connect(url or settings.DATABASE_URL, autocommit=True)


def land(conn: psycopg.Connection, provider: str, offers: Iterable[Offer], observed_at: datetime) -> LandResult:
    """Upsert one provider's complete batch; queue one `offer_observed` event per offer and per vanished offer."""
    return land_rows(conn, provider, (row(o) for o in offers), observed_at)


def land_rows(conn: psycopg.Connection, provider: str, rows: Iterable[tuple], observed_at: datetime) -> LandResult:
    """`land` for a batch given as `row`s, streamed into PostgreSQL as they come (a batch of any size
    is never held twice). Offers of another provider, or an offer_id twice, refuse it (ValueError)."""
    with landing(conn, provider) as batch:
        batch.add(rows)
        return batch.finish(observed_at)


class Landing:
    """One provider's batch landed chunk by chunk while the caller is still producing it (`landing`).

    Each chunk handed to `add` is upserted in a thread of the landing's own (COPY, upsert, history,
    outbox), in order, inside the batch's one transaction: PostgreSQL upserts one chunk while Python
    parses the next, so a large batch uses two cores instead of taking turns on one. `finish` waits
    for the chunks, marks the offers the batch no longer lists as vanished and returns the counts;
    `cancel` (or an error) rolls all of it back. Until `finish` or the end of `landing`, the
    connection belongs to the landing's thread.
    """

    def __init__(self, conn: psycopg.Connection, provider: str, worker: ThreadPoolExecutor):
        self.conn, self.provider, self._worker = conn, provider, worker
        self._chunks: list[Future] = []
        self._offer_ids: set[str] = set()
        self.cancelled = self.finished = self._failed = False

    def add(self, rows: Iterable[tuple]) -> None:
        """Queue one chunk of `row`s (consumed in the landing's thread)."""
        self._still_open()
        self._chunks.append(self._worker.submit(self._land_chunk, rows, first=not self._chunks))

    def finish(self, observed_at: datetime) -> LandResult:
        """Wait for every chunk (raising the first one's error), then mark the vanished offers."""
        counts = [chunk.result() for chunk in self._chunks]  # a chunk's error first
        self._still_open()
        staged, offers, new, changed = (sum(c) for c in zip((0, 0, 0, 0), *counts))
        with self.conn.cursor() as cur:
            (vanished,) = cur.execute(_VANISH, {"provider": self.provider, "at": observed_at}).fetchone()
            _provider_status(cur, self.provider, stale=False, reason="", good_rows=staged, good_at=observed_at)
        self.finished = True
        return LandResult(offers=offers, new=new, changed=changed, vanished=vanished)

    def _still_open(self) -> None:
        if self.finished or self.cancelled:
            raise RuntimeError(f"the landing of {self.provider!r} is {'finished' if self.finished else 'cancelled'}")

    def cancel(self) -> None:
        """Land nothing: chunks not started yet are skipped, and `landing` rolls back what was."""
        self.cancelled = True

    def _land_chunk(self, rows: Iterable[tuple], first: bool) -> tuple[int, int, int, int]:
        """(rows staged, offers upserted, new, changed) of one chunk."""
        if self.cancelled or self._failed:
            return 0, 0, 0, 0
        try:
            return self._upsert(rows, first)
        except BaseException:
            self._failed = True  # the transaction is lost: the chunks after this one are skipped
            raise

    def _upsert(self, rows: Iterable[tuple], first: bool) -> tuple[int, int, int, int]:
        staged = len(self._offer_ids)
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE offers_stage ON COMMIT DROP AS SELECT {_COLUMNS} FROM offers WITH NO DATA"
                        if first else "TRUNCATE offers_stage")  # fmt: skip
            with cur.copy(f"COPY offers_stage ({_COLUMNS}) FROM STDIN") as copy:
                for r in rows:
                    if r[_OFFER_ID] in self._offer_ids:
                        raise ValueError(f"batch for {self.provider!r} repeats an offer_id")
                    self._offer_ids.add(r[_OFFER_ID])
                    copy.write_row(r)
            if cur.execute(_FOREIGN, (self.provider,)).fetchone()[0]:
                raise ValueError(f"batch for {self.provider!r} holds offers of another provider")
            return len(self._offer_ids) - staged, *cur.execute(_UPSERT).fetchone()


@contextmanager
def landing(conn: psycopg.Connection, provider: str) -> Iterator[Landing]:
    """A `Landing` in a transaction of its own: committed when the block ends, unless it was cancelled
    or the block raised. The landing's thread is idle again before the transaction ends."""
    with conn.transaction() as transaction, ThreadPoolExecutor(1, thread_name_prefix=f"land-{provider}") as worker:
        batch = Landing(conn, provider, worker)
        try:
            yield batch
        except BaseException:
            batch.cancel()
            raise
        finally:
            wait(batch._chunks)
        if batch.cancelled:
            raise psycopg.Rollback(transaction)
        if not batch.finished:
            for chunk in batch._chunks:
                chunk.result()  # a chunk's error, if one failed
            raise RuntimeError("a landing must be finished or cancelled")


_FOREIGN = "SELECT count(*) FILTER (WHERE provider IS DISTINCT FROM %s) FROM offers_stage"
_OFFER_ID = OFFER_FIELDS.index("offer_id")


# --- offers of one owner (an API key's provider integration) --------------------------------------
_UPSERT_OWNED = f"""
WITH landed AS (
    INSERT INTO owned_offers (owner_id, {_COLUMNS}, first_seen, last_seen)
    SELECT %(owner)s, {_COLUMNS}, observed_at, observed_at FROM offers_stage
    ON CONFLICT (owner_id, provider, offer_id) DO UPDATE SET {_UPDATES}, last_seen = EXCLUDED.last_seen,
        previous_price = owned_offers.price_per_hour, previous_availability = owned_offers.availability
    WHERE owned_offers.observed_at <= EXCLUDED.observed_at
    RETURNING price_per_hour, previous_price
)
SELECT count(*), count(*) FILTER (WHERE previous_price IS NULL), count(*) FILTER (WHERE previous_price <> price_per_hour)
FROM landed
"""
_VANISH_OWNED = """
UPDATE owned_offers SET availability = 'unavailable', available_count = 0,
    previous_price = price_per_hour, previous_availability = availability
WHERE owner_id = %(owner)s AND provider = %(provider)s AND last_seen < %(at)s AND availability <> 'unavailable'
"""


def land_owned(conn: psycopg.Connection, owner: int, provider: str, offers: Iterable[Offer], observed_at: datetime) -> LandResult:
    """Upsert one owner's batch of one provider into `owned_offers` in one transaction; the owner's
    offers of that provider the batch no longer lists become unavailable. Only that owner's rows are
    touched; no price history and no events (both are public)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE offers_stage ON COMMIT DROP AS SELECT {_COLUMNS} FROM offers WITH NO DATA")
        with cur.copy(f"COPY offers_stage ({_COLUMNS}) FROM STDIN") as copy:
            for offer in offers:
                copy.write_row(row(offer))
        if cur.execute(_FOREIGN, (provider,)).fetchone()[0]:
            raise ValueError(f"batch for {provider!r} holds offers of another provider")
        batch = {"owner": owner, "provider": provider, "at": observed_at}
        landed, new, changed = cur.execute(_UPSERT_OWNED, batch).fetchone()
        vanished = cur.execute(_VANISH_OWNED, batch).rowcount
    return LandResult(offers=landed, new=new, changed=changed, vanished=vanished)


def _provider_status(cur, provider: str, stale: bool, reason: str, good_rows=None, good_at=None) -> None:
    cur.execute(
        "INSERT INTO provider_status (provider, last_good_at, last_good_rows, stale, stale_reason, updated_at)"
        " VALUES (%(p)s, %(at)s, %(rows)s, %(stale)s, %(reason)s, now())"
        " ON CONFLICT (provider) DO UPDATE SET stale = EXCLUDED.stale, stale_reason = EXCLUDED.stale_reason,"
        " updated_at = now(),"
        " last_good_at = GREATEST(EXCLUDED.last_good_at, provider_status.last_good_at),"
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


def quarantine(conn: psycopg.Connection, q: Quarantined) -> int:
    """Keep a refused batch, mark the provider's served data stale, and say why on provider-events.
    Returns the quarantine's id."""
    event = ProviderEvent(type="quarantine", provider=q.provider, status="stale", reason=q.reason,
                          details={"rows": q.rows, "failures": q.failures}, timestamp=q.at)  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        (quarantine_id,) = cur.execute(
            "INSERT INTO quarantine (provider, created_at, reason, failures, sample_rows, rows, raw_ref, offers_ref)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (q.provider, q.at, q.reason, Jsonb(q.failures), Jsonb(q.sample_rows), q.rows, q.raw_ref, q.offers_ref),
        ).fetchone()
        _provider_status(cur, q.provider, stale=True, reason=q.reason)
        queue_events(cur, settings.Topics.PROVIDER_EVENTS, [event])
    return quarantine_id


def quarantines_since(conn: psycopg.Connection, since: datetime) -> int:
    return conn.execute("SELECT count(*) FROM quarantine WHERE created_at >= %s", (since,)).fetchone()[0]


def queue_events(cur: psycopg.Cursor, topic: str, events: Sequence[ProviderEvent]) -> None:
    cur.executemany(
        "INSERT INTO event_outbox (event_id, topic, key, payload, created_at)"
        " VALUES (%s, %s, %s, %s, now()) ON CONFLICT (event_id) DO NOTHING",
        [(e.event_id, topic, e.key, Jsonb(e.model_dump(mode="json"))) for e in events],
    )
