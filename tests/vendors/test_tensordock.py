"""TensorDock hook against the recorded /api/v2/locations answer, served over real HTTP."""

import copy

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.tensordock import TensorDockHook
from tests.conftest import REPLAY_KEY, recording

IDAHO = "5c1e7b52-4e0a-4f5e-9d8b-2a7f0c3e91a1"
VIRGINIA = "9a3d2f10-7b64-4c2e-8f15-6e0b9d4c7a22"


def hook(replay, key=REPLAY_KEY) -> TensorDockHook:
    return TensorDockHook(base_url=replay.vendor_url("tensordock"), api_key=key)


def test_locations_give_one_single_gpu_offer_per_gpu_and_location(replay):
    batch = hook(replay).fetch_batch()
    by_id = {o.offer_id: o for o in batch.offers}
    assert batch.pages == 1 and len(batch.offers) == 8
    assert batch.unknown_gpus == {"NVIDIA GeForce GTX 1660 SUPER PCIe 6GB": 1}  # counted, not guessed
    assert not any(o.offer_id.endswith(":geforcegtx1660super-pcie-6gb") for o in batch.offers)

    h100 = by_id[f"{IDAHO}:h100-sxm5-80gb"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 1, 80)
    # 2.25 GPU + 2 vCPU x 0.003 + 4 GB RAM x 0.002 + 100 GB storage x 0.00005
    assert str(h100.price_per_hour) == "2.2690"
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (2, 4, 100)
    assert (h100.region, h100.country, h100.available_count) == ("Chubbuck, United States", "US", 8)

    l40s = next(o for o in batch.offers if o.instance_type == "1x l40s-pcie-48gb")
    assert (str(l40s.price_per_hour), l40s.country, l40s.continent) == ("0.6700", "DE", "EU")
    assert by_id[f"{VIRGINIA}:geforcertx4090-pcie-24gb"].gpu_form_factor == "PCIe"

    rtx5060ti = by_id[f"{VIRGINIA}:geforcertx5060ti-pcie-16gb"]
    assert (rtx5060ti.gpu_model, rtx5060ti.gpu_count, rtx5060ti.gpu_memory_gb) == ("RTX5060TI", 1, 16)
    # 0.11 GPU + 2 vCPU x 0.002 + 4 GB RAM x 0.001 + 100 GB storage x 0.00005
    assert str(rtx5060ti.price_per_hour) == "0.1230"
    assert (rtx5060ti.country, rtx5060ti.available_count, rtx5060ti.availability) == ("US", 6, Availability.AVAILABLE)


def test_gpu_with_nothing_deployable_is_unavailable(replay):
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    a6000 = by_id[f"{VIRGINIA}:rtxa6000-pcie-48gb"]
    assert (a6000.availability, a6000.available_count, str(a6000.price_per_hour)) == (Availability.UNAVAILABLE, 0, "0.4150")


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("tensordock", "locations.json", {"data": {"locations": [{"id": "x", "gpus": "none"}]}})
    with pytest.raises(PayloadError, match="tensordock: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda gpu: gpu.pop("pricing"), "missing field 'pricing'"),
        (lambda gpu: gpu.update(max_count=-1), "max_count is not a count"),
        (lambda gpu: gpu.update(price_per_hr="2.25/hr"), "field 'price_per_hr' is not a number"),
    ],
    ids=["no-resource-pricing", "negative-max-count", "price-not-a-number"],
)
def test_a_broken_gpu_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    body = copy.deepcopy(recording("tensordock", "locations.json"))
    mutate(body["data"]["locations"][0]["gpus"][0])
    replay.put("tensordock", "locations.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}
    assert len(batch.offers) == 7 and not any(o.instance_type == "1x h100-sxm5-80gb" for o in batch.offers)


def test_a_gpu_name_without_memory_takes_it_from_the_registry(replay):
    body = copy.deepcopy(recording("tensordock", "locations.json"))
    body["data"]["locations"][2]["gpus"][0].update(displayName="L40S PCIe", v0Name="l40s-pcie")
    replay.put("tensordock", "locations.json", body)
    l40s = next(o for o in hook(replay).fetch_batch().offers if o.instance_type == "1x l40s-pcie")
    assert (l40s.gpu_memory_gb, l40s.inferred) == (48, ("gpu_memory_gb",))


def test_the_v2_hostnodes_listing_names_gpus_by_v0name_and_prices_with_the_nodes_rates(replay):
    replay.put("tensordock", "locations.json", recording("tensordock", "variant-hostnodes.json"))
    batch = hook(replay).fetch_batch()
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus
    by_id = {o.offer_id: o for o in batch.offers}
    rtx = by_id["0b4d8e7e-3f5a-4c21-9b7d-6a2e1f0c8d34:geforcertx4090-pcie-24gb"]
    # 0.37 GPU + 2 x 0.0025 vCPU + 4 x 0.0015 GB RAM + 100 x 0.00005 GB storage
    assert (rtx.gpu_model, rtx.gpu_memory_gb, str(rtx.price_per_hour)) == ("RTX4090", 24.0, "0.3860")
    assert (rtx.availability, rtx.available_count, rtx.region, rtx.country) == ("available", 3, "Orlando, United States", "US")
    a6000 = by_id["0b4d8e7e-3f5a-4c21-9b7d-6a2e1f0c8d34:rtxa6000-pcie-48gb"]
    assert (a6000.gpu_model, str(a6000.price_per_hour), a6000.availability, a6000.available_count) == (
        "RTXA6000", "0.4660", "unavailable", 0)
    h100 = by_id["7c9f2a14-5e8b-4d63-a1f0-3b6c9d2e7f58:h100-sxm5-80gb"]  # 2.19 + 0.006 + 0.008 + 0.01
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", "SXM", 80.0, "2.2140")
    assert (h100.country, h100.continent, h100.vcpus, h100.ram_gb, h100.disk_gb) == ("FI", "EU", 2, 4, 100)


def test_the_v0_marketplace_hostnodes_are_read_gpu_by_gpu(replay):
    replay.put("tensordock", "locations.json", recording("tensordock", "variant-v0-marketplace.json"))
    batch = hook(replay).fetch_batch()
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus
    by_id = {o.offer_id: o for o in batch.offers}
    l40 = by_id["a1b2c3d4e5f60718293a4b5c6d7e8f90:l40-pcie-48gb"]  # 1.05 + 2 x 0.003 + 4 x 0.002 + 100 x 5e-05
    assert (l40.gpu_model, l40.gpu_memory_gb, str(l40.price_per_hour), l40.available_count) == ("L40", 48.0, "1.0690", 8)
    assert (l40.region, l40.country) == ("Joplin, United States", "US")
    rtx = by_id["f0e1d2c3b4a5968778695a4b3c2d1e0f:geforcertx3090-pcie-24gb"]  # 0.2 + 0.004 + 0.006 + 0.006
    assert (rtx.gpu_model, rtx.gpu_memory_gb, str(rtx.price_per_hour), rtx.country) == ("RTX3090", 24.0, "0.2160", "DE")
    a5000 = by_id["f0e1d2c3b4a5968778695a4b3c2d1e0f:rtxa5000-pcie-24gb"]
    assert (a5000.gpu_model, str(a5000.price_per_hour), a5000.availability) == ("RTXA5000", "0.3060", "unavailable")
