"""UpCloud GPU plans joined with the zone price list (EUR cents per hour) and GPU stock, over real HTTP."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.upcloud import UpCloudHook
from tests.conftest import REPLAY_KEY
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay, key=REPLAY_KEY) -> UpCloudHook:
    return UpCloudHook(base_url=replay.vendor_url("upcloud"), api_key=key)


def test_gpu_plans_become_offers_in_every_zone_that_prices_them(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"GPU-8xCPU-64GB-1xL40S@de-fra1", "GPU-8xCPU-64GB-1xL40S@fi-hel2",
                           "GPU-12xCPU-128GB-1xL40S@fi-hel2", "GPU-24xCPU-256GB-2xL40S@fi-hel2"}  # fmt: skip
    assert (batch.pages, batch.items, batch.skipped) == (3, 7, {"CPU plan": 4})
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    small = offers["GPU-8xCPU-64GB-1xL40S@fi-hel2"]
    assert (small.gpu_model, small.gpu_count, small.gpu_memory_gb, small.inferred) == ("L40S", 1, 48.0, ("gpu_memory_gb",))
    assert small.price_per_hour == Decimal("1.6917")  # 145.8333 EUR cents an hour / 100 x 1.16
    assert (small.vcpus, small.ram_gb, small.disk_gb) == (8, 68.7, None)  # 65536 MiB; no storage included
    assert (small.availability, small.available_count, small.country, small.continent) == ("available", 14, "FI", "EU")

    frankfurt = offers["GPU-8xCPU-64GB-1xL40S@de-fra1"]
    assert (str(frankfurt.price_per_hour), frankfurt.availability, frankfurt.available_count, frankfurt.country) == (
        "1.7745", "unavailable", 0, "DE")
    mid = offers["GPU-12xCPU-128GB-1xL40S@fi-hel2"]
    assert (str(mid.price_per_hour), mid.ram_gb, mid.available_count) == ("2.0196", 137.4, 6)
    two = offers["GPU-24xCPU-256GB-2xL40S@fi-hel2"]
    assert (two.gpu_count, str(two.price_per_hour), two.ram_gb) == (2, "4.0393", 274.9)
    assert (two.availability, two.available_count) == ("unknown", None)  # the zone lists no stock for it


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "gone"),
    [
        ("plan.json", lambda b: b["plans"]["plan"][5].update(name="GPU-12xCPU-128GB-1xL40S-v2"),
         "GPU-12xCPU-128GB-1xL40S-v2 is priced in no zone", {"GPU-12xCPU-128GB-1xL40S@fi-hel2"}),
        ("plan.json", lambda b: b["plans"]["plan"][6].update(gpu_amount="2"), "field 'gpu_amount' is not a number",
         {"GPU-24xCPU-256GB-2xL40S@fi-hel2"}),
        ("price.json", lambda b: b["prices"]["zone"][0]["server_plan_GPU-8xCPU-64GB-1xL40S"].update(amount=2),
         "a plan priced per 2 servers", {"GPU-8xCPU-64GB-1xL40S@de-fra1", "GPU-8xCPU-64GB-1xL40S@fi-hel2"}),
    ],
    ids=["priced-nowhere", "gpu-count-as-text", "priced-per-two"],
)
def test_a_broken_plan_is_dropped_with_its_reason_and_the_rest_land(replay, payload, mutate, reason, gone):
    whole, broken = with_one_item_broken(replay, hook, "upcloud", payload, mutate)
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


def test_a_gpu_the_registry_does_not_know_is_counted(replay):
    whole, broken = with_one_item_broken(replay, hook, "upcloud", "plan.json",
                                         lambda b: b["plans"]["plan"][6].update(gpu_model="NVIDIA X40"))  # fmt: skip
    assert broken.unknown_gpus == {"NVIDIA X40": 1} and not broken.dropped
    assert lost(whole, broken) == {"GPU-24xCPU-256GB-2xL40S@fi-hel2"}


@pytest.mark.parametrize(
    ("payload", "body", "message"),
    [
        ("plan.json", {"plan": []}, r'expected \{"plans": \{"plan": \[...\]\}\}'),
        ("price.json", {"prices": {"zones": []}}, "missing field 'zone'"),
    ],
    ids=["plans", "prices"],
)
def test_a_wrong_envelope_refuses_the_batch(replay, payload, body, message):
    replay.put("upcloud", payload, body)
    with pytest.raises(PayloadError, match=f"upcloud: malformed payload: {message}"):
        hook(replay).fetch_batch()


def test_the_token_travels_as_bearer_and_a_wrong_one_gets_upclouds_401(replay):
    with pytest.raises(VendorError, match=r"upcloud: GET /1.3/plan -> HTTP 401: .*AUTHENTICATION_FAILED") as error:
        hook(replay, key="ucat_wrong").fetch_batch()
    assert "ucat_wrong" not in str(error.value)
