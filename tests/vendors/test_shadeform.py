"""Shadeform hook against the recorded GET /v1/instances/types answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.shadeform import ShadeformHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

LISTING = "instance-types.json"


def hook(replay) -> ShadeformHook:
    return ShadeformHook(base_url=replay.vendor_url("shadeform"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_offer_per_cloud_instance_type_and_region(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers)) == (1, 7)
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus

    h100 = by_id["lambdalabs:H100x8@us-east-1"]
    assert (h100.cloud, h100.instance_type, h100.gpu_model, h100.gpu_form_factor) == (
        "lambdalabs", "gpu_8x_h100_sxm5", "H100", "SXM")  # interconnect "sxm5": the board
    assert (h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == (8, 80, "23.9200")  # 2392 cents, 8 GPUs
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb, h100.interconnect) == (208, 1800, 22000, "nvlink")
    assert (h100.availability, h100.country, h100.continent) == (Availability.AVAILABLE, "US", "NA")
    assert by_id["lambdalabs:H100x8@us-south-1"].availability == Availability.UNAVAILABLE

    a100 = by_id["datacrunch:A100_80Gx8@FIN-01"]
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_memory_gb, str(a100.price_per_hour)) == (
        "A100", "SXM", 80, "10.3200")
    assert (a100.cloud, a100.country, a100.interconnect) == ("datacrunch", "FI", "nvlink")


def test_pcie_boards_and_regions_named_by_display_name(replay):
    _, by_id = offers(replay)
    a6000 = by_id["hyperstack:A6000@canada-1"]
    assert (a6000.gpu_model, a6000.gpu_memory_gb, str(a6000.price_per_hour), a6000.interconnect) == (
        "RTXA6000", 48, "0.5000", "pcie")
    assert (a6000.country, a6000.vcpus, a6000.ram_gb, a6000.disk_gb, a6000.cloud) == ("CA", 8, 58, 100, "hyperstack")
    norway = by_id["hyperstack:A6000@norway-1"]
    assert (norway.country, norway.availability) == ("NO", Availability.UNAVAILABLE)
    l40s = by_id["massedcompute:L40S@us-central-1"]
    assert (l40s.gpu_model, str(l40s.price_per_hour), l40s.country, l40s.instance_type) == (
        "L40S", "1.0300", "US", "gpu_1x_l40s")  # "US, Wichita, KS"
    runpod = by_id["runpod:A100_80G@any"]
    assert (runpod.gpu_form_factor, runpod.region, runpod.country, str(runpod.price_per_hour)) == (
        "PCIe", "any", None, "2.0300")


def test_nvlink_stated_on_a_pcie_board_is_nvlink(replay):
    body = copy.deepcopy(recording("shadeform", LISTING))
    body["instance_types"][0]["configuration"]["nvlink"] = True
    replay.put("shadeform", LISTING, body)
    _, by_id = offers(replay)
    assert by_id["hyperstack:A6000@canada-1"].interconnect == "nvlink"


def test_the_key_travels_in_x_api_key(replay):
    assert hook(replay).auth_headers("k") == {"X-API-KEY": "k"}


def test_an_answer_without_instance_types_is_refused(replay):
    replay.put("shadeform", LISTING, {"instances": []})
    with pytest.raises(PayloadError, match=r'shadeform: malformed payload: expected {"instance_types": \[...\]}'):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t.pop("hourly_price"), "missing field 'hourly_price'"),
        (lambda t: t.update(hourly_price="50"), "field 'hourly_price' is not a number"),
        (lambda t: t.update(availability=[]), "availability lists no region"),
        (lambda t: t["configuration"].pop("num_gpus"), "missing field 'num_gpus'"),
        (lambda t: t["availability"][1].pop("region"), "missing field 'region'"),
    ],
    ids=["no-price", "price-a-string", "no-region", "no-gpu-count", "a-region-without-name"],
)
def test_a_broken_instance_type_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "shadeform", LISTING, lambda body: mutate(body["instance_types"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"hyperstack:A6000@canada-1", "hyperstack:A6000@norway-1"}


def test_a_gpu_the_registry_does_not_know_is_counted(replay):
    body = copy.deepcopy(recording("shadeform", LISTING))
    body["instance_types"][4]["configuration"]["gpu_type"] = "RTX5000"
    replay.put("shadeform", LISTING, body)
    batch, by_id = offers(replay)
    assert batch.unknown_gpus == {"RTX5000 pcie": 1} and "massedcompute:L40S@us-central-1" not in by_id
