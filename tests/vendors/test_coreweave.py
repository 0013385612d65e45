"""CoreWeave static catalogue: per-node (instance) prices for HGX nodes, per-GPU basis, NA = US."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.coreweave import CoreWeaveHook
from tests.vendors import lost

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    [page] = CoreWeaveHook().fetch_raw()
    return page


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_hgx_nodes_are_priced_per_node(catalogue):
    batch = CoreWeaveHook().parse([catalogue], NOW)
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == 9  # 10 rows, HGX B300 is "Contact sales"
    assert "b300-8x@US" not in offers
    assert batch.unknown_gpus == {}
    assert not batch.memory_mismatches

    h100 = offers["gd-8xh100ib-i128@US"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("49.2400")  # the whole 8-GPU node, not x8
    assert h100.price_per_hour / h100.gpu_count == Decimal("6.155")  # per GPU-hour, derived
    assert (h100.vcpus, h100.ram_gb) == (128, 2048.0)
    assert (h100.country, h100.continent) == ("US", "NA")

    assert offers["gd-8xh200ib-i128@US"].price_per_hour == Decimal("50.4400")
    b200 = offers["b200-8x@US"]
    assert (b200.gpu_model, b200.gpu_form_factor, b200.gpu_memory_gb) == ("B200", "SXM", 180.0)
    assert b200.price_per_hour == Decimal("68.8000")
    gb200 = offers["gb200-4x@US"]
    assert (gb200.gpu_model, gb200.gpu_count, gb200.gpu_memory_gb) == ("GB200", 4, 186.0)
    assert gb200.price_per_hour == Decimal("42.0000")
    gh200 = offers["gd-1xgh200@US"]
    assert (gh200.gpu_model, gh200.gpu_count, gh200.gpu_memory_gb) == ("GH200", 1, 96.0)
    assert gh200.price_per_hour == Decimal("6.5000")
    l40s = offers["gd-8xl40s-i128@US"]
    assert (l40s.gpu_model, l40s.gpu_form_factor, str(l40s.price_per_hour)) == ("L40S", None, "18.0000")
    pro = offers["rtxp6000-8x@US"]
    # "NVIDIA RTX PRO 6000 Blackwell Server Edition", as CoreWeave writes it
    assert (pro.gpu_model, pro.gpu_memory_gb, pro.vcpus, pro.ram_gb) == ("RTXPRO6000", 96.0, None, None)
    assert (pro.gpu_count, pro.gpu_form_factor, str(pro.price_per_hour)) == (8, None, "20.0000")
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(catalogue):
    renamed = copy.deepcopy(catalogue)
    row = next(r for r in renamed["instances"] if r["instance_id"] == "gd-8xl40-i128")
    row.update(name="NVIDIA Tesla M60", gpu="NVIDIA Tesla M60", gpu_memory_gb=8)
    batch = CoreWeaveHook().parse([renamed], NOW)
    assert batch.unknown_gpus == {"NVIDIA Tesla M60": 1}  # counted, not guessed
    assert "gd-8xl40-i128@US" not in by_id(batch)
    assert len(batch.offers) == 8  # every other priced instance is still an offer


def test_a_per_gpu_price_is_multiplied_by_the_gpu_count(catalogue):
    per_gpu = copy.deepcopy(catalogue)
    row = next(r for r in per_gpu["instances"] if r["instance_id"] == "gd-8xl40-i128")
    row.update(price_basis="gpu", usd_per_hour=1.25)
    offer = by_id(CoreWeaveHook().parse([per_gpu], NOW))["gd-8xl40-i128@US"]
    assert offer.price_per_hour == Decimal("10.0000")  # 8 x $1.25


def test_catalogue_is_dated_and_per_instance_hour(catalogue):
    assert catalogue["source"] == "https://www.coreweave.com/pricing"
    assert catalogue["as_of"] == "2026-11-01"
    assert (catalogue["currency"], catalogue["price_unit"]) == ("USD", "per instance per hour")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("instances"),
        lambda c: c.pop("region"),
        lambda c: c.update(price_unit="per GPU per hour"),
    ],
    ids=["no-instances", "no-region", "other-price-unit"],
)
def test_a_wrong_catalogue_header_or_shape_rejects_the_whole_batch(catalogue, mutate):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    with pytest.raises(PayloadError, match="coreweave: malformed payload"):
        CoreWeaveHook().parse([broken], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["instances"][4].pop("usd_per_hour"), "missing field 'usd_per_hour'"),
        (lambda c: c["instances"][4].update(usd_per_hour="49.24"), 'price is not a number'),
        (lambda c: c["instances"][4].update(price_basis="per node"), "unknown price basis 'per node'"),
        (lambda c: c["instances"][5].update(gpus=0), 'gpu_count: Input should be greater than or equal to 1'),
    ],
    ids=["missing-price", "price-as-text", "unknown-basis", "zero-gpus"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(catalogue, mutate, reason):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    whole, batch = CoreWeaveHook().parse([catalogue], NOW), CoreWeaveHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)
