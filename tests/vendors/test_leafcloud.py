"""Leafcloud price page: EUR per GPU-hour x each configuration's GPUs, converted; pre-order rows skipped."""

from decimal import Decimal

import pytest

from gpubroker.fx import TO_USD
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.leafcloud import LeafcloudHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "leafcloud" / "pricing.html").read_text()


def hook(replay):
    return LeafcloudHook(base_url=replay.vendor_url("leafcloud"))


def test_rows_become_one_offer_per_configuration_in_usd(replay):
    assert TO_USD["EUR"] == Decimal("1.16")
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {f"{gpu}-{n}x" for gpu in ("a30", "a100") for n in (1, 2, 4, 8)}
    assert (batch.items, batch.skipped) == (3, {"pre-order: not yet deliverable": 1})  # the H100 row
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    a100 = offers["a100-8x"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, a100.instance_type) == ("A100", 8, 80.0, "8x NVIDIA A100")
    assert a100.price_per_hour == Decimal("19.9520")  # 8 x EUR 2.15 x 1.16
    assert [str(offers[f"a30-{n}x"].price_per_hour) for n in (1, 2, 4, 8)] == ["0.6960", "1.3920", "2.7840", "5.5680"]
    assert (offers["a30-1x"].gpu_model, offers["a30-1x"].gpu_memory_gb) == ("A30", 24.0)
    for offer in offers.values():
        assert (offer.region, offer.country, offer.continent, offer.availability) == ("nl", "NL", "EU", "unknown")
        assert (offer.vcpus, offer.ram_gb, offer.spot_price, offer.pricing_type) == (None, None, None, "on_demand")


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("<td>€2.15</td>", "<td>€2,15</td>"), "price '€2,15' has a decimal comma", 4),
        (("<td>€0.60</td>", "<td>on request</td>"), "no price in 'on request'", 4),
        (("<td>1x, 2x, 4x, 8x</td><td>€2.15", "<td>any</td><td>€2.15"), "no GPU counts in 'any'", 4),
        (("<td>24 GB HBM2</td>", "<td>HBM2</td>"), "no size in GB in 'HBM2'", 4),
    ],
    ids=["decimal-comma", "price-gone", "counts-gone", "memory-gone"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert PAGE.count(edit[0]) == 1
    replay.put("leafcloud", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == gone


def test_a_page_without_its_price_column_is_refused_as_changed(replay):
    replay.put("leafcloud", "pricing.html", PAGE.replace("<th>Price per GPU per hour</th>", "<th>Price</th>"))
    with pytest.raises(PayloadError, match=r"leafcloud: malformed payload: 'table.gpu-pricing' has no column 'Price per GPU per hour'"):
        hook(replay).fetch_batch()


def test_a_page_without_its_table_is_refused_as_changed(replay):
    replay.put("leafcloud", "pricing.html", PAGE.replace("gpu-pricing", "gpu-prices"))
    with pytest.raises(PayloadError, match=r"leafcloud: malformed payload: no rows in 'table.gpu-pricing'"):
        hook(replay).fetch_batch()
