"""Paperspace static catalogue: per-machine hourly prices, datacenter countries, unknown GPUs."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.paperspace import PaperspaceHook
from tests.vendors import lost

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalogue() -> dict:
    [page] = PaperspaceHook().fetch_raw()
    return page


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_machines_map_to_one_offer_per_datacenter(catalogue):
    batch = PaperspaceHook().parse([catalogue], NOW)
    offers = by_id(batch)
    expected_ids = {f"{m['machine_type']}@{dc}" for m in catalogue["machines"] if m["gpu"] != "NVIDIA Quadro RTX 4000"
                    for dc in m["datacenters"]}
    assert set(offers) == expected_ids
    assert batch.unknown_gpus == {"NVIDIA Quadro RTX 4000": 1}  # counted once, not guessed
    assert not batch.memory_mismatches

    h100x8 = offers["H100x8@NY2"]
    assert (h100x8.gpu_model, h100x8.gpu_count, h100x8.gpu_memory_gb) == ("H100", 8, 80.0)
    assert h100x8.price_per_hour == Decimal("47.6000")  # the whole 8-GPU machine, not per GPU
    assert (h100x8.vcpus, h100x8.ram_gb) == (128, 1638.0)
    assert (h100x8.region, h100x8.country, h100x8.continent) == ("NY2", "US", "NA")

    a100 = offers["A100@NY2"]
    assert (a100.gpu_model, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 40.0, "3.0900")

    ams = offers["A4000@AMS1"]
    assert (ams.gpu_model, ams.country, ams.continent, str(ams.price_per_hour)) == ("RTXA4000", "NL", "EU", "0.7600")
    assert offers["A6000x4@CA1"].price_per_hour == Decimal("7.5600")
    assert {o.availability for o in batch.offers} == {"unknown"}
    assert {o.provider for o in batch.offers} == {"paperspace"}


def test_catalogue_is_dated_and_in_usd_per_machine_hour(catalogue):
    assert catalogue["source"] == "https://www.paperspace.com/pricing"
    assert catalogue["as_of"] == "2026-11-01"
    assert (catalogue["currency"], catalogue["price_unit"]) == ("USD", "per machine per hour")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("machines"),
        lambda c: c.update(price_unit="per GPU per hour"),
        lambda c: c.update(currency="EUR"),
        lambda c: c.update(as_of="November 2026"),
    ],
    ids=["no-machines", "other-price-unit", "other-currency", "undated"],
)
def test_a_wrong_catalogue_header_or_shape_rejects_the_whole_batch(catalogue, mutate):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    with pytest.raises(PayloadError, match="paperspace: malformed payload"):
        PaperspaceHook().parse([broken], NOW)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: c["machines"][0].pop("hourly_usd"), "missing field 'hourly_usd'"),
        (lambda c: c["machines"][1].update(hourly_usd=-1), 'price_per_hour: Input should be greater than 0'),
        (lambda c: c["machines"][2].update(gpus="eight"), 'gpu_count: Input should be a valid integer, unable to parse string as an integer'),
        (lambda c: c["machines"][3].update(datacenters=["SFO9"]), "region 'SFO9' is not in the catalogue's datacenters table"),
    ],
    ids=["missing-price", "negative-price", "bad-gpu-count", "unknown-datacenter"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(catalogue, mutate, reason):
    broken = copy.deepcopy(catalogue)
    mutate(broken)
    whole, batch = PaperspaceHook().parse([catalogue], NOW), PaperspaceHook().parse([broken], NOW)
    assert batch.dropped == {reason: 1}
    assert lost(whole, batch)
