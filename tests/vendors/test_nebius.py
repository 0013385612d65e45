"""Nebius static catalogue: per-GPU prices x preset GPUs, GiB -> GB, HGX names, unknown GPUs counted."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.nebius import NebiusHook
from tests.vendors import lost

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    [page] = NebiusHook().fetch_raw()
    return page


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_presets_map_to_whole_vm_prices_per_region(catalogue):
    batch = NebiusHook().parse([catalogue], NOW)
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == 16
    assert batch.unknown_gpus == {}
    assert not batch.memory_mismatches

    h100 = offers["gpu-h100-sxm/8gpu-128vcpu-1600gb@eu-north1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("36.0000")  # 8 x $4.50 per GPU-hour
    assert (h100.vcpus, h100.ram_gb) == (128, 1718.0)  # 1600 GiB
    assert (h100.region, h100.country, h100.continent) == ("eu-north1", "FI", "EU")

    h200 = offers["gpu-h200-sxm/1gpu-16vcpu-200gb@us-central1"]
    assert (str(h200.price_per_hour), h200.ram_gb, h200.country, h200.continent) == ("5.4000", 214.7, "US", "NA")
    assert offers["gpu-h200-sxm/8gpu-128vcpu-1600gb@eu-north2"].country == "IS"
    assert offers["gpu-h200-sxm/8gpu-128vcpu-1600gb@eu-west1"].country == "FR"

    b300 = offers["gpu-b300-sxm/8gpu-192vcpu-2768gb@uk-south1"]  # "NVIDIA HGX B300"
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288.0)
    assert b300.price_per_hour == Decimal("76.0000")  # 8 x $9.50 per GPU-hour
    assert (b300.vcpus, b300.ram_gb, b300.country, b300.continent) == (192, 2972.1, "GB", "EU")  # 2768 GiB

    b200 = offers["gpu-b200-sxm/8gpu-160vcpu-1792gb@us-central1"]
    assert (b200.gpu_model, b200.gpu_memory_gb, str(b200.price_per_hour)) == ("B200", 180.0, "68.0000")

    l40s = offers["gpu-l40s-a/1gpu-8vcpu-32gb@eu-north1"]
    assert (l40s.gpu_model, l40s.gpu_form_factor, l40s.ram_gb) == ("L40S", "PCIe", 34.4)  # 32 GiB
    assert l40s.price_per_hour == Decimal("1.5500")
    pro = offers["gpu-rtx-pro-6000/1gpu-24vcpu-218gb@eu-north1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96.0, "1.8000")
    assert pro.gpu_form_factor is None  # "... Blackwell Server Edition" names no form factor
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(catalogue):
    renamed = copy.deepcopy(catalogue)
    row = next(r for r in renamed["presets"] if r["platform"] == "gpu-l40s-d")
    row.update(gpu="NVIDIA Tesla M60", gpu_memory_gb=8)
    batch = NebiusHook().parse([renamed], NOW)
    assert batch.unknown_gpus == {"NVIDIA Tesla M60": 1}  # counted, not guessed
    assert not any(o.offer_id.startswith("gpu-l40s-d/") for o in batch.offers)
    assert len(batch.offers) == 15  # every other preset and region is still an offer


def test_catalogue_is_dated_and_per_gpu_hour(catalogue):
    assert catalogue["source"] == "https://nebius.com/prices"
    assert catalogue["as_of"] == "2026-11-01"
    assert (catalogue["currency"], catalogue["price_unit"]) == ("USD", "per GPU per hour")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("presets"),
        lambda c: c.update(price_unit="per instance per hour"),
        lambda c: c.update(regions={}),
    ],
    ids=["no-presets", "other-price-unit", "no-regions-table"],
)
def test_a_wrong_catalogue_header_or_shape_rejects_the_whole_batch(catalogue, mutate):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    with pytest.raises(PayloadError, match="nebius: malformed payload"):
        NebiusHook().parse([broken], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["presets"][3].pop("usd_per_gpu_hour"), "missing field 'usd_per_gpu_hour'"),
        (lambda c: c["presets"][4].update(usd_per_gpu_hour=0), 'price_per_hour: Input should be greater than 0'),
        (lambda c: c["presets"][5].update(gpus=8), 'preset name disagrees with its GPU count'),
        (lambda c: c["presets"][6].update(regions=["mars-1"]), "region 'mars-1' is not in the catalogue's regions table"),
        (lambda c: c["presets"][7].pop("ram_gib"), "missing field 'ram_gib'"),
    ],
    ids=["missing-price", "zero-price", "gpu-count-vs-preset", "unknown-region", "missing-ram"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(catalogue, mutate, reason):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    whole, batch = NebiusHook().parse([catalogue], NOW), NebiusHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)
