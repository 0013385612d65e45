"""Lambda hook against the recorded /api/v1/instance-types answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.lambda_cloud import LambdaHook
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY) -> LambdaHook:
    return LambdaHook(base_url=replay.vendor_url("lambda"), api_key=key)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_one_offer_per_instance_type_and_region_with_capacity(replay):
    batch, by_id = offers(replay)
    assert batch.pages == 1
    assert len(batch.offers) == 12
    assert batch.unknown_gpus == {"Tesla M60": 1}  # not in the registry: counted, not guessed
    assert not any(o.instance_type == "gpu_1x_m60" for o in batch.offers)

    h100 = by_id["gpu_8x_h100_sxm5@europe-central-1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert str(h100.price_per_hour) == "23.9200"  # 2392 cents/hour for the whole 8-GPU instance
    assert (h100.country, h100.continent) == ("DE", "EU")  # region description "Germany"
    assert h100.ram_gb == 1932.7 and h100.disk_gb == 26607.3  # 1800 GiB, 24780 GiB -> GB
    assert h100.vcpus == 208 and h100.spot_price is None
    assert by_id["gpu_8x_h100_sxm5@us-south-1"].country == "US"

    b300 = by_id["gpu_8x_b300_sxm6@us-east-1"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288)
    assert str(b300.price_per_hour) == "75.9200"  # 7592 cents/hour for the whole 8-GPU instance
    assert (b300.country, b300.ram_gb, b300.disk_gb, b300.vcpus) == ("US", 3113.9, 23622.3, 208)

    a10 = [o for o in batch.offers if o.instance_type == "gpu_1x_a10"]
    assert sorted(o.region for o in a10) == ["us-east-1", "us-west-1"]
    assert all(str(o.price_per_hour) == "0.7500" and o.gpu_form_factor == "PCIe" for o in a10)


def test_descriptions_give_per_gpu_memory_and_model(replay):
    _, by_id = offers(replay)
    assert (by_id["gpu_1x_a100_sxm4@us-east-1"].gpu_model, by_id["gpu_1x_a100_sxm4@us-east-1"].gpu_memory_gb) == ("A100", 40)
    assert by_id["gpu_8x_v100@us-west-2"].gpu_model == "V100"  # "Tesla V100 (16 GB)"
    assert by_id["gpu_1x_rtx6000@us-south-1"].gpu_model == "QUADRORTX6000"  # "RTX 6000 (24 GB)" is Turing
    gh200 = by_id["gpu_1x_gh200@us-east-3"]
    assert (gh200.gpu_memory_gb, gh200.cpu_arch, gh200.gpu_form_factor) == (96, "arm64", None)
    assert by_id["gpu_1x_a6000@asia-south-1"].country == "IN"


def test_instance_types_without_capacity_are_listed_unavailable(replay):
    _, by_id = offers(replay)
    for name in ("gpu_8x_a100_80gb_sxm4", "gpu_8x_b200_sxm6"):
        offer = by_id[f"{name}@none"]
        assert (offer.availability, offer.region, offer.country) == (Availability.UNAVAILABLE, "unknown", None)
    assert str(by_id["gpu_8x_b200_sxm6@none"].price_per_hour) == "47.9200"
    assert all(o.availability == Availability.AVAILABLE for o in by_id.values() if not o.offer_id.endswith("@none"))


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("lambda", "instance-types.json", {"data": [{"name": "gpu_1x_a10"}]})
    with pytest.raises(PayloadError, match="lambda: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda entry: entry["instance_type"].update(gpu_description="A10 24GB"),
         "unparseable gpu_description 'A10 24GB'"),
        (lambda entry: entry["instance_type"].pop("price_cents_per_hour"), "missing field 'price_cents_per_hour'"),
        (lambda entry: entry.update(regions_with_capacity_available={"name": "us-east-1"}),
         "regions_with_capacity_available is not a list"),
        (lambda entry: entry["instance_type"].update(name="gpu_1x_a10_renamed"), "instance type keyed under another name"),
    ],
    ids=["unparseable-gpu-description", "missing-price", "regions-not-a-list", "key-name-mismatch"],
)
def test_a_broken_instance_type_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    body = copy.deepcopy(recording("lambda", "instance-types.json"))
    mutate(body["data"]["gpu_1x_a10"])
    replay.put("lambda", "instance-types.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}
    assert len(batch.offers) == 10 and not any(o.instance_type == "gpu_1x_a10" for o in batch.offers)


def test_the_older_layout_reads_gpus_from_the_description(replay):
    replay.put("lambda", "instance-types.json", recording("lambda", "variant-older-layout.json"))
    batch, by_id = offers(replay)
    assert batch.skipped == {"CPU-only instance type": 1} and not batch.dropped
    v100 = by_id["gpu_8x_v100@none"]
    assert (v100.gpu_model, v100.gpu_count, v100.gpu_memory_gb, str(v100.price_per_hour)) == ("V100", 8, 16, "4.4000")
    h100 = by_id["gpu_1x_h100_pcie@us-west-3"]
    assert (h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb, h100.country) == ("PCIe", 1, 80, "US")
    a6000 = by_id["gpu_4x_a6000@asia-northeast-1"]
    assert (a6000.gpu_model, a6000.gpu_count, a6000.country) == ("RTXA6000", 4, "JP")


def test_the_newer_layout_reads_architecture_and_regions_without_descriptions(replay):
    replay.put("lambda", "instance-types.json", recording("lambda", "variant-newer-layout.json"))
    batch, by_id = offers(replay)
    assert batch.skipped == {"CPU-only instance type": 1} and not batch.dropped
    assert (by_id["gpu_1x_gh200@us-east-3"].cpu_arch, by_id["gpu_1x_gh200@us-east-3"].gpu_memory_gb) == ("arm64", 96)
    b200 = by_id["gpu_8x_b200_sxm6@us-south-2"]
    assert (b200.gpu_model, b200.gpu_form_factor, b200.gpu_count, b200.country) == ("B200", "SXM", 8, "US")
    h100 = by_id["gpu_8x_h100_sxm5@asia-northeast-2"]
    assert (h100.country, h100.disk_gb, h100.ram_gb) == ("KR", None, 1932.7)  # no storage_gib sent
