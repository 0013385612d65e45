"""Hyperstack hook against recorded flavors + pricebook served over real HTTP by the replay server."""

import copy

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.hyperstack import HyperstackHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay) -> HyperstackHook:
    return HyperstackHook(base_url=replay.vendor_url("hyperstack"), api_key=REPLAY_KEY)


def test_flavors_priced_from_the_pricebook(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2  # flavors, then the pricebook
    offers = by_id(batch)
    # CPU-only and spot flavors are not offers; the unpriced one (A100 NVLink) is dropped, with its reason
    assert sorted(offers) == [
        "CANADA-1:n3-H100x1", "CANADA-1:n3-H100x2", "CANADA-1:n3-H100x8", "CANADA-1:n3-L40x1",
        "CANADA-1:n3-RTX-PRO6000-SEx1",
        "NORWAY-1:n3-A100x1", "NORWAY-1:n3-A100x4", "NORWAY-1:n3-H100-SXM5x8", "NORWAY-1:n3-RTX-A6000x1",
        "US-1:n3-H200x8",
    ]
    assert batch.unknown_gpus == {}
    assert batch.skipped == {"CPU-only flavor": 2, "spot flavor: priced onto its on-demand twin": 1}
    assert batch.dropped == {"no pricebook entry for its GPU": 1}

    h100x8 = offers["CANADA-1:n3-H100x8"]
    assert str(h100x8.price_per_hour) == "15.2000"  # 8 x 1.90 per GPU
    assert str(h100x8.spot_price) == "12.1600"  # 8 x 1.52 from "H100-80G-PCIe-spot"
    assert (h100x8.gpu_model, h100x8.gpu_form_factor) == ("H100", "PCIe")
    assert (h100x8.gpu_count, h100x8.gpu_memory_gb) == (8, 80)
    assert (h100x8.vcpus, h100x8.ram_gb, h100x8.disk_gb) == (252, 1440, 6100)  # disk = root 100 + ephemeral 6000
    assert (h100x8.availability, h100x8.country, h100x8.continent) == ("unavailable", "CA", "NA")

    assert offers["CANADA-1:n3-H100x1"].availability == "available"
    assert str(offers["CANADA-1:n3-H100x2"].price_per_hour) == "3.8000"
    sxm = offers["NORWAY-1:n3-H100-SXM5x8"]
    assert (sxm.gpu_form_factor, str(sxm.price_per_hour), sxm.spot_price, sxm.country) == ("SXM", "19.2000", None, "NO")
    h200 = offers["US-1:n3-H200x8"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour), h200.country) == ("H200", 141, "28.0000", "US")
    a6000 = offers["NORWAY-1:n3-RTX-A6000x1"]
    assert (a6000.gpu_model, str(a6000.price_per_hour), str(a6000.spot_price)) == ("RTXA6000", "0.5000", "0.2500")
    assert (offers["CANADA-1:n3-L40x1"].gpu_model, offers["CANADA-1:n3-L40x1"].gpu_memory_gb) == ("L40", 48)
    # "RTX-PRO6000-SE" is not in _GPUS: the registry's one memory size (96 GB) is used
    pro = offers["CANADA-1:n3-RTX-PRO6000-SEx1"]
    assert (pro.gpu_model, pro.gpu_form_factor, pro.gpu_count, pro.gpu_memory_gb) == ("RTXPRO6000", None, 1, 96)
    assert (str(pro.price_per_hour), pro.spot_price, pro.country) == ("1.8000", None, "CA")
    assert (pro.vcpus, pro.ram_gb, pro.disk_gb, pro.availability) == (30, 180, 1000, "available")


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(replay):
    flavors = copy.deepcopy(recording("hyperstack", "flavors.json"))
    pricebook = copy.deepcopy(recording("hyperstack", "pricebook.json"))
    next(g for g in flavors["data"] if g["gpu"] == "L40")["gpu"] = "Quadro-P4000"
    next(p for p in pricebook if p["name"] == "L40")["name"] = "Quadro-P4000"  # priced: only the name is unknown
    replay.put("hyperstack", "flavors.json", flavors)
    replay.put("hyperstack", "pricebook.json", pricebook)
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"Quadro-P4000": 1}
    assert "CANADA-1:n3-L40x1" not in by_id(batch)
    assert len(batch.offers) == 9  # every other flavor is still an offer


def test_discounted_pricebook_value_is_the_price(replay):
    offers = by_id(hook(replay).fetch_batch())
    # A100-80G-PCIe: value 1.20 now, original_value 1.35 before the discount
    assert str(offers["NORWAY-1:n3-A100x1"].price_per_hour) == "1.2000"
    assert str(offers["NORWAY-1:n3-A100x4"].price_per_hour) == "4.8000"


def test_pricebook_change_reprices_every_flavor_of_that_gpu(replay):
    pricebook = copy.deepcopy(recording("hyperstack", "pricebook.json"))
    next(p for p in pricebook if p["name"] == "H100-80G-PCIe")["value"] = 2.1
    replay.put("hyperstack", "pricebook.json", pricebook)
    offers = by_id(hook(replay).fetch_batch())
    assert [str(offers[f"CANADA-1:n3-H100x{n}"].price_per_hour) for n in (1, 2, 8)] == ["2.1000", "4.2000", "16.8000"]


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("hyperstack", "flavors.json"))
    body.update(status=False)
    replay.put("hyperstack", "flavors.json", body)
    with pytest.raises(PayloadError, match="hyperstack: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "lost_ids"),
    [
        ("flavors.json", lambda body: body["data"][0]["flavors"][0].pop("gpu_count"), "missing field 'gpu_count'",
         {"CANADA-1:n3-H100x1"}),
        ("flavors.json", lambda body: body["data"][0]["flavors"][1].update(stock_available="yes"),
         "stock_available must be a boolean", {"CANADA-1:n3-H100x2"}),
        ("pricebook.json", lambda body: body[0].update(value="n/a"), "not a price: 'n/a'",
         set()),  # H100-80G-PCIe unpriced: its flavors are dropped (below)
    ],
    ids=["missing-gpu-count", "stock-not-boolean", "price-not-a-number"],
)
def test_a_broken_flavor_or_price_is_dropped_with_its_reason_and_the_rest_land(replay, payload, mutate, reason,
                                                                              lost_ids):
    whole, broken = with_one_item_broken(replay, hook, "hyperstack", payload, mutate)
    added = broken.dropped - whole.dropped
    if payload == "pricebook.json":
        assert added == {reason: 1, "no pricebook entry for its GPU": 3}
        assert lost(whole, broken) == {"CANADA-1:n3-H100x1", "CANADA-1:n3-H100x2", "CANADA-1:n3-H100x8"}
    else:
        assert added == {reason: 1}
        assert lost(whole, broken) == lost_ids


def test_pricebook_wrapped_in_an_envelope_is_rejected(replay):
    replay.put("hyperstack", "pricebook.json", {"status": True, "data": recording("hyperstack", "pricebook.json")})
    with pytest.raises(PayloadError, match="pricebook as a JSON array"):
        hook(replay).fetch_batch()


def test_nvlink_gpu_names_state_the_interconnect(replay):
    replay.put("hyperstack", "flavors.json", recording("hyperstack", "variant-nvlink-flavors.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU-only flavor": 1} and not batch.dropped and not batch.unknown_gpus
    offers = by_id(batch)
    assert set(offers) == {"CANADA-1:n3-H100x2-NVLink", "CANADA-1:n3-H100x8-NVLink", "NORWAY-1:n3-H100-SXM5x8"}
    x2 = offers["CANADA-1:n3-H100x2-NVLink"]  # "1.95" per GPU, a numeric string
    assert (x2.gpu_model, x2.gpu_form_factor, x2.gpu_count, x2.gpu_memory_gb, str(x2.price_per_hour)) == (
        "H100", "PCIe", 2, 80, "3.9000")
    assert (x2.interconnect, x2.vcpus, x2.ram_gb, x2.disk_gb, x2.availability) == ("nvlink", 60, 360, 850, "available")
    x8 = offers["CANADA-1:n3-H100x8-NVLink"]
    assert (str(x8.price_per_hour), x8.interconnect, x8.availability, x8.disk_gb) == ("15.6000", "nvlink", "unavailable", 6100)
    sxm = offers["NORWAY-1:n3-H100-SXM5x8"]  # 8 x 2.40; no ephemeral disk field
    assert (str(sxm.price_per_hour), sxm.interconnect, sxm.disk_gb, sxm.country) == ("19.2000", None, 100, "NO")
