"""Hot Aisle price page: MI300X cards, per-GPU prices x the machine's GPUs, fabric from the card, one location."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.hotaisle import HotAisleHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "hotaisle" / "pricing.html").read_text()


def hook(replay):
    return HotAisleHook(base_url=replay.vendor_url("hotaisle"))


def test_priced_cards_become_machines_at_per_gpu_price_times_gpus(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"mi300x-1x-virtual-machine", "mi300x-8x-bare-metal"}
    assert (batch.items, batch.skipped) == (3, {"contact sales: no public price": 1})  # the MI355X card
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    metal = offers["mi300x-8x-bare-metal"]
    assert (metal.gpu_model, metal.gpu_vendor, metal.gpu_count, metal.gpu_memory_gb) == ("MI300X", "AMD", 8, 192.0)
    assert (metal.price_per_hour, metal.interconnect) == (Decimal("15.9200"), "roce")  # 8 x $1.99
    assert metal.instance_type == "8x MI300X bare metal"
    vm = offers["mi300x-1x-virtual-machine"]
    assert (vm.gpu_count, vm.price_per_hour, vm.interconnect) == (1, Decimal("1.9900"), None)
    for offer in offers.values():
        assert (offer.region, offer.country, offer.continent, offer.availability) == ("us-michigan-1", "US", "NA", "unknown")
        assert (offer.vcpus, offer.ram_gb, offer.spot_price) == (None, None, None)


def test_a_priced_mi355x_card_and_an_infinity_fabric_only_card(replay):
    page = PAGE.replace('<p class="pricing-price">Contact us</p>', '<p class="pricing-price">$2.95 per GPU/hr</p>')
    replay.put("hotaisle", "pricing.html", page.replace("Infinity Fabric, 400G RoCEv2 networking", "Infinity Fabric", 1))
    offers = by_id(hook(replay).fetch_batch())
    mi355x = offers["mi355x-8x-bare-metal"]
    assert (mi355x.gpu_model, mi355x.gpu_memory_gb, mi355x.price_per_hour, mi355x.interconnect) == (
        "MI355X", 288.0, Decimal("23.6000"), "roce")
    assert offers["mi300x-8x-bare-metal"].interconnect == "infinity_fabric"


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$1.99 per GPU/hr", "$1.99 per hour"), "price '$1.99 per hour' is not per GPU-hour", "mi300x-1x-virtual-machine"),
        (("8x MI300X bare metal", "MI300X bare metal"), "no configuration in 'MI300X bare metal'", "mi300x-8x-bare-metal"),
        (("<li class=\"pricing-memory\">192 GB HBM3</li>\n      <li", "<li class=\"pricing-memory\">HBM3</li>\n      <li"),
         "no size in GB in 'HBM3'", "mi300x-8x-bare-metal"),
    ],
    ids=["price-unit", "configuration", "memory"],
)
def test_a_broken_card_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert edit[0] in PAGE
    replay.put("hotaisle", "pricing.html", PAGE.replace(*edit, 1))  # the first card that has it
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_page_without_its_cards_is_refused_as_changed(replay):
    replay.put("hotaisle", "pricing.html", PAGE.replace('class="pricing-card"', 'class="plan"'))
    with pytest.raises(PayloadError, match=r"hotaisle: malformed payload: no 'div.pricing-card' on the page"):
        hook(replay).fetch_batch()
