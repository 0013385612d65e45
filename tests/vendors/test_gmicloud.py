"""GMI Cloud price page: per-GPU "from" prices, availability badges, "Contact Sales" and "Pre order" cards."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.gmicloud import GmiCloudHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "gmicloud" / "pricing.html").read_text()


def hook(replay):
    return GmiCloudHook(base_url=replay.vendor_url("gmicloud"))


def test_priced_cards_become_one_gpu_offers(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"h100-1x", "h200-1x"}
    assert (batch.items, batch.skipped) == (5, {"contact sales: no public price": 2, "pre-order: not yet deliverable": 1})
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers["h100-1x"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.price_per_hour) == ("H100", 1, 80.0, Decimal("2.0000"))
    assert (h100.instance_type, h100.availability, h100.region, h100.country) == ("NVIDIA H100 (1 GPU)", "available", "global", None)
    h200 = offers["h200-1x"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 141.0, "2.5000")
    for offer in offers.values():
        assert (offer.vcpus, offer.ram_gb, offer.interconnect, offer.spot_price, offer.inferred) == (None, None, None, None, ())


def test_a_priced_limited_card_and_an_unknown_badge(replay):
    page = PAGE.replace('<p class="gpu-price">Contact Sales</p>', '<p class="gpu-price">from <strong>$4.75</strong> / GPU-hour</p>', 1)
    badge = '<span class="gpu-badge">AVAILABLE NOW</span>'
    replay.put("gmicloud", "pricing.html", page.replace(badge, badge.replace("AVAILABLE NOW", "Coming back soon"), 1))
    offers = by_id(hook(replay).fetch_batch())
    b200 = offers["b200-1x"]
    assert (b200.gpu_model, b200.gpu_memory_gb, b200.price_per_hour, b200.availability) == ("B200", 180.0, Decimal("4.7500"), "limited")
    assert offers["h100-1x"].availability == "unknown"  # a badge the module does not know says nothing


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$2.00</strong> / GPU-hour", "$2.00</strong> / month"), "price 'from $2.00 / month' is not per GPU-hour", "h100-1x"),
        (("<h3 class=\"gpu-name\">NVIDIA H200</h3>", ""), "no GPU name on the card", "h200-1x"),
        (("<p class=\"gpu-memory\">80 GB HBM3</p>", "<p class=\"gpu-memory\">HBM3</p>"), "no size in GB in 'HBM3'", "h100-1x"),
    ],
    ids=["price-unit", "name-gone", "memory-gone"],
)
def test_a_broken_card_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("gmicloud", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_page_without_its_cards_is_refused_as_changed(replay):
    replay.put("gmicloud", "pricing.html", PAGE.replace("gpu-card", "product-tile"))
    with pytest.raises(PayloadError, match=r"gmicloud: malformed payload: no 'div.gpu-card' on the page"):
        hook(replay).fetch_batch()
