"""CloudRift hook against the recorded POST /api/v1/instance-types/list answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.cloudrift import CloudRiftHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

LISTING = "instance-types.json"


def hook(replay) -> CloudRiftHook:
    return CloudRiftHook(base_url=replay.vendor_url("cloudrift"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_offer_per_variant_and_datacenter(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers), batch.skipped) == (1, 8, {"CPU-only variant": 1})
    assert not batch.dropped and not batch.unknown_gpus

    one = by_id["rtx49-10c-nr.1@us-east-nc-nr-1"]
    assert (one.gpu_model, one.gpu_count, one.gpu_memory_gb, str(one.price_per_hour)) == ("RTX4090", 1, 24.0, "0.3900")
    assert (one.vcpus, one.ram_gb, one.disk_gb) == (16, 68.7, 1099.5)  # 64 GiB, 1 TiB in bytes -> GB
    assert (one.availability, one.available_count) == (Availability.AVAILABLE, 4)  # 4 of its 6 hosts free
    assert (one.region, one.country, one.continent, one.instance_type) == (
        "us-east-nc-nr-1", "US", "NA", "rtx49-10c-nr.1")  # no country_code listed: the name's "us-" prefix

    two = by_id["rtx49-10c-nr.2@us-east-nc-nr-1"]  # cents for the whole 2-GPU variant
    assert (two.gpu_count, str(two.price_per_hour), two.ram_gb, two.disk_gb, two.available_count) == (
        2, "0.7800", 137.4, 2199.0, 2)
    eight = by_id["rtx49-10c-nr.8@us-east-nc-nr-1"]  # no free host listed: unavailable
    assert (str(eight.price_per_hour), eight.vcpus, eight.ram_gb, eight.disk_gb) == ("3.1200", 128, 549.8, 8796.1)
    assert (eight.availability, eight.available_count) == (Availability.UNAVAILABLE, 0)


def test_the_datacenters_country_code_wins_over_the_name(replay):
    _, by_id = offers(replay)
    finland = by_id["rtx59-16c.1@eu-north-1"]  # "eu-north-..." would read as Sweden
    assert (finland.country, finland.continent, finland.available_count) == ("FI", "EU", 2)
    assert (finland.gpu_model, finland.gpu_memory_gb, str(finland.price_per_hour), finland.ram_gb) == (
        "RTX5090", 32.0, "0.6500", 103.1)
    assert by_id["rtx59-16c.1@us-east-nc-nr-1"].available_count == 1
    four = by_id["rtx59-16c.4@eu-north-1"]  # 0 free hosts stated
    assert (four.gpu_count, str(four.price_per_hour), four.availability) == (4, "2.6000", Availability.UNAVAILABLE)


def test_workstation_and_amd_gpus(replay):
    _, by_id = offers(replay)
    pro = by_id["pro6000-24c.1@us-east-nc-nr-1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour), pro.vcpus) == ("RTXPRO6000", 96.0, "1.2900", 24)
    mi = by_id["mi350x.8@us-east-nc-nr-1"]
    assert (mi.gpu_model, mi.gpu_vendor, mi.gpu_count, mi.gpu_memory_gb) == ("MI350X", "AMD", 8, 288.0)
    assert (str(mi.price_per_hour), mi.vcpus, mi.ram_gb, mi.disk_gb) == ("18.3200", 256, 2199.0, 8796.1)
    assert all(o.pricing_type == "on_demand" and o.spot_price is None and o.interconnect is None for o in by_id.values())


def test_a_gpu_the_registry_does_not_know_is_counted_not_guessed(replay):
    body = copy.deepcopy(recording("cloudrift", LISTING))
    body["data"]["instance_types"][0]["brand_short"] = "RTX 2060"
    replay.put("cloudrift", LISTING, body)
    batch, by_id = offers(replay)
    assert batch.unknown_gpus == {"RTX 2060": 3} and len(by_id) == 5


def test_a_listing_without_instance_types_is_refused(replay):
    replay.put("cloudrift", LISTING, {"version": "2025-05-29", "data": {"types": []}})
    with pytest.raises(PayloadError, match='cloudrift: malformed payload: expected {"data": {"instance_types"'):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda variant: variant.pop("cost_per_hour"), "missing field 'cost_per_hour'"),
        (lambda variant: variant.update(cost_per_hour="39"), "field 'cost_per_hour' is not a number"),
        (lambda variant: variant.update(nodes_per_dc={}), "variant in no datacenter (nodes_per_dc empty)"),
        (lambda variant: variant.pop("vram"), "missing field 'vram'"),
        (lambda variant: variant.update(cost_per_hour=0), "price_per_hour: Input should be greater than 0"),
    ],
    ids=["no-price", "price-a-string", "no-datacenter", "no-vram", "zero-price"],
)
def test_a_broken_variant_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(
        replay, hook, "cloudrift", LISTING, lambda body: mutate(body["data"]["instance_types"][0]["variants"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"rtx49-10c-nr.1@us-east-nc-nr-1"}
