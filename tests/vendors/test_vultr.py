"""Vultr hook against recorded payloads served over real HTTP by the replay server."""

import copy
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.vultr import VultrHook
from tests.vendors import lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY) -> VultrHook:
    return VultrHook(base_url=replay.vendor_url("vultr"), api_key=key)


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


def test_both_catalogues_and_every_cursor_page_are_read(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 3  # vcg page 1, vcg page 2 (meta.links.next cursor), plans-metal
    assert set(by_id(batch)) == {
        "vcg-a16-6c-64g-16vram:ewr", "vcg-a16-6c-64g-16vram:fra",
        "vcg-a40-24c-120g-48vram:ord", "vcg-a40-24c-120g-48vram:sjc",
        "vcg-l40s-16c-180g-48vram:ewr", "vcg-l40s-16c-180g-48vram:ams", "vcg-l40s-16c-180g-48vram:nrt",
        # page 2, reached only by following the cursor
        "vcg-a100-12c-120g-80vram:ewr", "vcg-l40s-32c-375g-96vram:ord", "vcg-l40s-32c-375g-96vram:fra",
        # bare metal
        "vbm-112c-2048gb-8-h100-gpu:ewr", "vbm-112c-2048gb-8-h100-gpu:sea", "vbm-256c-3072gb-8-mi325x-gpu:ord",
    }
    assert not batch.unknown_gpus and not batch.memory_mismatches


def test_plans_that_are_not_a_whole_on_demand_gpu_are_skipped(replay):
    instance_types = {o.instance_type for o in hook(replay).fetch_batch().offers}
    assert "vcg-a16-2c-16g-4vram" not in instance_types  # 4 GB slice of a 16 GB A16
    assert "vcg-a100-6c-60g-40vram" not in instance_types  # half of an 80 GB A100
    assert "vcg-a40-48c-240g-96vram" not in instance_types  # no locations
    assert "vcg-l40s-64c-750g-192vram" not in instance_types  # deploy_ondemand: false
    assert "vbm-256c-2048gb-8-mi300x-gpu" not in instance_types  # preemptible only
    assert "vbm-8c-132gb" not in instance_types  # CPU-only bare metal


def test_vcg_mapping_prices_and_card_count(replay):
    offers = by_id(hook(replay).fetch_batch())
    a100 = offers["vcg-a100-12c-120g-80vram:ewr"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb) == ("A100", 1, 80.0)
    assert a100.price_per_hour == Decimal("2.3970")
    assert (a100.vcpus, a100.ram_gb, a100.disk_gb) == (12, 120.0, 1400.0)
    assert (a100.country, a100.continent) == ("US", "NA")

    two_l40s = offers["vcg-l40s-32c-375g-96vram:fra"]
    assert (two_l40s.gpu_model, two_l40s.gpu_count, two_l40s.gpu_memory_gb) == ("L40S", 2, 48.0)
    assert str(two_l40s.price_per_hour) == "3.3420"  # the whole plan, both cards
    assert (two_l40s.country, two_l40s.availability) == ("DE", "available")


def test_location_cost_overrides_the_plan_price_in_that_region(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["vcg-l40s-16c-180g-48vram:ewr"].price_per_hour == Decimal("1.6710")
    assert offers["vcg-l40s-16c-180g-48vram:ams"].country == "NL"
    tokyo = offers["vcg-l40s-16c-180g-48vram:nrt"]
    assert (tokyo.price_per_hour, tokyo.country, tokyo.continent) == (Decimal("1.9210"), "JP", "AS")


def test_bare_metal_gpu_plans(replay):
    offers = by_id(hook(replay).fetch_batch())
    h100 = offers["vbm-112c-2048gb-8-h100-gpu:sea"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb) == ("H100", 8, 80.0)  # 640 GB / 8 cards
    assert h100.price_per_hour == Decimal("23.9200")
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (224, 2048.0, 1920.0)  # 2 x 960 GB disks
    mi325x = offers["vbm-256c-3072gb-8-mi325x-gpu:ord"]
    assert (mi325x.gpu_model, mi325x.gpu_vendor, mi325x.gpu_memory_gb) == ("MI325X", "AMD", 256.0)


def test_monthly_cost_is_converted_when_no_hourly_cost_is_sent(replay):
    vcg = copy.deepcopy(recording("vultr", "plans-vcg-1.json"))
    del vcg["plans"][2]["hourly_cost"]  # vcg-a40: $1250/month, cloud plans bill 730 h a month
    replay.put("vultr", "plans-vcg-1.json", vcg)
    metal = copy.deepcopy(recording("vultr", "plans-metal.json"))
    del metal["plans_metal"][3]["hourly_cost"]  # mi325x: $15052.80/month, bare metal caps at 672 h
    replay.put("vultr", "plans-metal.json", metal)
    offers = by_id(hook(replay).fetch_batch())
    assert offers["vcg-a40-24c-120g-48vram:ord"].price_per_hour == Decimal("1.7123")
    assert offers["vbm-256c-3072gb-8-mi325x-gpu:ord"].price_per_hour == Decimal("22.4000")


def test_wrong_key_gets_vultrs_error(replay):
    with pytest.raises(VendorError, match="HTTP 401: .*Invalid API token"):
        hook(replay, key="not-the-key").fetch_batch()


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("vultr", "plans-vcg-1.json", {"plans": {"vcg-a16-6c-64g-16vram": {}}, "meta": {"links": {"next": ""}}})
    with pytest.raises(PayloadError, match="vultr: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "plan"),
    [
        ("plans-vcg-2.json", lambda body: body["plans"][0].pop("locations"), "missing field 'locations'",
         "vcg-a100-12c-120g-80vram"),
        ("plans-vcg-1.json", lambda body: body["plans"][2].update(gpu_vram_gb="48"),
         "TypeError: '>=' not supported between instances of 'str' and 'int'", "vcg-a40-24c-120g-48vram"),
        ("plans-metal.json", lambda body: body["plans_metal"][1].update(hourly_cost="n/a"),
         "TypeError: price 'n/a' is not a number", "vbm-112c-2048gb-8-h100-gpu"),
    ],
    ids=["missing-locations", "vram-as-text", "price-not-a-number"],
)
def test_a_broken_plan_is_dropped_with_its_reason_and_the_rest_land(replay, payload, mutate, reason, plan):
    whole, broken = with_one_item_broken(replay, hook, "vultr", payload, mutate)
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {o.offer_id for o in whole.offers if o.instance_type == plan}


def test_plans_of_every_type_in_one_listing_keep_only_the_gpu_ones(replay):
    replay.put("vultr", "plans-vcg-1.json", recording("vultr", "variant-all-types.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped["not a GPU plan (type 'vc2')"] == 2 and batch.skipped["not a GPU plan (type 'voc')"] == 1
    assert not batch.dropped
    h100 = by_id(batch)["vcg-h100-16c-200g-80vram:lax"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.price_per_hour) == ("H100", 1, 80.0, Decimal("3.0000"))
    assert not any(o.instance_type.startswith(("vc2", "vhf", "vhp", "voc")) for o in batch.offers)
