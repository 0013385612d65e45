"""Akamai Linode hook against recorded payloads served over real HTTP by the replay server."""

import copy
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.linode import LinodeHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording


def hook(replay) -> LinodeHook:
    return LinodeHook(base_url=replay.vendor_url("linode"))  # public API: no key


def test_every_types_page_is_read_and_joined_with_region_availability(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 3  # types page 1 and 2 (page/pages), availability page 1
    assert set(by_id(batch)) == {
        "g1-gpu-rtx6000-1:us-east", "g1-gpu-rtx6000-1:us-southeast", "g1-gpu-rtx6000-2:ap-west",
        "g2-gpu-rtx4000a1-s:us-ord", "g2-gpu-rtx4000a1-s:de-fra-2", "g2-gpu-rtx4000a1-s:br-gru",
        # types page 2
        "g2-gpu-rtx4000a1-m:us-ord", "g2-gpu-rtx4000a1-m:jp-osa",
        "g2-gpu-rtx4000a2-m:us-ord", "g2-gpu-rtx4000a2-m:fr-par",
    }
    assert not batch.unknown_gpus and not batch.memory_mismatches


def test_cpu_types_and_gpu_types_no_region_offers_are_left_out(replay):
    types = {o.instance_type for o in hook(replay).fetch_batch().offers}
    assert "g6-standard-2" not in types and "g7-premium-2" not in types
    assert "g2-gpu-rtx4000a4-m" not in types  # no availability row anywhere


def test_gpu_family_memory_and_units(replay):
    offers = by_id(hook(replay).fetch_batch())
    rtx6000 = offers["g1-gpu-rtx6000-2:ap-west"]
    assert (rtx6000.gpu_model, rtx6000.gpu_count, rtx6000.gpu_memory_gb) == ("QUADRORTX6000", 2, 24.0)
    assert (rtx6000.vcpus, rtx6000.ram_gb, rtx6000.disk_gb) == (16, 64.0, 1280.0)  # MB -> GB
    assert rtx6000.price_per_hour == Decimal("3.0000")  # the whole Linode, both GPUs
    assert (rtx6000.country, rtx6000.continent) == ("IN", "AS")

    ada = offers["g2-gpu-rtx4000a2-m:fr-par"]
    assert (ada.gpu_model, ada.gpu_count, ada.gpu_memory_gb, str(ada.price_per_hour)) == ("RTX4000ADA", 2, 20.0, "1.3400")
    assert ada.country == "FR"


def test_region_prices_replace_the_base_price_and_availability_is_per_region(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["g2-gpu-rtx4000a1-s:us-ord"].price_per_hour == Decimal("0.5200")
    sao_paulo = offers["g2-gpu-rtx4000a1-s:br-gru"]
    assert (sao_paulo.price_per_hour, sao_paulo.country) == (Decimal("0.7280"), "BR")
    assert sao_paulo.availability == "unavailable"
    assert offers["g2-gpu-rtx4000a1-s:de-fra-2"].availability == "available"
    assert offers["g1-gpu-rtx6000-1:us-southeast"].availability == "unavailable"


def test_a_gpu_family_without_a_card_is_counted_not_guessed(replay):
    types = copy.deepcopy(recording("linode", "types-2.json"))
    types["data"][0].update(id="g3-gpu-b200-1", label="B200 x1")
    replay.put("linode", "types-2.json", types)
    availability = copy.deepcopy(recording("linode", "availability.json"))
    availability["data"].append({"region": "us-ord", "plan": "g3-gpu-b200-1", "available": True})
    replay.put("linode", "availability.json", availability)
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"B200 x1": 1}
    assert "g3-gpu-b200-1:us-ord" not in by_id(batch)


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("linode", "types-1.json", {"data": {"g1-gpu-rtx6000-1": {}}, "page": 1, "pages": 2})
    with pytest.raises(PayloadError, match="linode: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "index", "mutate", "reason"),
    [
        ("types-2.json", 0, lambda row: row.pop("region_prices"), "missing field 'region_prices'"),
        ("types-1.json", 1, lambda row: row["price"].update(hourly="1.50"), "TypeError: price '1.50' is not a number"),
        ("availability.json", 0, lambda row: row.pop("available"), "missing field 'available'"),
    ],
    ids=["no-region-prices", "price-as-text", "no-available-flag"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, payload, index, mutate, reason):
    row = recording("linode", payload)["data"][index]
    whole, broken = with_one_item_broken(replay, hook, "linode", payload, lambda body: mutate(body["data"][index]))
    assert broken.dropped == {reason: 1}
    gone = lost(whole, broken)
    if "plan" in row:  # an availability row: that type is no longer offered in that region
        assert gone == {f"{row['plan']}:{row['region']}"}
    else:
        assert gone == {o.offer_id for o in whole.offers if o.instance_type == row["id"]} != set()
