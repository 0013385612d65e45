"""JarvisLabs static catalogue: per-GPU hourly prices converted to whole-instance prices."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.jarvislabs import JarvisLabsHook
from tests.vendors import lost

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    [page] = JarvisLabsHook().fetch_raw()
    return page


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_per_gpu_prices_become_whole_instance_prices(catalogue):
    batch = JarvisLabsHook().parse([catalogue], NOW)
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == sum(len(g["gpu_counts"]) * len(g["regions"]) for g in catalogue["gpus"])
    assert batch.unknown_gpus == {}
    assert not batch.memory_mismatches

    h100 = offers["8x H100 SXM@EU1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("21.5200")  # 8 x $2.69 per GPU-hour
    assert (h100.vcpus, h100.ram_gb) == (128, 1600.0)  # 8 x (16 vCPU, 200 GB)
    assert (h100.country, h100.continent) == ("FI", "EU")

    one = offers["1x H100 SXM@IN1"]
    assert (str(one.price_per_hour), one.country, one.continent) == ("2.6900", "IN", "AS")

    h200 = offers["8x H200 SXM@EU1"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 141.0, "31.9200")

    # the 40 GB and 80 GB A100 are different offers at different prices
    assert offers["1x A100 40GB@IN1"].price_per_hour == Decimal("0.8900")
    assert offers["1x A100 80GB@IN1"].price_per_hour == Decimal("1.4900")
    assert offers["4x A100 80GB@IN1"].price_per_hour == Decimal("5.9600")
    assert offers["1x A100 40GB@IN1"].gpu_memory_gb == 40.0

    pro = offers["2x RTX Pro 6000 Blackwell@IN1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96.0, "3.7800")
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_offer_ids_are_stable(catalogue):
    first = [o.offer_id for o in JarvisLabsHook().parse([catalogue], NOW).offers]
    second = [o.offer_id for o in JarvisLabsHook().parse([copy.deepcopy(catalogue)], NOW).offers]
    assert first == second


def test_catalogue_is_dated_and_per_gpu_hour(catalogue):
    assert catalogue["source"] == "https://jarvislabs.ai/pricing"
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
    with pytest.raises(PayloadError, match="jarvislabs: malformed payload"):
        JarvisLabsHook().parse([broken], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["gpus"][0].pop("usd_per_gpu_hour"), "missing field 'usd_per_gpu_hour'"),
        (lambda c: c["gpus"][1].update(usd_per_gpu_hour="2.69"), 'price is not a number'),
        (lambda c: c["gpus"][2].update(gpu_counts=[1, 16]), 'GPU count is not 1 to 8'),
        (lambda c: c["gpus"][3].update(regions=["US9"]), "region 'US9' is not in the catalogue's regions table"),
    ],
    ids=["missing-price", "price-as-text", "too-many-gpus", "unknown-region"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(catalogue, mutate, reason):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    whole, batch = JarvisLabsHook().parse([catalogue], NOW), JarvisLabsHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)
