"""Spheron hook against recorded /api/gpu-offers pages, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.spheron import SpheronHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

FIRST = "gpu-offers-1.json"


def hook(replay) -> SpheronHook:
    return SpheronHook(base_url=replay.vendor_url("spheron"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_pages_are_read_up_to_total_pages_one_offer_per_cluster(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers)) == (2, 7)
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus


def test_a_single_page_listing(replay):
    replay.put("spheron", FIRST, recording("spheron", FIRST) | {"totalPages": 1})
    batch, _ = offers(replay)
    assert (batch.pages, len(batch.offers)) == (1, 5)


def test_offer_mapping(replay):
    _, by_id = offers(replay)
    rtx = by_id["sesterce-rtx4090-1@us-central-1"]
    assert (rtx.gpu_model, rtx.gpu_count, rtx.gpu_memory_gb, rtx.vcpus, rtx.ram_gb) == ("RTX4090", 1, 24, 8, 48)
    assert (str(rtx.price_per_hour), str(rtx.spot_price), rtx.pricing_type) == ("0.5500", "0.2800", "on_demand")
    assert (rtx.cloud, rtx.instance_type, rtx.availability, rtx.country) == (
        "sesterce", "sesterce-rtx4090-1", Availability.AVAILABLE, "US")
    assert by_id["sesterce-rtx4090-1@ca-east-1"].country == "CA"
    four = by_id["sesterce-rtx4090-4@us-central-1"]  # the whole offer's price, not per GPU
    assert (four.gpu_count, str(four.price_per_hour), four.availability) == (4, "2.2000", Availability.UNAVAILABLE)

    h100 = by_id["dc-h100-8x@fi-helsinki-1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, str(h100.price_per_hour)) == ("H100", "SXM", 8, "19.1200")
    assert (h100.country, h100.continent, h100.cloud) == ("FI", "EU", "datacrunch")
    pro = by_id["sp-pro6000-1@us-east-1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96, "1.1000")


def test_spot_sales_and_maintenance(replay):
    _, by_id = offers(replay)
    spot = by_id["dc-h100-1x-spot@fi-helsinki-1"]  # instanceType SPOT: the price is a spot price
    assert (spot.pricing_type, str(spot.price_per_hour), spot.spot_price) == ("spot", "0.9900", None)
    a100 = by_id["mc-a100-2x@us-west-2"]  # no clusters: the offer's region; in maintenance
    assert (a100.availability, a100.gpu_memory_gb, str(a100.price_per_hour), a100.country) == (
        Availability.UNAVAILABLE, 80, "2.5600", "US")


def test_a_page_without_data_is_refused(replay):
    replay.put("spheron", FIRST, {"gpuOffers": []})
    with pytest.raises(PayloadError, match=r'spheron: malformed payload: expected {"data": \[...\]}'):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o.pop("price"), "missing field 'price'"),
        (lambda o: o.update(price="0.55"), "field 'price' is not a number"),
        (lambda o: o.update(clusters=[]), "offer in no cluster or region"),
        (lambda o: o.pop("gpuCount"), "missing field 'gpuCount'"),
        (lambda o: o.pop("provider"), "missing field 'provider'"),
    ],
    ids=["no-price", "price-a-string", "nowhere", "no-gpu-count", "no-provider"],
)
def test_a_broken_offer_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "spheron", FIRST, lambda body: mutate(body["data"][0]["offers"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"sesterce-rtx4090-1@us-central-1", "sesterce-rtx4090-1@ca-east-1"}


def test_an_offer_without_gpus_is_skipped(replay):
    body = copy.deepcopy(recording("spheron", FIRST))
    body["data"][0]["offers"][1]["gpuCount"] = 0
    replay.put("spheron", FIRST, body)
    batch, by_id = offers(replay)
    assert batch.skipped == {"offer without GPUs": 1} and "sesterce-rtx4090-4@us-central-1" not in by_id
