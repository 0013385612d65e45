"""Prime Intellect hook against recorded /api/v1/availability/gpus pages, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.primeintellect import PrimeIntellectHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

FIRST = "gpus-1.json"
H100 = "lambdalabs/gpu_8x_h100_sxm5@us-east-1"


def hook(replay) -> PrimeIntellectHook:
    return PrimeIntellectHook(base_url=replay.vendor_url("primeintellect"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_pages_are_read_until_the_total_count(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers)) == (2, 6)  # 4 + 2 items, totalCount 6
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus


def test_a_first_page_holding_the_total_is_the_only_page(replay):
    replay.put("primeintellect", FIRST, recording("primeintellect", FIRST) | {"totalCount": 4})
    batch, _ = offers(replay)
    assert (batch.pages, len(batch.offers)) == (1, 4)


def test_an_empty_page_ends_the_listing(replay):
    replay.put("primeintellect", "gpus-2.json", {"items": [], "totalCount": 9})
    batch, _ = offers(replay)
    assert (batch.pages, len(batch.offers)) == (2, 4)


def test_offer_mapping(replay):
    _, by_id = offers(replay)
    h100 = by_id[H100]
    assert (h100.cloud, h100.instance_type, h100.gpu_model, h100.gpu_form_factor) == (
        "lambdalabs", "gpu_8x_h100_sxm5", "H100", "SXM")
    assert (h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == (8, 80.0, "23.9200")  # whole box
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (208, 1800, 1000)  # the default configuration
    assert (h100.availability, h100.interconnect, h100.region, h100.country) == (
        Availability.AVAILABLE, "nvlink", "us-east-1", "US")  # "Medium" stock; an 8-GPU SXM board

    pro = by_id["primecompute/pc-rtxpro6000-2@us-central-2"]  # "RTX_PRO_6000B_96GB": 96 GB per GPU
    assert (pro.gpu_model, pro.gpu_count, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 2, 96.0, "2.7000")
    a100 = by_id["hyperstack/n3-A100x1@CANADA-1"]
    assert (a100.gpu_form_factor, a100.availability, a100.interconnect, a100.country) == (
        "PCIe", Availability.LIMITED, None, "CA")  # "Low" stock
    h200 = by_id["datacrunch/8H200.141S.176V@FIN-01"]
    assert (h200.gpu_memory_gb, str(h200.price_per_hour), h200.interconnect, h200.availability, h200.continent) == (
        141.0, "26.4000", "infiniband", Availability.UNAVAILABLE, "EU")


def test_community_and_spot_offers(replay):
    _, by_id = offers(replay)
    community = by_id["runpod/NVIDIA GeForce RTX 4090@CA-MTL-1/community"]
    assert (str(community.price_per_hour), community.gpu_model, community.cloud, community.pricing_type) == (
        "0.3400", "RTX4090", "runpod", "on_demand")  # the community price, not the 0.69 on-demand one
    spot = by_id["datacrunch/1H100.80S.30V@FIN-01/spot"]
    assert (spot.pricing_type, str(spot.price_per_hour), spot.gpu_count, spot.interconnect) == ("spot", "0.9900", 1, None)


def test_gpu_memory_without_a_size_in_the_type_comes_from_the_registry(replay):
    body = copy.deepcopy(recording("primeintellect", FIRST))
    body["items"][1]["gpuType"] = "RTX4090"
    replay.put("primeintellect", FIRST, body)
    _, by_id = offers(replay)
    rtx = by_id["runpod/NVIDIA GeForce RTX 4090@CA-MTL-1/community"]
    assert (rtx.gpu_memory_gb, rtx.inferred) == (24, ("gpu_memory_gb",))


def test_a_page_without_items_is_refused(replay):
    replay.put("primeintellect", FIRST, {"data": []})
    with pytest.raises(PayloadError, match=r'primeintellect: malformed payload: expected {"items": \[...\], "totalCount"'):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda i: i["prices"].pop("onDemand"), "missing field 'onDemand'"),
        (lambda i: i["prices"].update(onDemand="23.92"), "field 'onDemand' is not a number"),
        (lambda i: i["prices"].update(currency="EUR"), "prices in 'EUR', not USD"),
        (lambda i: i.pop("gpuCount"), "missing field 'gpuCount'"),
        (lambda i: i.pop("cloudId"), "missing field 'cloudId'"),
    ],
    ids=["no-price", "price-a-string", "not-usd", "no-gpu-count", "no-cloud-id"],
)
def test_a_broken_offer_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "primeintellect", FIRST, lambda body: mutate(body["items"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {H100}


def test_each_offer_is_tagged_with_the_tier_its_security_names(replay):
    _, by_id = offers(replay)
    assert by_id["runpod/NVIDIA GeForce RTX 4090@CA-MTL-1/community"].tags == ("community-cloud",)
    assert by_id[H100].tags == by_id["datacrunch/1H100.80S.30V@FIN-01/spot"].tags == ("secure-cloud",)
    item = recording("primeintellect", FIRST)["items"][0] | {"security": "something else"}
    replay.put("primeintellect", FIRST, recording("primeintellect", FIRST) | {"items": [item], "totalCount": 1})
    _, by_id = offers(replay)
    assert by_id[H100].tags == ()  # a tier it does not know is no tag
