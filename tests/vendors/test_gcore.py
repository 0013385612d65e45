"""Gcore hook against recorded Cloud API answers (projects, regions, GPU flavors), served over real HTTP."""

import copy
from decimal import Decimal

import pytest

from gpubroker.fx import TO_USD
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.gcore import GcoreHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay, key=REPLAY_KEY) -> GcoreHook:
    return GcoreHook(base_url=replay.vendor_url("gcore"), api_key=key)


def test_flavors_of_every_active_gpu_region_become_offers_in_usd(replay):
    assert TO_USD["EUR"] == Decimal("1.16")
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    # Luxembourg-2, Amsterdam-2, Sines-2 x (bare metal, virtual); Frankfurt and Singapore have no GPUs,
    # Chicago-2 is in maintenance: never asked
    assert batch.pages == 6
    assert sorted(offers) == [
        "bm3-ai-1xlarge-a100-80-8@luxembourg-2", "bm3-ai-1xlarge-h100-80-8@amsterdam-2",
        "bm3-ai-1xlarge-h100-80-8@luxembourg-2", "bm3-ai-ndp-1xlarge-h200-141-8@sines-2",
        "g3-ai-192-1536-12000-h100-80-8@luxembourg-2", "g3-ai-32-192-1500-l40s-48-1@amsterdam-2",
        "g3-ai-32-192-1500-l40s-48-1@luxembourg-2", "g3-ai-64-384-3000-l40s-48-2@luxembourg-2",
    ]  # fmt: skip
    assert (batch.items, batch.skipped) == (9, {"price hidden: on request": 1})  # the H200 in Luxembourg-2
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers["bm3-ai-1xlarge-h100-80-8@luxembourg-2"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.interconnect) == ("H100", 8, 80.0, "infiniband")
    assert h100.price_per_hour == Decimal("30.6240")  # EUR 26.40 for the whole server x 1.16
    assert (h100.availability, h100.available_count) == ("available", 3)
    assert (h100.country, h100.continent, h100.region) == ("LU", "EU", "luxembourg-2")
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (None, None, None)  # bare metal: free text, not read

    a100 = offers["bm3-ai-1xlarge-a100-80-8@luxembourg-2"]
    assert (str(a100.price_per_hour), a100.availability, a100.available_count) == ("16.2400", "unavailable", 0)
    h200 = offers["bm3-ai-ndp-1xlarge-h200-141-8@sines-2"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour), h200.country) == ("H200", 141.0, "35.2640", "PT")
    assert offers["bm3-ai-1xlarge-h100-80-8@amsterdam-2"].country == "NL"


def test_virtual_flavors_carry_vcpus_ram_and_disk(replay):
    offers = by_id(hook(replay).fetch_batch())
    l40s = offers["g3-ai-32-192-1500-l40s-48-1@luxembourg-2"]
    assert (l40s.gpu_model, l40s.gpu_count, l40s.gpu_memory_gb, str(l40s.price_per_hour)) == ("L40S", 1, 48.0, "1.7980")
    assert (l40s.vcpus, l40s.ram_gb, l40s.disk_gb) == (32, 206.2, 1610.6)  # 196608 MiB, 1500 GiB -> GB
    assert (l40s.available_count, l40s.interconnect) == (12, None)
    two = offers["g3-ai-64-384-3000-l40s-48-2@luxembourg-2"]
    assert (two.gpu_count, str(two.price_per_hour), two.ram_gb) == (2, "3.5960", 412.3)
    h100 = offers["g3-ai-192-1536-12000-h100-80-8@luxembourg-2"]
    assert (h100.gpu_count, str(h100.price_per_hour), h100.interconnect, h100.disk_gb) == (8, "28.7680", "infiniband", 12884.9)


def test_a_usd_account_is_not_converted(replay):
    replay.put("gcore", "baremetal-luxembourg-2.json", recording("gcore", "variant-usd-account.json"))
    offers = by_id(hook(replay).fetch_batch())
    assert offers["bm3-ai-1xlarge-h100-80-8@luxembourg-2"].price_per_hour == Decimal("30.6000")
    assert offers["bm3-ai-1xlarge-a100-80-8@luxembourg-2"].price_per_hour == Decimal("16.2400")


def test_regions_are_read_page_by_page(replay):
    regions = copy.deepcopy(recording("gcore", "regions.json"))
    replay.put("gcore", "regions.json", dict(regions, count=7))  # a 7th region on the page at offset 6
    batch = hook(replay).fetch_batch()
    assert batch.pages == 8
    newport = by_id(batch)["bm3-ai-1xlarge-h100-80-8@newport"]
    assert (newport.country, str(newport.price_per_hour)) == ("GB", "30.6240")


def test_the_default_project_is_the_one_read(replay):
    projects = copy.deepcopy(recording("gcore", "projects.json"))
    for project in projects["results"]:
        project["is_default"] = not project["is_default"]  # now 481377, which has no recorded flavors
    replay.put("gcore", "projects.json", projects)
    with pytest.raises(VendorError, match=r"gcore: GET /cloud/v3/gpu/baremetal/481377/76/flavors -> HTTP 404"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f["price"].update(price_status="error"), "price_status 'error'"),
        (lambda f: f["price"].update(currency_code="JPY"), "price in 'JPY', which gpubroker.fx does not convert"),
        (lambda f: f.pop("capacity"), "missing field 'capacity'"),
        (lambda f: f["hardware_properties"].update(gpu_count="8"), "field 'gpu_count' is not a number"),
        (lambda f: f["hardware_properties"].update(gpu_model=None), "field 'gpu_model' is not a name"),
    ],
    ids=["price-error", "unknown-currency", "no-capacity", "count-as-text", "no-model"],
)
def test_a_broken_flavor_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "gcore", "baremetal-luxembourg-2.json",
                                         lambda body: mutate(body["results"][0]))  # fmt: skip
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"bm3-ai-1xlarge-h100-80-8@luxembourg-2"}


def test_a_gpu_the_registry_does_not_know_is_counted(replay):
    whole, broken = with_one_item_broken(replay, hook, "gcore", "virtual-amsterdam-2.json",
                                         lambda body: body["results"][0]["hardware_properties"].update(gpu_model="X100"))  # fmt: skip
    assert broken.unknown_gpus == {"NVIDIA X100": 1} and not broken.dropped
    assert lost(whole, broken) == {"g3-ai-32-192-1500-l40s-48-1@amsterdam-2"}


def test_a_disabled_flavor_is_skipped(replay):
    whole, broken = with_one_item_broken(replay, hook, "gcore", "virtual-luxembourg-2.json",
                                         lambda body: body["results"][1].update(disabled=True))  # fmt: skip
    assert broken.skipped == {"price hidden: on request": 1, "disabled flavor": 1} and not broken.dropped
    assert lost(whole, broken) == {"g3-ai-64-384-3000-l40s-48-2@luxembourg-2"}


@pytest.mark.parametrize(
    ("payload", "body", "message"),
    [
        ("projects.json", {"count": 1, "results": [{"id": 481203, "is_default": False}]}, "no default project"),
        ("regions.json", {"regions": []}, r'/cloud/v1/regions is not \{"results": \[...\]\}'),
        ("virtual-sines-2.json", {"count": 0, "flavors": []}, r'expected \{"count": N, "results": \[...\]\}'),
    ],
    ids=["no-default-project", "regions-envelope", "flavors-envelope"],
)
def test_a_wrong_envelope_refuses_the_batch(replay, payload, body, message):
    replay.put("gcore", payload, body)
    with pytest.raises(PayloadError, match=f"gcore: malformed payload: .*{message}"):
        hook(replay).fetch_batch()


def test_the_key_travels_as_apikey_and_a_wrong_one_gets_gcores_401(replay):
    with pytest.raises(VendorError, match=r"gcore: GET /cloud/v1/projects -> HTTP 401: .*Invalid API key") as error:
        hook(replay, key="wrong-key-77").fetch_batch()
    assert "wrong-key-77" not in str(error.value)
