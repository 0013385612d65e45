"""Sesterce: whole-instance hourly prices, one offer per listed region, fabrics, spot, CPU tiers skipped."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.sesterce import SesterceHook
from tests.conftest import REPLAY_KEY
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay) -> SesterceHook:
    return SesterceHook(base_url=replay.vendor_url("sesterce"), api_key=REPLAY_KEY)


def test_each_offer_is_one_instance_per_listed_region_at_its_whole_price(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, len(offers), len(batch.offers)) == (7, 8, 8)
    assert batch.skipped == {"CPU-only configuration": 1} and "cpu_small@paris-france-2" not in offers
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers["1xH100-80G-SXM5@helsinki-finland-1"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.instance_type) == ("H100", 1, 80.0, "1xH100-80G-SXM5")
    assert (h100.price_per_hour, h100.spot_price) == (Decimal("2.1890"), Decimal("1.2500"))
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (24, 185.0, 750.0)
    assert (h100.country, h100.continent, h100.availability, h100.interconnect) == ("FI", "EU", "available", None)
    tokyo = offers["1xH100-80G-SXM5@TYO4"]  # countryCode null: the country from the region's name
    assert (tokyo.country, tokyo.availability) == ("JP", "unavailable")

    node = offers["8xH100-80G-SXM5-IB@chicago-usa-4"]
    assert (node.gpu_count, str(node.price_per_hour), node.spot_price) == (8, "17.5100", None)  # the whole node
    assert (node.country, node.interconnect, node.vcpus, node.ram_gb) == ("US", "infiniband", 224, 2048.0)
    h200 = offers["8xH200-141G-SXM5@paris-france-2"]
    assert (h200.gpu_model, h200.gpu_memory_gb, h200.interconnect) == ("H200", 141.0, "nvlink")
    assert str(h200.price_per_hour) == "30.0080"  # 30.008000000000003, stored to 4 places
    a100 = offers["1xA100-80G-PCIe@AMS"]
    assert (a100.gpu_model, a100.gpu_memory_gb, a100.country, a100.interconnect) == ("A100", 80.0, "NL", "pcie")
    pro = offers["8xRTXPro6000@TYO4"]
    assert (pro.gpu_model, pro.gpu_memory_gb, pro.availability) == ("RTXPRO6000", 96.0, "unavailable")
    assert str(pro.price_per_hour) == "11.2000"
    l40s = [offers["2xL40S@paris-france-2"], offers["2xL40S@helsinki-finland-1"]]
    assert [(o.country, str(o.price_per_hour), str(o.spot_price)) for o in l40s] == [
        ("FR", "2.3800", "1.4000"), ("FI", "2.3800", "1.4000")]
    assert all(o.pricing_type == "on_demand" and o.cloud is None for o in offers.values())  # partner tags are anonymised


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hourlyPrice": 0}, "hourlyPrice is not a positive price"),
        ({"hourlyPrice": "2.19"}, "field 'hourlyPrice' is not a number"),
        ({"hourlySpotPrice": None}, "field 'hourlySpotPrice' is not a number"),
        ({"availability": []}, "no region listed in availability"),
        ({"gpuCount": None}, "field 'gpuCount' is not a number"),
        ({"configuration": {"vCpu": 24, "ramGB": 185}}, "missing field 'vRamGB'"),
    ],
    ids=["price-zero", "price-text", "spot-gone", "no-region", "count", "memory"],
)
def test_a_broken_offer_is_dropped_with_its_reason(replay, change, reason):
    whole, broken = with_one_item_broken(replay, hook, "sesterce", "offers.json", lambda body: body[0].update(change))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"1xH100-80G-SXM5@helsinki-finland-1", "1xH100-80G-SXM5@TYO4"}


def test_an_unknown_gpu_is_counted_not_guessed(replay):
    whole, broken = with_one_item_broken(replay, hook, "sesterce", "offers.json", lambda body: body[3].update(gpuName="X100"))
    assert broken.unknown_gpus == {"X100": 1} and not broken.dropped
    assert lost(whole, broken) == {"1xA100-80G-PCIe@AMS"}


def test_an_answer_that_is_not_a_list_refuses_the_batch(replay):
    replay.put("sesterce", "offers.json", {"offers": []})
    with pytest.raises(PayloadError, match=r"sesterce: malformed payload: expected \[\.\.\.\]"):
        hook(replay).fetch_batch()


def test_the_key_travels_as_x_api_key(replay):
    client = hook(replay).client()
    assert client.headers["X-API-KEY"] == REPLAY_KEY and "Authorization" not in client.headers
