"""SaladCloud price page: one-GPU offers at the High priority price, the Batch price as their spot price."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.salad import SaladHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "salad" / "pricing.html").read_text()


def hook(replay):
    return SaladHook(base_url=replay.vendor_url("salad"))


def test_tiles_become_one_gpu_offers_at_high_with_batch_as_spot(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"rtx-3060-12gb", "rtx-3080-10gb", "rtx-3090-24gb", "rtx-4070-12gb", "rtx-4080-16gb",
                           "rtx-4090-24gb", "rtx-5090-32gb"}  # fmt: skip
    assert (batch.items, batch.skipped) == (8, {"coming soon: no price": 1})  # the RTX 5080 tile
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    rtx4090 = offers["rtx-4090-24gb"]
    assert (rtx4090.gpu_model, rtx4090.gpu_count, rtx4090.gpu_memory_gb) == ("RTX4090", 1, 24.0)
    assert (rtx4090.price_per_hour, rtx4090.spot_price) == (Decimal("0.3000"), Decimal("0.1600"))  # High, Batch
    assert (rtx4090.pricing_type, rtx4090.instance_type) == ("on_demand", "RTX 4090 (24 GB)")
    rtx3060 = offers["rtx-3060-12gb"]
    assert (rtx3060.gpu_model, str(rtx3060.price_per_hour), str(rtx3060.spot_price)) == ("RTX3060", "0.0800", "0.0350")
    assert (offers["rtx-3080-10gb"].gpu_memory_gb, str(offers["rtx-5090-32gb"].price_per_hour)) == (10.0, "0.4000")
    for offer in offers.values():
        assert (offer.region, offer.country, offer.availability, offer.vcpus, offer.ram_gb) == (
            "global", None, "unknown", None, None)


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        ((' data-price-high="0.300"', ""), "no price in None", "rtx-4090-24gb"),
        (('data-price-batch="0.100" data-price-low="0.120"', 'data-price-batch="0.190" data-price-low="0.120"'),
         "Batch price 0.190 above the High price 0.170", "rtx-4080-16gb"),
        (('<div class="calculator_gpu-name">RTX 3090 (24 GB)</div>', '<div class="calculator_gpu-name">RTX 3090</div>'),
         "no size in GB in 'RTX 3090'", "rtx-3090-24gb"),
    ],
    ids=["high-price-gone", "batch-above-high", "memory-gone"],
)
def test_a_broken_tile_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert PAGE.count(edit[0]) == 1
    replay.put("salad", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_gpu_the_registry_does_not_know_is_counted(replay):
    replay.put("salad", "pricing.html", PAGE.replace(">RTX 4070 (12 GB)<", ">RTX 9070 (16 GB)<"))
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"RTX 9070": 1} and not batch.dropped  # a name the registry will not know
    assert "rtx-4070-12gb" not in by_id(batch) and len(batch.offers) == 6


def test_a_page_without_its_tiles_is_refused_as_changed(replay):
    replay.put("salad", "pricing.html", PAGE.replace("calculator_gpu-item", "calculator_card"))
    with pytest.raises(PayloadError, match=r"salad: malformed payload: no 'div.calculator_gpu-item' on the page"):
        hook(replay).fetch_batch()
