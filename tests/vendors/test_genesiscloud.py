"""Genesis Cloud: no price API, so a dated static catalogue (catalogues/genesiscloud.json)."""

import copy
import json
from datetime import datetime, timezone

import pytest

from gpubroker_provider.hooks import base
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.genesiscloud import GenesisCloudHook

CATALOGUE = json.loads((base.CATALOGUES / "genesiscloud.json").read_text())


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
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (192, 1920, 28800)
    assert (h100.country, h100.continent, h100.availability) == ("NO", "EU", "unknown")
    assert offers["ARC-IS-HAF-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8"].country == "IS"
    assert str(offers["ARC-IS-HAF-1:vcpu-4_memory-24g_nvidia-rtx-3090-1"].price_per_hour) == "0.3300"
    b200 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b200-sxm6-8"]
    assert (b200.gpu_model, b200.gpu_memory_gb, str(b200.price_per_hour)) == ("B200", 180, "30.0000")
    b300 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b300-sxm6-8"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288)
    assert str(b300.price_per_hour) == "35.9200"  # 8 x 4.49
    assert (b300.vcpus, b300.ram_gb, b300.disk_gb, b300.country) == (240, 2880, 30920, "NO")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(price_unit="per instance per hour"),
        lambda c: c["instance_types"][3].pop("usd_per_gpu_hour"),
        lambda c: c["instance_types"][3].update(regions=["EUC-XX-NOWHERE-1"]),
        lambda c: c["instance_types"][5].update(usd_per_gpu_hour="0.33/h"),
    ],
    ids=["priced-per-instance", "missing-price", "undeclared-region", "price-as-text"],
)
def test_malformed_catalogue_rejects_the_whole_batch(tmp_path, monkeypatch, mutate):
    catalogue = copy.deepcopy(CATALOGUE)
    mutate(catalogue)
    (tmp_path / "genesiscloud.json").write_text(json.dumps(catalogue))
    monkeypatch.setattr(base, "CATALOGUES", tmp_path)
    with pytest.raises(PayloadError, match="genesiscloud: malformed payload"):
        GenesisCloudHook().fetch_batch()


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped():
    catalogue = GenesisCloudHook().fetch_raw()[0]
    changed = copy.deepcopy(catalogue)
    row = next(r for r in changed["instance_types"] if r["type"] == "vcpu-32_memory-192g_nvidia-rtx-3090-8")
    row["gpu"] = "NVIDIA GeForce GTX 1660 SUPER"
    batch = GenesisCloudHook().parse([changed], datetime.now(timezone.utc))
    assert batch.unknown_gpus == {"NVIDIA GeForce GTX 1660 SUPER": 1}
    assert "ARC-IS-HAF-1:vcpu-32_memory-192g_nvidia-rtx-3090-8" not in by_id(batch)
