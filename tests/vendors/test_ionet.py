"""io.net hook against the recorded GET /enterprise/v1/io-cloud/caas/hardware answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.ionet import IoNetHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

LISTING = "hardware.json"


def hook(replay) -> IoNetHook:
    return IoNetHook(base_url=replay.vendor_url("ionet"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_single_gpu_offer_per_hardware_and_location(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers)) == (1, 6)
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus

    us = by_id["H100_sxm5@United States"]
    assert (us.gpu_model, us.gpu_form_factor, us.gpu_count, us.gpu_memory_gb) == ("H100", "SXM", 1, 80.0)
    assert (str(us.price_per_hour), us.availability, us.available_count) == ("2.1900", Availability.AVAILABLE, 24)
    assert (us.region, us.country, us.continent, us.instance_type) == ("United States", "US", "NA", "H100_sxm5")
    germany = by_id["H100_sxm5@Germany"]  # the same hardware in another place, its own price
    assert (str(germany.price_per_hour), germany.country, germany.available_count) == ("2.2900", "DE", 8)

    h200 = by_id["212@Singapore"]  # a numeric hardware_id
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour), h200.country) == ("H200", 141.0, "2.8900", "SG")


def test_no_free_capacity_is_unavailable_and_memory_not_named_comes_from_the_registry(replay):
    _, by_id = offers(replay)
    a100 = by_id["203@Canada"]
    assert (a100.availability, a100.available_count, str(a100.price_per_hour)) == (Availability.UNAVAILABLE, 0, "1.3900")
    rtx = by_id["181@Taiwan"]
    assert (rtx.gpu_model, rtx.gpu_memory_gb, rtx.inferred, rtx.country) == ("RTX4090", 24, ("gpu_memory_gb",), "TW")
    a4000 = by_id["97@India"]
    assert (a4000.gpu_model, str(a4000.price_per_hour), a4000.available_count) == ("RTXA4000", "0.1200", 12)


def test_the_key_travels_in_x_api_key(replay):
    assert hook(replay).auth_headers("k") == {"x-api-key": "k"}


def test_an_answer_without_data_is_refused(replay):
    replay.put("ionet", LISTING, {"hardware": []})
    with pytest.raises(PayloadError, match=r'ionet: malformed payload: expected {"data": \[...\]}'):
        hook(replay).fetch_batch()


def test_a_gpu_the_registry_does_not_know_is_counted(replay):
    body = copy.deepcopy(recording("ionet", LISTING))
    body["data"][3]["hardware_name"] = "GTX 1660 Ti"
    replay.put("ionet", LISTING, body)
    batch, by_id = offers(replay)
    assert batch.unknown_gpus == {"GTX 1660 Ti": 1} and "181@Taiwan" not in by_id


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r.pop("price"), "missing field 'price'"),
        (lambda r: r.update(price="2.19"), "field 'price' is not a number"),
        (lambda r: r.pop("location"), "missing field 'location'"),
        (lambda r: r.update(hardware_name=""), "field 'hardware_name' is not a name"),
        (lambda r: r.update(available=-3), "available_count: Input should be greater than or equal to 0"),
    ],
    ids=["no-price", "price-a-string", "no-location", "no-name", "negative-capacity"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "ionet", LISTING, lambda body: mutate(body["data"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"H100_sxm5@United States"}
