"""Landing batches in the real PostgreSQL (pytest-django's migrated test database)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from gpubroker import store
from gpubroker.schema import Offer

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def offer(offer_id: str, price: str, observed_at=T0, provider="vastai", gpu="H100") -> Offer:
    return Offer(
        provider=provider, offer_id=offer_id, instance_type=f"1x {gpu}", gpu_model=gpu, gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=price, region="Norway", observed_at=observed_at,
    )  # fmt: skip


def outbox(pg):
    return pg.execute("SELECT key, payload FROM event_outbox ORDER BY id").fetchall()


def test_first_sync_lands_everything_and_emits_nothing(pg):
    result = store.land(pg, "vastai", [offer("a", "2.00"), offer("b", "3.00")], T0)
    assert (result.offers, result.new, result.changed, result.vanished) == (2, 2, [], 0)
    assert pg.execute("SELECT count(*) FROM offers").fetchone()[0] == 2
    assert pg.execute("SELECT count(*) FROM price_history").fetchone()[0] == 2
    assert outbox(pg) == []


def test_changed_price_emits_exactly_one_event_with_old_and_new(pg):
    store.land(pg, "vastai", [offer("a", "2.00"), offer("b", "3.00")], T0)
    t1 = T0 + timedelta(hours=1)
    result = store.land(pg, "vastai", [offer("a", "1.50", t1), offer("b", "3.00", t1)], t1)
    assert [(u.offer_id, u.old_price, u.new_price, u.change_percent) for u in result.changed] == [
        ("a", Decimal("2.0000"), Decimal("1.5000"), -25.0)
    ]
    [(key, payload)] = outbox(pg)
    assert key == "vastai:a"
    assert (payload["old_price"], payload["new_price"], payload["gpu"]) == (2.0, 1.5, "H100")
    history = pg.execute("SELECT price_per_hour FROM price_history WHERE offer_id = 'a' ORDER BY observed_at").fetchall()
    assert [h[0] for h in history] == [Decimal("2.0000"), Decimal("1.5000")]
    first_seen, last_seen = pg.execute("SELECT first_seen, last_seen FROM offers WHERE offer_id = 'a'").fetchone()
    assert (first_seen, last_seen) == (T0, t1)


def test_vanished_offers_are_marked_unavailable_not_deleted(pg):
    store.land(pg, "vastai", [offer("a", "2.00"), offer("b", "3.00")], T0)
    store.land(pg, "other", [offer("x", "1.00", provider="other")], T0)
    t1 = T0 + timedelta(hours=1)
    result = store.land(pg, "vastai", [offer("a", "2.00", t1)], t1)
    assert result.vanished == 1
    rows = dict(pg.execute("SELECT offer_id, availability FROM offers").fetchall())
    assert rows == {"a": "unknown", "b": "unavailable", "x": "unknown"}  # other providers untouched


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
    too_long = offer("b", "1.00").model_copy(update={"region": "x" * 65})  # longer than the column
    with pytest.raises(Exception, match="too long"):
        store.land(pg, "vastai", [offer("a", "9.00"), too_long], T0 + timedelta(hours=1))
    assert pg.execute("SELECT price_per_hour FROM offers").fetchall() == [(Decimal("2.0000"),)]
    assert outbox(pg) == []
