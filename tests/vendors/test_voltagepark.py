"""Voltage Park price page: the JSON-LD product list, per-GPU prices x the 8-GPU node, fabric from the name."""

import json
import re
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.voltagepark import VoltageParkHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "voltagepark" / "pricing.html").read_text()
PRODUCTS = re.compile(r'(<script type="application/ld\+json">)(\[.*?\])(</script>)', re.DOTALL)


def hook(replay):
    return VoltageParkHook(base_url=replay.vendor_url("voltagepark"))


def with_product(index: int, **changes) -> str:
    """The recorded page with one product of the JSON-LD list changed (None deletes a field)."""
    found = PRODUCTS.search(PAGE)
    products = json.loads(found[2])
    for key, value in changes.items():
        products[index].pop(key) if value is None else products[index].update({key: value})
    return PAGE[: found.start(2)] + json.dumps(products, ensure_ascii=False) + PAGE[found.end(2) :]


def test_each_priced_product_is_one_eight_gpu_node(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, sorted(offers)) == (3, ["h100-sxm5-ethernet", "h100-sxm5-infiniband"])
    assert batch.skipped == {"contact sales: no public price": 1}  # the B200 card
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    ib = offers["h100-sxm5-infiniband"]
    assert (ib.gpu_model, ib.gpu_form_factor, ib.gpu_count, ib.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert (ib.price_per_hour, ib.interconnect, ib.instance_type) == (Decimal("19.9200"), "infiniband", "h100-sxm5-infiniband.8x")
    ethernet = offers["h100-sxm5-ethernet"]
    assert (ethernet.price_per_hour, ethernet.interconnect) == (Decimal("15.9200"), "nvlink")  # 8 x $1.99
    for offer in offers.values():
        assert (offer.region, offer.country, offer.continent, offer.availability) == ("us", "US", "NA", "unknown")
        assert (offer.pricing_type, offer.spot_price, offer.vcpus) == ("on_demand", None, None)


def test_a_price_in_another_currency_is_converted_or_dropped(replay):
    replay.put("voltagepark", "pricing.html", with_product(0, offers={"@type": "Offer", "price": "1.80", "priceCurrency": "EUR"}))
    assert by_id(hook(replay).fetch_batch())["h100-sxm5-ethernet"].price_per_hour == Decimal("16.7040")  # 8 x 1.80 x 1.16
    replay.put("voltagepark", "pricing.html", with_product(0, offers={"@type": "Offer", "price": "300", "priceCurrency": "JPY"}))
    assert hook(replay).fetch_batch().dropped == {"price in JPY, which gpubroker.fx does not convert": 1}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"offers": {"@type": "Offer", "price": "ask us", "priceCurrency": "USD"}}, "no price in 'ask us'"),
        ({"name": "H100 — On-Demand, InfiniBand"}, "no size in GB in 'H100'"),
        ({"sku": None}, "missing field 'sku'"),
    ],
    ids=["price", "memory", "sku"],
)
def test_a_broken_product_is_dropped_with_its_reason_and_the_rest_land(replay, changes, reason):
    whole = hook(replay).fetch_batch()
    replay.put("voltagepark", "pricing.html", with_product(1, **changes))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"h100-sxm5-infiniband"}


def test_another_schema_type_in_the_list_is_skipped(replay):
    replay.put("voltagepark", "pricing.html", with_product(2, **{"@type": "Service"}))
    assert hook(replay).fetch_batch().skipped == {"schema.org Service, not a product": 1}


def test_a_page_without_its_product_list_is_refused_as_changed(replay):
    found = PRODUCTS.search(PAGE)
    replay.put("voltagepark", "pricing.html", PAGE[: found.start()] + PAGE[found.end() :])
    with pytest.raises(PayloadError, match=r"voltagepark: malformed payload: no 'script\[type=\"application/ld\+json\"\]' matching"):
        hook(replay).fetch_batch()
