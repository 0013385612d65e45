"""Hyperbolic hook against the recorded POST /v1/marketplace answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.hyperbolic import HyperbolicHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken

LISTING = "marketplace.json"


def hook(replay) -> HyperbolicHook:
    return HyperbolicHook(base_url=replay.vendor_url("hyperbolic"), api_key=REPLAY_KEY)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_single_gpu_offer_per_node(replay):
    batch, by_id = offers(replay)
    assert (batch.pages, len(batch.offers), batch.skipped) == (1, 4, {"node without GPUs": 1})
    assert batch.unknown_gpus == {"NVIDIA-GeForce-GTX-1660-SUPER": 1} and not batch.dropped

    h100 = by_id["crimson-dragon/sfc-024"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", 1, 80.0, "1.4900")
    assert (h100.availability, h100.available_count, h100.vcpus) == (Availability.AVAILABLE, 5, 192)  # 8 - 3 rented
    assert (h100.region, h100.country, h100.instance_type, h100.inferred) == (
        "US, North America", "US", "NVIDIA-H100-80GB-HBM3", ())
    rtx = by_id["amber-lynx/korea-4090-1"]
    assert (rtx.gpu_model, str(rtx.price_per_hour), rtx.available_count, rtx.country) == ("RTX4090", "0.3500", 3, None)


def test_full_and_reserved_nodes_are_unavailable(replay):
    _, by_id = offers(replay)
    h200 = by_id["silver-falcon/ns-h200-03"]  # all 8 GPUs rented; memory from the registry
    assert (h200.availability, h200.available_count, str(h200.price_per_hour)) == (Availability.UNAVAILABLE, 0, "2.1500")
    assert (h200.gpu_memory_gb, h200.inferred, h200.country) == (141, ("gpu_memory_gb",), "CA")
    a100 = by_id["jade-otter/eu-a100-2"]  # the node is reserved
    assert (a100.gpu_model, a100.gpu_form_factor, a100.availability, a100.available_count) == (
        "A100", "SXM", Availability.UNAVAILABLE, 0)


def test_a_node_not_ready_is_unavailable(replay):
    body = copy.deepcopy(recording("hyperbolic", LISTING))
    body["instances"][0]["status"] = "node_offline"
    replay.put("hyperbolic", LISTING, body)
    _, by_id = offers(replay)
    assert by_id["crimson-dragon/sfc-024"].availability == Availability.UNAVAILABLE


def test_an_answer_without_instances_is_refused(replay):
    replay.put("hyperbolic", LISTING, {"nodes": []})
    with pytest.raises(PayloadError, match=r'hyperbolic: malformed payload: expected {"instances": \[...\]}'):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda n: n["pricing"]["price"].pop("amount"), "missing field 'amount'"),
        (lambda n: n["pricing"]["price"].update(amount="149"), "field 'amount' is not a number"),
        (lambda n: n.pop("gpus_reserved"), "missing field 'gpus_reserved'"),
        (lambda n: n["hardware"]["gpus"][0].pop("model"), "missing field 'model'"),
        (lambda n: n.pop("cluster_name"), "missing field 'cluster_name'"),
    ],
    ids=["no-price", "price-a-string", "no-reserved-count", "no-gpu-model", "no-cluster"],
)
def test_a_broken_node_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "hyperbolic", LISTING, lambda body: mutate(body["instances"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"crimson-dragon/sfc-024"}
