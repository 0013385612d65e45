"""Denvr price page: records of the Wix Data collection embedded in the page, per-GPU prices x GPU count."""

import json
import re
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.denvr import DenvrHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "denvr" / "pricing.html").read_text()
H100 = "3f1c2a9e-6b0d-4d7a-9a51-2f0e8c1b7d01"
A100_PCIE_1 = "c42b9f70-5e1a-4c3d-8f27-91b0d6e3a523"


def hook(replay):
    return DenvrHook(base_url=replay.vendor_url("denvr"))


def with_record(record_id: str, **changes) -> str:
    """The recorded page with one record of the embedded collection changed (None deletes a field)."""
    found = re.search(r'(<script type="application/json" id="wix-warmup-data">)(.*?)(</script>)', PAGE, re.DOTALL)
    warmup = json.loads(found[2])
    record = warmup["appsWarmupData"]["dataBinding"]["dataStore"]["recordsByCollectionId"]["GPUInstances"][record_id]
    for key, value in changes.items():
        record.pop(key) if value is None else record.update({key: value})
    return PAGE[: found.start(2)] + json.dumps(warmup) + PAGE[found.end(2) :]


def test_each_record_is_one_instance_at_per_gpu_price_times_its_gpus(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, len(offers), batch.skipped) == (6, 5, {"contact sales: no public price": 1})
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers[H100]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("16.8000")  # 8 x $2.10 / GPU
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (208, 1024.0, 30720.0)  # 8 drives x 3.84 TB
    assert (h100.instance_type, h100.region, h100.country, h100.availability) == (
        "NVIDIA H100 SXM 80GB x8", "unknown", None, "unknown")

    pcie = offers[A100_PCIE_1]
    assert (pcie.gpu_model, pcie.gpu_form_factor, pcie.gpu_count, pcie.gpu_memory_gb) == ("A100", "PCIe", 1, 40.0)
    assert (str(pcie.price_per_hour), pcie.disk_gb) == ("1.0500", 1920.0)
    assert str(offers["e9d03b48-7f6c-4a15-9e82-3c5a1f7b8d34"].price_per_hour) == "8.4000"  # 8 x $1.05
    assert str(offers["8a7d5e21-0c4b-4b8e-b3f6-6d2e9a0c4f12"].price_per_hour) == "11.4400"  # 8 x $1.43
    gaudi = offers["1b6e8c3d-2a9f-4e70-b5d4-7f0c2e9a1b45"]
    assert (gaudi.gpu_model, gaudi.gpu_vendor, gaudi.gpu_memory_gb, str(gaudi.price_per_hour)) == (
        "GAUDI2", "Intel", 96.0, "10.0000")
    assert not any(o.gpu_model == "H200" for o in batch.offers)  # "Contact Sales": no price, no offer


def test_a_contact_sales_record_lands_once_it_has_a_price(replay):
    replay.put("denvr", "pricing.html", with_record("5f2a7c9b-8d3e-4b61-a0f5-2e4d6b8c0a56", price="$2.50 / GPU"))
    h200 = by_id(hook(replay).fetch_batch())["5f2a7c9b-8d3e-4b61-a0f5-2e4d6b8c0a56"]
    assert (h200.gpu_model, h200.gpu_count, h200.gpu_memory_gb, h200.price_per_hour) == ("H200", 8, 141.0, Decimal("20.0000"))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"price": "$16.80 / node"}, "price '$16.80 / node' is not per GPU"),
        ({"gpuCount": "eight"}, "field 'gpuCount' is not a count"),
        ({"gpuVram": "HBM3"}, "no size in GB in 'HBM3'"),
        ({"title": None}, "missing field 'title'"),
    ],
    ids=["price-unit", "gpu-count", "memory", "title-gone"],
)
def test_a_broken_record_is_dropped_with_its_reason_and_the_rest_land(replay, changes, reason):
    whole = hook(replay).fetch_batch()
    replay.put("denvr", "pricing.html", with_record(H100, **changes))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {H100}


def test_a_record_of_a_gpu_the_registry_does_not_know_is_counted(replay):
    replay.put("denvr", "pricing.html", with_record(H100, title="NVIDIA X900"))
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"NVIDIA X900": 1} and H100 not in by_id(batch)


def test_a_page_without_the_collection_is_refused_as_changed(replay):
    replay.put("denvr", "pricing.html", PAGE.replace('"GPUInstances"', '"GpuInstancesV2"'))
    with pytest.raises(PayloadError, match=r"denvr: malformed payload: no 'appsWarmupData\..*GPUInstances' in the JSON"):
        hook(replay).fetch_batch()
    replay.put("denvr", "pricing.html", PAGE.replace('id="wix-warmup-data"', 'id="wix-viewer-model"'))
    with pytest.raises(PayloadError, match=r"denvr: malformed payload: no 'script#wix-warmup-data' on the page"):
        hook(replay).fetch_batch()
