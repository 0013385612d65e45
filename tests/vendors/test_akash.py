"""Akash hook against the recorded Console API GPU prices served over real HTTP by the replay server."""

import copy

import pytest

from gpubroker_provider.hooks.akash import AkashHook, gpu_memory_gb
from gpubroker_provider.hooks.base import PayloadError
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording

PAYLOAD = "gpu-prices.json"


def hook(replay) -> AkashHook:
    return AkashHook(base_url=replay.vendor_url("akash"))


def test_gpu_prices_take_the_median_bid_per_gpu(replay):
    batch = hook(replay).fetch_batch()
    models = recording("akash", PAYLOAD)["models"]
    # v100 has no bids (price null): skipped; rtx3050 is not in the registry: counted, not dropped silently
    assert len(batch.offers) == len(models) - 2
    assert batch.unknown_gpus == {"rtx3050 PCIe": 1}
    offers = by_id(batch)
    assert "nvidia-v100-32gi-sxm2" not in offers
    assert "nvidia-rtx3050-8gi-pcie" not in offers

    h100 = offers["nvidia-h100-80gi-sxm5"]
    assert str(h100.price_per_hour) == "2.1100"  # med, not avg 2.18 / weightedAverage 2.04 / min 1.62
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 1, 80)
    assert (h100.availability, h100.available_count) == ("available", 72)
    assert (h100.region, h100.country, h100.continent) == ("global", None, None)

    a100_40 = offers["nvidia-a100-40gi-pcie"]
    assert (a100_40.gpu_model, a100_40.gpu_form_factor, a100_40.gpu_memory_gb) == ("A100", "PCIe", 40)
    assert (a100_40.availability, a100_40.available_count, str(a100_40.price_per_hour)) == ("unavailable", 0, "0.8000")
    assert offers["nvidia-a100-80gi-sxm4"].gpu_memory_gb == 80
    assert (offers["nvidia-a6000-48gi-pcie"].gpu_model, str(offers["nvidia-a6000-48gi-pcie"].price_per_hour)) == (
        "RTXA6000", "0.4500",
    )
    assert offers["nvidia-h200-141gi-sxm5"].gpu_memory_gb == 141
    assert offers["nvidia-rtx4090-24gi-pcie"].gpu_model == "RTX4090"
    rtx3060ti = offers["nvidia-rtx3060ti-8gi-pcie"]
    assert (rtx3060ti.gpu_model, rtx3060ti.gpu_form_factor, rtx3060ti.gpu_count, rtx3060ti.gpu_memory_gb) == (
        "RTX3060TI", "PCIe", 1, 8,
    )
    assert (str(rtx3060ti.price_per_hour), rtx3060ti.availability, rtx3060ti.available_count) == (
        "0.0800", "available", 9,
    )


def test_a_configured_key_is_never_sent_to_the_public_api(replay):
    assert AkashHook(base_url=replay.vendor_url("akash"), api_key="sk-secret").auth_headers("sk-secret") == {}
    assert AkashHook(base_url=replay.vendor_url("akash"), api_key="sk-secret").fetch_batch().offers


def test_memory_quantities():
    assert gpu_memory_gb("80Gi") == 80
    assert gpu_memory_gb("141Gi") == 141
    with pytest.raises(ValueError):
        gpu_memory_gb("80 GB")


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("akash", PAYLOAD, {"availability": {"total": 1, "available": 1}})
    with pytest.raises(PayloadError, match="akash: malformed payload: expected"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda model: model["price"].pop("med"), "missing field 'med'"),
        (lambda model: model["price"].update(currency="AKT"), "unexpected currency 'AKT'"),
        (lambda model: model.update(ram="80GB"), "unexpected GPU memory '80GB'"),
        (lambda model: model["price"].update(med=-1), "price_per_hour: Input should be greater than 0"),
        (lambda model: model["availability"].update(available="many"), "invalid literal for int() with base 10: 'many'"),
    ],
    ids=["no-median", "not-usd", "ram-not-a-quantity", "negative-price", "bad-availability"],
)
def test_a_broken_model_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "akash", PAYLOAD, lambda body: mutate(body["models"][0]))
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == 1


def test_models_without_bids_are_skipped_not_dropped(replay):
    batch = hook(replay).fetch_batch()
    unpriced = sum(1 for model in recording("akash", PAYLOAD)["models"] if model["price"] is None)
    assert unpriced and batch.skipped == {"no bids: nothing to price": unpriced} and not batch.dropped
