"""Cudo Compute hook against recorded machine types served over real HTTP by the replay server."""

import copy

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.cudo import CudoHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import by_id

PAYLOAD = "machine-types-2.json"


def hook(replay) -> CudoHook:
    return CudoHook(base_url=replay.vendor_url("cudo"), api_key=REPLAY_KEY)


def test_machine_types_normalise_to_one_gpu_entry_offers(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 1
    rows = recording("cudo", PAYLOAD)["machineTypes"]
    # one CPU-only machine type skipped, one GPU the registry does not know counted
    assert len(batch.offers) == len(rows) - 2
    assert batch.unknown_gpus == {"Quadro P4000": 1}
    assert "no-luster-1:epyc-rome-p4000:nvidia-quadro-p4000" not in by_id(batch)
    assert all(o.gpu_count == 1 for o in batch.offers)


def test_price_is_gpu_plus_minimum_vcpus_and_ram(replay):
    offers = by_id(hook(replay).fetch_batch())
    h100 = offers["se-smedjebacken-1:sapphire-rapids-h100:nvidia-h100-sxm"]
    # 1 GPU at 2.25 + 12 vCPUs (minVcpuPerGpu) at 0.0025 + 48 GiB (12 / 0.25) at 0.0035
    assert (h100.vcpus, h100.ram_gb) == (12, 48)
    assert str(h100.price_per_hour) == "2.4480"
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_memory_gb) == ("H100", "SXM", 80)
    assert (h100.region, h100.country, h100.continent) == ("se-smedjebacken-1", "SE", "EU")

    a5000 = offers["gb-bournemouth-1:epyc-rome-rtx-a5000:nvidia-rtx-a5000"]
    # minVcpuPerGpu 2.5 rounds up to 3 vCPUs; maxVcpuPerMemoryGib 1 -> 3 GiB
    assert (a5000.vcpus, a5000.ram_gb, str(a5000.price_per_hour)) == (3, 3, "0.3650")
    assert (a5000.gpu_model, a5000.country) == ("RTXA5000", "GB")

    expected = {
        "no-luster-1:epyc-milan-rtx-a6000:nvidia-rtx-a6000": ("RTXA6000", 48, "0.4836", "NO"),
        "ca-montreal-1:ice-lake-a40:nvidia-a40-compute": ("A40", 48, "0.4244", "CA"),
        "us-newyork-1:epyc-genoa-l40s:nvidia-l40s-compute": ("L40S", 48, "1.0748", "US"),
        "se-stockholm-1:epyc-milan-a100-pcie:nvidia-a100-80gb-pcie": ("A100", 80, "1.5930", "SE"),
        "br-saopaulo-1:cascade-lake:nvidia-rtx-3080": ("RTX3080", 10, "0.0563", "BR"),
        # single-size model missing from the hook's table: memory from the registry;
        # 0.22 + 2 vCPUs at 0.0023 + 2 GiB at 0.0033
        "us-carlsbad-1:epyc-genoa-rtx-2000-ada:nvidia-rtx-2000-ada": ("RTX2000ADA", 16, "0.2312", "US"),
    }
    for offer_id, (model, memory, price, country) in expected.items():
        offer = offers[offer_id]
        assert (offer.gpu_model, offer.gpu_memory_gb, str(offer.price_per_hour), offer.country) == (
            model, memory, price, country,
        ), offer_id


def test_availability_follows_free_gpus(replay):
    offers = by_id(hook(replay).fetch_batch())
    nvl = offers["us-santaclara-1:epyc-genoa-h100-nvl:nvidia-h100-nvl"]
    assert (nvl.gpu_model, nvl.gpu_form_factor, nvl.gpu_memory_gb) == ("H100", "NVL", 94)
    assert (nvl.availability, nvl.available_count) == ("unavailable", 0)
    a6000 = offers["no-luster-1:epyc-milan-rtx-a6000:nvidia-rtx-a6000"]
    assert (a6000.availability, a6000.available_count) == ("available", 27)
    ada = offers["us-carlsbad-1:epyc-genoa-rtx-2000-ada:nvidia-rtx-2000-ada"]
    assert (ada.vcpus, ada.ram_gb, ada.availability, ada.available_count) == (2, 2, "available", 12)


def test_price_change_is_seen_on_the_next_sync(replay):
    body = copy.deepcopy(recording("cudo", PAYLOAD))
    body["machineTypes"][1]["gpuPriceHr"]["value"] = "1.990000"
    replay.put("cudo", PAYLOAD, body)
    h100 = by_id(hook(replay).fetch_batch())["se-smedjebacken-1:sapphire-rapids-h100:nvidia-h100-sxm"]
    assert str(h100.price_per_hour) == "2.1880"


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("cudo", PAYLOAD, {"machineTypes": {"rows": []}})
    with pytest.raises(PayloadError, match="cudo: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda row: row.update(gpuPriceHr=[0.45]), "not a decimal price: [0.45]"),  # neither {"value": ...} nor a decimal
        (lambda row: row["vcpuPriceHr"].pop("value"), "missing field 'value'"),
        (lambda row: row.pop("maxVcpuPerMemoryGib"), "missing field 'minMemoryGib'"),  # no RAM ratio, no minimum
        (lambda row: row["gpuPriceHr"].update(value="-9.35"), "price_per_hour: Input should be greater than 0"),
    ],
    ids=["price-not-a-decimal", "missing-price-value", "no-ram-ratio", "negative-price"],
)
def test_a_broken_machine_type_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    body = copy.deepcopy(recording("cudo", PAYLOAD))
    whole = len(hook(replay).fetch_batch().offers)
    mutate(body["machineTypes"][1])
    replay.put("cudo", PAYLOAD, body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}
    assert len(batch.offers) == whole - 1
    assert "se-smedjebacken-1:sapphire-rapids-h100:nvidia-h100-sxm" not in by_id(batch)


def test_cpu_only_machine_types_are_skipped_not_dropped(replay):
    batch = hook(replay).fetch_batch()
    cpu_only = sum(1 for row in recording("cudo", PAYLOAD)["machineTypes"] if not row["gpuModelId"])
    assert cpu_only and batch.skipped == {"CPU-only machine type": cpu_only} and not batch.dropped


def test_the_older_machine_types_rows_price_the_smallest_vm_they_state(replay):
    replay.put("cudo", "machine-types-2.json", recording("cudo", "variant-older-machine-types.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU-only machine type": 1} and not batch.dropped and not batch.unknown_gpus
    offers = {o.offer_id: o for o in batch.offers}
    a5000 = offers["gb-bournemouth-1:epyc-rome-rtx-a5000:nvidia-rtx-a5000"]
    # 0.35 GPU + 2 vCPUs x 0.002 + 4 GiB (minMemoryGib) x 0.003
    assert (a5000.gpu_model, a5000.gpu_memory_gb, str(a5000.price_per_hour), a5000.vcpus, a5000.ram_gb) == (
        "RTXA5000", 24.0, "0.3660", 2, 4)
    assert (a5000.availability, a5000.available_count, a5000.country) == ("unknown", None, "GB")
    a40 = offers["us-carlsbad-1:ice-lake-a40:nvidia-a40"]  # minVcpu 4, 8 GiB: 0.79 + 0.01 + 0.0256
    assert (a40.gpu_model, a40.gpu_memory_gb, str(a40.price_per_hour), a40.vcpus, a40.ram_gb) == ("A40", 48.0, "0.8256", 4, 8)


def test_the_sdks_snake_case_dict_is_read_as_the_rest_answer(replay):
    replay.put("cudo", "machine-types-2.json", recording("cudo", "variant-sdk-dict.json"))
    batch = hook(replay).fetch_batch()
    assert not batch.dropped and not batch.skipped
    offers = {o.offer_id: o for o in batch.offers}
    a6000 = offers["no-luster-1:epyc-milan-rtx-a6000:nvidia-rtx-a6000"]  # 0.45 + 4 x 0.0022 + 8 x 0.0031
    assert (str(a6000.price_per_hour), a6000.vcpus, a6000.ram_gb, a6000.availability, a6000.available_count) == (
        "0.4836", 4, 8, "available", 27)
    nvl = offers["ca-montreal-3:sapphire-rapids-h100-nvl:nvidia-h100-nvl"]  # 2.1 + 8 x 0.0025 + 32 x 0.0035
    assert (nvl.gpu_model, nvl.gpu_form_factor, nvl.gpu_memory_gb, str(nvl.price_per_hour)) == ("H100", "NVL", 94, "2.2320")
    assert (nvl.availability, nvl.available_count, nvl.country) == ("unavailable", 0, "CA")
