"""Crusoe static catalogue: per-GPU prices x VM GPU count, "Contact sales" rows, HGX names."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.crusoe import CrusoeHook
from tests.vendors import lost

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    [page] = CrusoeHook().fetch_raw()
    return page


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_vm_types_map_to_whole_vm_prices(catalogue):
    batch = CrusoeHook().parse([catalogue], NOW)
    offers = by_id(batch)
    priced = [g for g in catalogue["gpus"] if g["usd_per_gpu_hour"] is not None]
    assert len(offers) == len(batch.offers) == sum(len(g["gpu_counts"]) * len(g["regions"]) for g in priced) == 22
    assert batch.unknown_gpus == {}
    assert not batch.memory_mismatches
    assert not any(o.gpu_model in ("B200", "GB200") for o in batch.offers)  # "Contact sales": no price, no offer

    h100 = offers["h100-80gb-sxm-ib.8x@eu-iceland1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("31.2000")  # 8 x $3.90 per GPU-hour
    assert (h100.country, h100.continent) == ("IS", "EU")
    assert (h100.vcpus, h100.ram_gb) == (None, None)  # not published

    h200 = offers["h200-141gb-sxm-ib.8x@us-east1"]
    assert (h200.gpu_model, str(h200.price_per_hour), h200.country, h200.continent) == ("H200", "34.3200", "US", "NA")

    l40s = offers["l40s-48gb.10x@us-northcentral1"]
    assert (l40s.gpu_model, l40s.gpu_count, str(l40s.price_per_hour)) == ("L40S", 10, "15.0000")
    pcie = offers["a100-80gb.1x@us-northcentral1"]
    assert (pcie.gpu_model, pcie.gpu_form_factor, str(pcie.price_per_hour)) == ("A100", "PCIe", "2.0000")
    sxm = offers["a100-80gb-sxm-ib.8x@us-northcentral1"]
    assert (sxm.gpu_form_factor, str(sxm.price_per_hour)) == ("SXM", "18.4000")
    mi = offers["mi300x-192gb-ib.8x@us-northcentral1"]
    assert (mi.gpu_model, mi.gpu_vendor, mi.gpu_memory_gb) == ("MI300X", "AMD", 192.0)
    assert mi.price_per_hour == Decimal("27.6000")
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_crusoe_spellings_resolve_as_written(catalogue):
    priced = copy.deepcopy(catalogue)  # give the "Contact sales" rows a price to see how their names resolve
    for row in priced["gpus"]:
        if row["usd_per_gpu_hour"] is None:
            row.update(usd_per_gpu_hour=6.0, price_text="$6.00/GPU-hr")
    offers = by_id(CrusoeHook().parse([priced], NOW))
    gb200 = offers["gb200-186gb-nvl-ib.4x@us-southcentral1"]  # "NVIDIA GB200 186GB NVL72": NVL72 is the rack
    assert (gb200.gpu_model, gb200.gpu_form_factor, gb200.gpu_count, gb200.gpu_memory_gb) == ("GB200", None, 4, 186.0)
    assert gb200.price_per_hour == Decimal("24.0000")
    b200 = offers["b200-180gb-sxm-ib.8x@us-southcentral1"]  # "NVIDIA B200 180GB HGX": an SXM board
    assert (b200.gpu_model, b200.gpu_form_factor, str(b200.price_per_hour)) == ("B200", "SXM", "48.0000")


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(catalogue):
    renamed = copy.deepcopy(catalogue)
    row = next(r for r in renamed["gpus"] if r["vm_type"] == "l40s-48gb")
    row.update(gpu="NVIDIA Quadro P4000 8GB", gpu_memory_gb=8)
    batch = CrusoeHook().parse([renamed], NOW)
    assert batch.unknown_gpus == {"NVIDIA Quadro P4000 8GB": 1}  # counted, not guessed
    assert not any(o.instance_type.startswith("l40s-48gb.") for o in batch.offers)
    assert len(batch.offers) == 22 - 10  # its 5 VM sizes x 2 regions are gone, every other offer stays


def test_catalogue_is_dated_and_per_gpu_hour(catalogue):
    assert catalogue["source"] == "https://crusoe.ai/cloud/pricing"
    assert catalogue["as_of"] == "2026-11-01"
    assert (catalogue["currency"], catalogue["price_unit"]) == ("USD", "per GPU per hour")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("gpus"),
        lambda c: c.update(price_unit="per instance per hour"),
    ],
    ids=["no-gpus", "other-price-unit"],
)
def test_a_wrong_catalogue_header_or_shape_rejects_the_whole_batch(catalogue, mutate):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    with pytest.raises(PayloadError, match="crusoe: malformed payload"):
        CrusoeHook().parse([broken], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["gpus"][3].pop("usd_per_gpu_hour"), "missing field 'usd_per_gpu_hour'"),
        (lambda c: c["gpus"][3].update(usd_per_gpu_hour=-3.9), 'price_per_hour: Input should be greater than 0'),
        (lambda c: c["gpus"][6].update(gpu_counts=[]), 'a priced row that expands to no offer (no regions or GPU counts)'),
        (lambda c: c["gpus"][4].update(regions=["us-west9"]), "region 'us-west9' is not in the catalogue's regions table"),
    ],
    ids=["missing-price", "negative-price", "no-gpu-counts", "unknown-region"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(catalogue, mutate, reason):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    whole, batch = CrusoeHook().parse([catalogue], NOW), CrusoeHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)
