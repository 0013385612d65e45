"""Clore.ai hook against the recorded GET /v1/marketplace answer, served over real HTTP."""

import copy
from decimal import Decimal

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.clore import CloreHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

LISTING = "marketplace.json"


def hook(replay) -> CloreHook:
    return CloreHook(base_url=replay.vendor_url("clore"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_offer_per_server_priced_per_hour_in_usd(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers), batch.unknown_gpus) == (1, 6, {"NVIDIA CMP 170HX": 1})
    assert not batch.dropped and not batch.skipped

    rtx = by_id["3142"]
    assert (rtx.gpu_model, rtx.gpu_count, rtx.gpu_memory_gb, rtx.instance_type) == (
        "RTX4090", 1, 24, "1x NVIDIA GeForce RTX 4090")
    assert (str(rtx.price_per_hour), str(rtx.spot_price)) == ("0.3000", "0.1500")  # price.usd: USD per hour
    assert (rtx.vcpus, rtx.ram_gb, rtx.disk_gb) == (32, 62.7, 1000.0)  # "16/32" threads, "NVMe 1000GB"
    assert (rtx.region, rtx.country, rtx.continent) == ("DE", "DE", "EU")
    assert (rtx.availability, rtx.available_count, rtx.pricing_type) == (Availability.AVAILABLE, 1, "on_demand")

    h100 = by_id["11230"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", 8, 80, "16.0000")
    assert (h100.spot_price, h100.vcpus, h100.ram_gb, h100.disk_gb, h100.country) == (None, 224, 2015.6, 15360.0, "FI")
    rtx5090 = by_id["9001"]
    assert (rtx5090.gpu_count, str(rtx5090.price_per_hour), str(rtx5090.spot_price), rtx5090.disk_gb) == (
        4, "2.4000", "1.2000", 3840.0)


def test_the_per_day_coin_prices_are_the_hourly_usd_price_times_24_and_not_read(replay):
    server = recording("clore", LISTING)["servers"][0]
    per_day, per_hour = server["price"]["on_demand"]["USD-Blockchain"], server["price"]["usd"]["on_demand_usd"]
    assert Decimal(str(per_day)) == 24 * Decimal(str(per_hour)) == Decimal("7.2")
    whole, broken = with_one_item_broken(replay, hook, "clore", LISTING,
                                         lambda body: body["servers"][0]["price"].update(on_demand={}, spot={}))
    assert not broken.dropped and lost(whole, broken) == set()


def test_a_host_not_taking_usd_is_priced_in_clore(replay):
    _, by_id = offers(replay)
    a6000 = by_id["7788"]  # on_demand_usd 0: allowed_coins CLORE and bitcoin only
    assert (a6000.gpu_model, a6000.gpu_count, a6000.gpu_memory_gb) == ("RTXA6000", 2, 48)
    assert (str(a6000.price_per_hour), str(a6000.spot_price), a6000.country) == ("0.8800", "0.4400", "PL")


def test_a_rented_server_is_listed_unavailable_and_a_zero_spot_floor_is_no_spot_price(replay):
    _, by_id = offers(replay)
    rented = by_id["5127"]
    assert (rented.availability, rented.available_count, str(rented.price_per_hour)) == (
        Availability.UNAVAILABLE, 0, "1.6000")
    assert (rented.spot_price, rented.gpu_count, rented.disk_gb, rented.vcpus) == (None, 8, 2000.0, 64)  # "NVMe 2TB"


def test_a_server_without_a_country_or_disk_size_keeps_them_unknown(replay):
    _, by_id = offers(replay)
    rtx3060 = by_id["12001"]
    assert (rtx3060.region, rtx3060.country, rtx3060.disk_gb, str(rtx3060.price_per_hour)) == (
        "unknown", None, None, "0.0600")


def test_an_error_code_in_a_200_answer_is_a_vendor_error(replay):
    replay.put("clore", LISTING, {"code": 5})
    with pytest.raises(VendorError, match=r"clore: GET /v1/marketplace answered code 5 \(over the 1 request/second"):
        hook(replay).fetch_batch()


def test_an_answer_without_servers_is_refused(replay):
    replay.put("clore", LISTING, {"code": 0, "my_servers": []})
    with pytest.raises(PayloadError, match=r'clore: malformed payload: expected {"servers": \[...\], "code": 0}'):
        hook(replay).fetch_batch()


def test_the_key_travels_in_the_auth_header(replay):
    assert hook(replay).auth_headers("k") == {"auth": "k"}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s["specs"].update(gpu="RTX 4090"), "unparseable specs.gpu 'RTX 4090'"),
        (lambda s: s.update(gpu_array=["NVIDIA GeForce RTX 4090"] * 2), "specs.gpu count != len(gpu_array)"),
        (lambda s: s["price"].update(usd={"on_demand_usd": 0, "spot": 0}),
         "no USD price (price.usd.on_demand_usd, on_demand_clore, on_demand_btc)"),
        (lambda s: s["price"]["usd"].update(on_demand_usd="0.30"), "field 'on_demand_usd' is not a number"),
        (lambda s: s.pop("specs"), "missing field 'specs'"),
    ],
    ids=["gpu-text", "gpu-array-disagrees", "no-usd-price", "price-a-string", "no-specs"],
)
def test_a_broken_server_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "clore", LISTING, lambda body: mutate(body["servers"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"3142"}


def test_a_server_with_zero_gpus_is_skipped(replay):
    body = copy.deepcopy(recording("clore", LISTING))
    body["servers"][0]["specs"]["gpu"], body["servers"][0]["gpu_array"] = "0x CPU only", []
    replay.put("clore", LISTING, body)
    batch, by_id = offers(replay)
    assert batch.skipped == {"server without GPUs": 1} and "3142" not in by_id
