"""Landing batches in the real PostgreSQL (pytest-django's migrated test database)."""

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from gpubroker import settings, store
from gpubroker.schema import Offer, OfferObserved, observation_id

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)


def offer(offer_id: str, price: str, observed_at=T0, provider="vastai", gpu="H100", **fields) -> Offer:
    return Offer(**{
        "provider": provider, "offer_id": offer_id, "instance_type": f"1x {gpu}", "gpu_model": gpu, "gpu_vendor": "NVIDIA",
        "gpu_count": 1, "gpu_memory_gb": 80, "price_per_hour": price, "region": "Norway", "observed_at": observed_at,
    } | fields)  # fmt: skip


def outbox(pg, since_id: int = 0) -> dict[str, OfferObserved]:
    """The queued events after row `since_id`, by key, parsed by the contract's model."""
    rows = pg.execute("SELECT id, event_id, topic, key, payload FROM event_outbox WHERE id > %s ORDER BY id", (since_id,))
    events = {}
    for _, event_id, topic, key, payload in rows:
        event = OfferObserved.model_validate(payload)
        assert (topic, key, str(event_id)) == (settings.Topics.PRICE_UPDATES, event.key, event.event_id)
        events[key] = event
    return events


def last_id(pg) -> int:
    return pg.execute("SELECT coalesce(max(id), 0) FROM event_outbox").fetchone()[0]


def test_first_sync_lands_everything_and_queues_one_observation_per_offer(pg):
    a = offer("a", "2.00", gpu_count=2, country="NO", continent="EU", availability="available", available_count=3)
    result = store.land(pg, "vastai", [a, offer("b", "3.00")], T0)
    assert (result.offers, result.new, result.changed, result.vanished) == (2, 2, 0, 0)
    assert pg.execute("SELECT count(*) FROM offers").fetchone()[0] == 2
    assert pg.execute("SELECT count(*) FROM price_history").fetchone()[0] == 2
    events = outbox(pg)
    assert events["vastai:a"] == OfferObserved.of(a)  # the SQL payload is exactly the model's event
    assert events["vastai:a"].price_per_gpu == Decimal("1.0000")
    assert (events["vastai:b"].old_price, events["vastai:b"].old_availability) == (None, None)


def test_next_sync_carries_the_previous_price_and_availability_of_every_offer(pg):
    store.land(pg, "vastai", [offer("a", "2.00"), offer("b", "3.00", availability="limited")], T0)
    seen = last_id(pg)
    result = store.land(pg, "vastai", [offer("a", "1.50", T1), offer("b", "3.00", T1, availability="available")], T1)
    assert (result.offers, result.new, result.changed, result.vanished) == (2, 0, 1, 0)
    events = outbox(pg, seen)
    assert [(k, e.old_price, e.price_per_hour) for k, e in events.items()] == [
        ("vastai:a", Decimal("2.0000"), Decimal("1.5000")),
        ("vastai:b", Decimal("3.0000"), Decimal("3.0000")),  # unchanged prices are observed too
    ]
    assert (events["vastai:b"].old_availability, events["vastai:b"].availability) == ("limited", "available")
    assert all(e.observed_at == T1 for e in events.values())
    history = pg.execute("SELECT price_per_hour FROM price_history WHERE offer_id = 'a' ORDER BY observed_at").fetchall()
    assert [h[0] for h in history] == [Decimal("2.0000"), Decimal("1.5000")]
    first_seen, last_seen = pg.execute("SELECT first_seen, last_seen FROM offers WHERE offer_id = 'a'").fetchone()
    assert (first_seen, last_seen) == (T0, T1)


def test_vanished_offers_are_marked_unavailable_and_observed_as_such(pg):
    store.land(pg, "vastai", [offer("a", "2.00"), offer("b", "3.00", availability="available")], T0)
    store.land(pg, "other", [offer("x", "1.00", provider="other")], T0)
    seen = last_id(pg)
    result = store.land(pg, "vastai", [offer("a", "2.00", T1)], T1)
    assert result.vanished == 1
    rows = dict(pg.execute("SELECT offer_id, availability FROM offers").fetchall())
    assert rows == {"a": "unknown", "b": "unavailable", "x": "unknown"}  # other providers untouched
    gone = outbox(pg, seen)["vastai:b"]
    assert (gone.availability, gone.old_availability, gone.available_count) == ("unavailable", "available", 0)
    assert (gone.price_per_hour, gone.old_price, gone.observed_at) == (Decimal("3.0000"), Decimal("3.0000"), T1)
    seen = last_id(pg)
    store.land(pg, "vastai", [offer("a", "2.00", T1 + timedelta(hours=1))], T1 + timedelta(hours=1))
    assert list(outbox(pg, seen)) == ["vastai:a"]  # gone once, not again


def test_landing_the_same_batch_again_queues_no_second_copy(pg):
    batch = [offer("a", "2.00"), offer("b", "3.00")]
    store.land(pg, "vastai", batch, T0)
    seen = last_id(pg)
    store.land(pg, "vastai", batch, T0)  # e.g. a retried task: same observations, same event ids
    assert outbox(pg, seen) == {}


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=32)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=names, offer_id=names, observed_at=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=zones))
def test_the_store_and_the_schema_give_an_observation_the_same_event_id(pg, provider, offer_id, observed_at):
    pg.execute("DELETE FROM offers")  # an earlier example may have seen this offer later: it would not land
    seen = last_id(pg)
    store.land(pg, provider, [offer(offer_id, "1.00", observed_at, provider=provider)], observed_at)
    (event_id,) = pg.execute(
        "SELECT event_id FROM event_outbox WHERE id > %s AND key = %s", (seen, f"{provider}:{offer_id}")
    ).fetchone()
    assert str(event_id) == observation_id(provider, offer_id, observed_at)


@pytest.mark.parametrize(
    "batch",
    [[offer("a", "1.00"), offer("a", "2.00")], [offer("a", "1.00"), offer("z", "1.00", provider="other")]],
    ids=["repeated-offer-id", "mixed-providers"],
)
def test_inconsistent_batches_are_refused_and_nothing_lands(pg, batch):
    with pytest.raises(ValueError):
        store.land(pg, "vastai", batch, T0)
    assert pg.execute("SELECT count(*) FROM offers").fetchone()[0] == 0


def test_a_failure_mid_batch_rolls_everything_back(pg):
    store.land(pg, "vastai", [offer("a", "2.00")], T0)
    seen = last_id(pg)
    too_long = offer("b", "1.00").model_copy(update={"region": "x" * 65})  # longer than the column
    with pytest.raises(Exception, match="too long"):
        store.land(pg, "vastai", [offer("a", "9.00"), too_long], T1)
    assert pg.execute("SELECT price_per_hour FROM offers").fetchall() == [(Decimal("2.0000"),)]
    assert outbox(pg, seen) == {}


def landed_state(pg) -> tuple:
    """What landings left: offers, price history, outbox events (without the time they were queued)."""
    return (pg.execute("SELECT provider, offer_id, price_per_hour, availability, first_seen, last_seen FROM offers"
                       " ORDER BY offer_id").fetchall(),
            pg.execute("SELECT offer_id, price_per_hour, observed_at FROM price_history ORDER BY offer_id, observed_at").fetchall(),
            pg.execute("SELECT event_id, key, payload FROM event_outbox ORDER BY event_id").fetchall())  # fmt: skip


def chunks(rows: list, cuts: list[int]) -> list[list]:
    bounds = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    return [rows[a:b] for a, b in zip(bounds, bounds[1:])]


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.dictionaries(st.integers(0, 12), st.integers(1, 4), max_size=10),
       after=st.dictionaries(st.integers(0, 12), st.integers(1, 4), max_size=10),
       cuts=st.lists(st.integers(0, 10), max_size=4))  # fmt: skip
def test_a_batch_landed_in_chunks_leaves_exactly_what_it_leaves_landed_whole(pg, before, after, cuts):
    def rows(prices: dict[int, int], at: datetime) -> list[tuple]:
        return [store.row(offer(str(i), f"{p}.50", at)) for i, p in sorted(prices.items())]

    outcomes = []
    for parts in ([rows(after, T1)], chunks(rows(after, T1), cuts)):
        pg.execute("TRUNCATE offers, price_history, event_outbox, provider_status")
        store.land_rows(pg, "vastai", rows(before, T0), T0)
        with store.landing(pg, "vastai") as landing:
            for part in parts:
                landing.add(part)
            result = landing.finish(T1)
        outcomes.append((result, landed_state(pg)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0].offers == len(after) and outcomes[1][0].vanished == len(before.keys() - after.keys())


def _late_failure(landing):
    landing.add([store.row(offer("a", "9.00", T1))])
    landing.add([store.row(offer("b", "1.00", T1).model_copy(update={"region": "x" * 65}))])  # longer than the column
    landing.finish(T1)


def _repeated_across_chunks(landing):
    landing.add([store.row(offer("a", "9.00", T1))])
    landing.add([store.row(offer("a", "8.00", T1))])
    landing.finish(T1)


def _cancelled(landing):
    landing.add([store.row(offer("a", "9.00", T1))])
    landing.cancel()


def _left_unfinished(landing):
    landing.add([store.row(offer("a", "9.00", T1))])


def _added_to_after_finishing(landing):
    landing.finish(T1)
    landing.add([store.row(offer("a", "9.00", T1))])


@pytest.mark.parametrize(("how", "error"), [(_late_failure, "too long"), (_repeated_across_chunks, "repeats an offer_id"),
                                            (_cancelled, None), (_left_unfinished, "finished or cancelled"),
                                            (_added_to_after_finishing, "is finished")])  # fmt: skip
def test_a_chunked_landing_that_fails_late_is_cancelled_or_left_unfinished_lands_nothing(pg, how, error):
    store.land(pg, "vastai", [offer("a", "2.00")], T0)
    seen, landed = last_id(pg), landed_state(pg)
    if error:
        with pytest.raises(Exception, match=error), store.landing(pg, "vastai") as landing:
            how(landing)
    else:
        with store.landing(pg, "vastai") as landing:
            how(landing)
    assert landed_state(pg) == landed and outbox(pg, seen) == {}


def test_landing_never_looks_offers_up_so_stale_statistics_cannot_make_it_scan_per_row(pg):
    """The old values come through the upsert's conflict: the upsert reads only the stage, and marking
    the vanished offers is one pass over the provider's rows. (Reading `offers` per landed row once
    took minutes per chunk after an autoanalyze caught a first landing uncommitted.)"""
    store.land(pg, "vastai", [offer("a", "2.00")], T0)
    with pg.transaction():
        pg.execute(f"CREATE TEMP TABLE offers_stage ON COMMIT DROP AS SELECT {store._COLUMNS} FROM offers WITH NO DATA")
        plans = {name: "\n".join(line for (line,) in pg.execute("EXPLAIN " + sql, params))
                 for name, sql, params in (("upsert", store._UPSERT, None),
                                           ("vanish", store._VANISH, {"provider": "vastai", "at": T1}))}  # fmt: skip
    scans_of_offers = {name: len(re.findall(r"Scan\b.* on offers\b", plan)) for name, plan in plans.items()}
    assert scans_of_offers == {"upsert": 0, "vanish": 1}, plans


def test_a_large_landing_queues_every_offer_in_bulk(pg):
    batch = [offer(str(i), f"{1 + i % 7}.25", gpu_count=1 + i % 8) for i in range(20_000)]
    store.land(pg, "vastai", batch, T0)
    changed = [o.model_copy(update={"price_per_hour": o.price_per_hour + 1, "observed_at": T1}) if i % 3 == 0
               else o.model_copy(update={"observed_at": T1}) for i, o in enumerate(batch)]  # fmt: skip
    result = store.land(pg, "vastai", changed[1:], T1)  # offer 0 vanished
    assert (result.offers, result.new, result.changed, result.vanished) == (19_999, 0, 6_666, 1)
    count, distinct = pg.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM event_outbox WHERE payload->>'observed_at' = %s",
        (T1.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),),
    ).fetchone()
    assert count == distinct == 20_000  # 19,999 observed and 1 vanished
    (payload,) = pg.execute("SELECT payload FROM event_outbox WHERE key = 'vastai:3' ORDER BY id DESC LIMIT 1").fetchone()
    assert (payload["old_price"], payload["price_per_hour"], payload["price_per_gpu"]) == (4.25, 5.25, 1.3125)


def test_an_older_batch_never_overwrites_newer_data(pg):
    store.land(pg, "vastai", [offer("a", "1.50", T1), offer("b", "3.00", T1)], T1)
    seen = last_id(pg)
    late = store.land(pg, "vastai", [offer("a", "9.99", T0), offer("c", "4.00", T0)], T0)  # observed before T1
    prices = dict(pg.execute("SELECT offer_id, price_per_hour FROM offers").fetchall())
    assert prices == {"a": Decimal("1.5000"), "b": Decimal("3.0000"), "c": Decimal("4.0000")}  # only the new offer landed
    assert (late.offers, late.new, late.changed, late.vanished) == (1, 1, 0, 0)  # b was seen later: not vanished
    # the provider's baseline counts the batch's rows, landed or not (the gate's min_rows reads it)
    assert pg.execute("SELECT last_good_rows FROM provider_status WHERE provider = 'vastai'").fetchone() == (2,)
    assert list(outbox(pg, seen)) == ["vastai:c"]
    assert pg.execute("SELECT count(*) FROM price_history WHERE offer_id = 'a'").fetchone()[0] == 1


def test_published_outbox_rows_are_pruned_after_the_retention_unpublished_never(pg):
    from gpubroker import events

    store.land(pg, "vastai", [offer("old", "1.00"), offer("recent", "2.00"), offer("pending", "3.00")], T0)
    pg.execute("UPDATE event_outbox SET created_at = now() - interval '30 days'")
    pg.execute("UPDATE event_outbox SET published_at = now() - interval '8 days' WHERE key = 'vastai:old'")
    pg.execute("UPDATE event_outbox SET published_at = now() - interval '1 day' WHERE key = 'vastai:recent'")
    assert events.prune_published(pg, days=7) == 1
    assert sorted(k for (k,) in pg.execute("SELECT key FROM event_outbox")) == ["vastai:pending", "vastai:recent"]
