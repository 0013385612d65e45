"""Landing batches in the real PostgreSQL (pytest-django's migrated test database)."""

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
