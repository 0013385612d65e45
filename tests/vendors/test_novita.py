"""Novita AI: products priced in 1/100,000 USD per GPU-hour, one offer per region, spot where billed."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.novita import NovitaHook
from tests.conftest import REPLAY_KEY
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay) -> NovitaHook:
    return NovitaHook(base_url=replay.vendor_url("novita"), api_key=REPLAY_KEY)


def test_each_product_is_one_gpu_per_region_at_its_price_in_hundred_thousandths(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, len(offers), len(batch.offers)) == (6, 8, 8)
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus and not batch.memory_mismatches

    rtx = offers["4090.16c62g@US-CA-06"]
    assert (rtx.gpu_model, rtx.gpu_count, rtx.gpu_memory_gb, rtx.instance_type) == ("RTX4090", 1, 24.0, "4090.16c62g")
    assert (rtx.price_per_hour, rtx.spot_price) == (Decimal("0.35"), Decimal("0.175"))  # "35000", "17500"
    assert (rtx.vcpus, rtx.ram_gb, rtx.disk_gb) == (16, 62.0, None)  # per GPU; disk's unit is not documented
    assert (rtx.region, rtx.country, rtx.continent, rtx.availability) == ("US-CA-06 (California)", "US", "NA", "available")
    assert (offers["4090.16c62g@EU-GB-01"].country, offers["4090.16c62g@EU-GB-01"].continent) == ("GB", "EU")

    a100 = offers["A100-80GB.14c240g@US-CA-06"]
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_memory_gb) == ("A100", "SXM", 80.0)
    assert (str(a100.price_per_hour), str(a100.spot_price), a100.ram_gb) == ("1.6000", "0.8000", 240.0)
    h100 = offers["H100-80GB.16c250g@AS-IN-01"]
    assert (h100.gpu_model, h100.country, str(h100.price_per_hour), str(h100.spot_price)) == ("H100", "IN", "2.5800", "1.2900")
    assert offers["H100-80GB.16c250g@US-01"].country == "US"  # "US-01 (Dallas)": the code's prefix
    h200 = offers["H200-141GB.16c250g@US-01"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour), h200.spot_price) == ("H200", 141.0, "3.5000", None)


def test_capacity_and_unlisted_regions(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["5090.16c92g@EU-GB-01"].availability == "unavailable"  # availableDeploy false
    assert offers["5090.16c92g@EU-GB-01"].spot_price == Decimal("0.345")
    l40s = offers["L40S.16c120g@none"]  # listed in no region: priced, not launchable
    assert (l40s.region, l40s.country, l40s.availability, str(l40s.price_per_hour)) == ("unknown", None, "unavailable", "0.8600")
    assert all(o.pricing_type == "on_demand" and o.interconnect is None for o in offers.values())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": "free"}, "field 'price' is not a price in 1/100,000 USD"),
        ({"price": "0"}, "field 'price' is not a price in 1/100,000 USD"),
        ({"spotPrice": None}, "field 'spotPrice' is not a price in 1/100,000 USD"),
        ({"regions": "US-CA-06 (California)"}, "regions is not a list of names"),
        ({"cpuPerGpu": "16"}, "field 'cpuPerGpu' is not a number"),
        ({"name": None}, "field 'name' is not a name"),
    ],
    ids=["price-word", "price-zero", "spot-gone", "regions", "vcpus", "name"],
)
def test_a_broken_product_is_dropped_with_its_reason(replay, change, reason):
    whole, broken = with_one_item_broken(replay, hook, "novita", "products.json",
                                         lambda body: body["data"][0].update(change))  # fmt: skip
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"4090.16c62g@US-CA-06", "4090.16c62g@EU-GB-01"}


def test_an_unknown_gpu_is_counted_not_guessed(replay):
    whole, broken = with_one_item_broken(replay, hook, "novita", "products.json",
                                         lambda body: body["data"][1].update(name="RTX 9090 48GB"))  # fmt: skip
    assert broken.unknown_gpus == {"RTX 9090 48GB": 1} and not broken.dropped
    assert lost(whole, broken) == {"A100-80GB.14c240g@US-CA-06"}


def test_a_listing_without_its_envelope_refuses_the_batch(replay):
    replay.put("novita", "products.json", {"products": []})
    with pytest.raises(PayloadError, match=r'novita: malformed payload: expected \{"data": \[\.\.\.\]\}'):
        hook(replay).fetch_batch()
