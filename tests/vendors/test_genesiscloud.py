"""Genesis Cloud: no price API, so a dated static catalogue (catalogues/genesiscloud.json)."""

import copy
import json
from datetime import datetime, timezone

import pytest

from gpubroker_provider.hooks import base
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.genesiscloud import GenesisCloudHook
from tests.vendors import lost

CATALOGUE = json.loads((base.CATALOGUES / "genesiscloud.json").read_text())
NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_catalogue_is_dated_and_sourced():
    [page] = GenesisCloudHook().fetch_raw()
    assert page["source"].startswith("https://") and len(page["as_of"]) == 10


def test_per_gpu_prices_times_gpus_per_region():
    batch = GenesisCloudHook().fetch_batch()
    offers = by_id(batch)
    # CPU-only and 'Contact sales' (GB200) rows produce nothing; every published GPU is in the registry
    assert batch.unknown_gpus == {}
    assert sorted(offers) == [
        "ARC-IS-HAF-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8",
        "ARC-IS-HAF-1:vcpu-192_memory-2048g_nvidia-h200-sxm5-8",
        "ARC-IS-HAF-1:vcpu-32_memory-192g_nvidia-rtx-3090-8",
        "ARC-IS-HAF-1:vcpu-4_memory-24g_nvidia-rtx-3090-1",
        "NORD-NO-KRS-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8",
        "NORD-NO-KRS-1:vcpu-192_memory-2048g_nvidia-h200-sxm5-8",
        "NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b200-sxm6-8",
        "NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b300-sxm6-8",
    ]
    h100 = offers["NORD-NO-KRS-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8"]
    assert str(h100.price_per_hour) == "17.5200"  # 8 x 2.19
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (192, 2061.6, 30923.8)  # 1920 GiB RAM, 28800 GiB disks
    assert (h100.country, h100.continent, h100.availability) == ("NO", "EU", "unknown")
    assert offers["ARC-IS-HAF-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8"].country == "IS"
    assert str(offers["ARC-IS-HAF-1:vcpu-4_memory-24g_nvidia-rtx-3090-1"].price_per_hour) == "0.3300"
    b200 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b200-sxm6-8"]
    assert (b200.gpu_model, b200.gpu_memory_gb, str(b200.price_per_hour)) == ("B200", 180, "30.0000")
    b300 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b300-sxm6-8"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288)
    assert str(b300.price_per_hour) == "35.9200"  # 8 x 4.49
    assert (b300.vcpus, b300.ram_gb, b300.disk_gb, b300.country) == (240, 3092.4, 33200.1, "NO")  # from GiB


def test_a_catalogue_priced_per_instance_rejects_the_whole_batch():
    catalogue = copy.deepcopy(CATALOGUE) | {"price_unit": "per instance per hour"}
    with pytest.raises(PayloadError, match="genesiscloud: malformed payload: expected prices 'per GPU per hour'"):
        GenesisCloudHook().parse([catalogue], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["instance_types"][3].pop("usd_per_gpu_hour"), "missing field 'usd_per_gpu_hour'"),
        (lambda c: c["instance_types"][3].update(regions=["EUC-XX-NOWHERE-1"]),
         "region 'EUC-XX-NOWHERE-1' is not in the catalogue's regions table"),
        (lambda c: c["instance_types"][5].update(usd_per_gpu_hour="0.33/h"), "price is not a number"),
    ],
    ids=["missing-price", "undeclared-region", "price-as-text"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(mutate, reason):
    broken = copy.deepcopy(CATALOGUE)
    mutate(broken)
    whole, batch = GenesisCloudHook().parse([CATALOGUE], NOW), GenesisCloudHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)


def test_memory_and_disks_are_converted_from_gib():
    row = next(r for r in CATALOGUE["instance_types"] if r["gpus"])
    offer = next(o for o in GenesisCloudHook().parse([CATALOGUE], NOW).offers if o.instance_type == row["type"])
    assert offer.ram_gb == round(row["memory_gib"] * 1.073741824, 1)
    assert offer.disk_gb == round((row["disk_gib"] + row["local_nvme_gib"]) * 1.073741824, 1)


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped():
    catalogue = GenesisCloudHook().fetch_raw()[0]
    changed = copy.deepcopy(catalogue)
    row = next(r for r in changed["instance_types"] if r["type"] == "vcpu-32_memory-192g_nvidia-rtx-3090-8")
    row["gpu"] = "NVIDIA GeForce GTX 1660 SUPER"
    batch = GenesisCloudHook().parse([changed], datetime.now(timezone.utc))
    assert batch.unknown_gpus == {"NVIDIA GeForce GTX 1660 SUPER": 1}
    assert "ARC-IS-HAF-1:vcpu-32_memory-192g_nvidia-rtx-3090-8" not in by_id(batch)
