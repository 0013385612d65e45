"""Vultr hook against recorded payloads served over real HTTP by the replay server."""

import copy
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.vultr import VultrHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY) -> VultrHook:
    return VultrHook(base_url=replay.vendor_url("vultr"), api_key=key)


def test_both_catalogues_and_every_cursor_page_are_read(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 3  # plans page 1, plans page 2 (meta.links.next cursor), plans-metal
    assert set(by_id(batch)) == {
        "vcg-a16-6c-64g-16vram:ewr", "vcg-a16-6c-64g-16vram:fra",
        "vcg-a40-24c-120g-48vram:ord", "vcg-a40-24c-120g-48vram:sjc",
        "vcg-l40s-16c-180g-48vram:ewr", "vcg-l40s-16c-180g-48vram:ams", "vcg-l40s-16c-180g-48vram:nrt",
        "vcg-h100-16c-200g-80vram:ewr", "vcg-h100-16c-200g-80vram:lax",
        # page 2, reached only by following the cursor
        "vcg-a100-12c-120g-80vram:ewr", "vcg-l40s-32c-375g-96vram:ord", "vcg-l40s-32c-375g-96vram:fra",
        "vcg-l40s-64c-750g-192vram:ord@spot",  # preemptible only: a spot offer
        # bare metal
        "vbm-112c-2048gb-8-h100-gpu:ewr", "vbm-112c-2048gb-8-h100-gpu:sea", "vbm-256c-3072gb-8-mi325x-gpu:ord",
        "vbm-256c-2048gb-8-mi300x-gpu:ord@spot",
    }
    assert not batch.unknown_gpus and not batch.memory_mismatches and not batch.dropped


def test_plans_that_are_not_a_whole_gpu_are_skipped_and_counted(replay):
    batch = hook(replay).fetch_batch()
    instance_types = {o.instance_type for o in batch.offers}
    assert "vcg-a16-2c-16g-4vram" not in instance_types  # 4 GB slice of a 16 GB A16
    assert "vcg-a100-6c-60g-40vram" not in instance_types  # half of an 80 GB A100
    assert "vcg-a40-48c-240g-96vram" not in instance_types  # no locations
    assert "vbm-8c-132gb" not in instance_types  # CPU-only bare metal
    assert batch.skipped == {
        "a vGPU slice of one card, not a whole GPU": 2, "deployable in no location": 1, "CPU-only bare-metal plan": 1,
        "not a GPU plan (type 'vc2')": 2, "not a GPU plan (type 'vhf')": 1, "not a GPU plan (type 'vhp')": 1,
        "not a GPU plan (type 'voc')": 1,
    }
    # every plan of the 3 pages (10 + 5 + 4) is an offer's plan or skipped with its reason: none lost
    assert batch.items == 19 == len(instance_types) + batch.skipped.total() and not batch.dropped


def test_preemptible_prices_become_spot_prices_and_spot_only_offers(replay):
    offers = by_id(hook(replay).fetch_batch())
    l40s = offers["vcg-l40s-16c-180g-48vram:ewr"]  # deploy_preemptible: true, hourly_cost_preemptible 1.253
    assert (l40s.price_per_hour, l40s.spot_price, l40s.pricing_type) == (Decimal("1.6710"), Decimal("1.2530"), "on_demand")
    h100 = offers["vbm-112c-2048gb-8-h100-gpu:ewr"]
    assert (h100.price_per_hour, h100.spot_price) == (Decimal("23.9200"), Decimal("18.4000"))
    assert offers["vcg-a40-24c-120g-48vram:ord"].spot_price is None  # deploy_preemptible: false
    mi300x = offers["vbm-256c-2048gb-8-mi300x-gpu:ord@spot"]  # deploy_ondemand: false
    assert (mi300x.pricing_type, mi300x.price_per_hour, mi300x.spot_price) == ("spot", Decimal("14.8000"), None)
    assert (mi300x.gpu_model, mi300x.gpu_count, mi300x.gpu_memory_gb, mi300x.instance_type) == (
        "MI300X", 8, 192.0, "vbm-256c-2048gb-8-mi300x-gpu")  # 1536 GB / 8 cards
    l40s_x4 = offers["vcg-l40s-64c-750g-192vram:ord@spot"]
    assert (l40s_x4.gpu_count, l40s_x4.price_per_hour, l40s_x4.commitment_months) == (4, Decimal("5.0140"), None)


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
    vcg = copy.deepcopy(recording("vultr", "plans-1.json"))
    del vcg["plans"][5]["hourly_cost"]  # vcg-a40: $1250/month, cloud plans bill 730 h a month
    replay.put("vultr", "plans-1.json", vcg)
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
    replay.put("vultr", "plans-1.json", {"plans": {"vcg-a16-6c-64g-16vram": {}}, "meta": {"links": {"next": ""}}})
    with pytest.raises(PayloadError, match="vultr: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "plan"),
    [
        ("plans-2.json", lambda body: body["plans"][0].pop("locations"), "missing field 'locations'",
         "vcg-a100-12c-120g-80vram"),
        ("plans-1.json", lambda body: body["plans"][5].update(gpu_vram_gb="48"),
         "TypeError: gpu_vram_gb '48' is not a number", "vcg-a40-24c-120g-48vram"),
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
    batch = hook(replay).fetch_batch()  # /v2/plans?type=all: vc2, vhf, vhp, voc beside the GPU plans
    h100 = by_id(batch)["vcg-h100-16c-200g-80vram:lax"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.price_per_hour) == ("H100", 1, 80.0, Decimal("3.0000"))
    assert not any(o.instance_type.startswith(("vc2", "vhf", "vhp", "voc")) for o in batch.offers)


def test_bare_metal_plans_naming_their_gpu_only_in_the_id(replay):
    """The shape plans-metal long had: no GPU field; the GPU, and its count when more than one, in the id."""
    replay.put("vultr", "plans-metal.json", recording("vultr", "variant-gpu-in-id-metal.json"))
    batch = hook(replay).fetch_batch()
    metal = {k: o for k, o in by_id(batch).items() if k.startswith("vbm-")}
    assert set(metal) == {
        "vbm-48c-1024gb-4-a100-gpu:ewr", "vbm-48c-1024gb-4-a100-gpu:sjc", "vbm-72c-480gb-gh200-gpu:ewr",
        "vbm-64c-2048gb-8-l40-gpu:lax", "vbm-256c-2048gb-8-mi300x-gpu:ord",
        "vbm-64c-1536gb-8-a100_nvlink:fra", "vbm-64c-1536gb-8-a100_nvlink:nrt", "vbm-112c-2048gb-8-b200-gpu:sea@spot",
    }
    assert batch.skipped["CPU-only bare-metal plan"] == 1 and not batch.dropped and not batch.unknown_gpus

    a100 = metal["vbm-48c-1024gb-4-a100-gpu:sjc"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, a100.price_per_hour, a100.spot_price) == (
        "A100", 4, 80.0, Decimal("10.4170"), None)
    assert (a100.vcpus, a100.ram_gb, a100.disk_gb, a100.country) == (96, 1024.0, 3840.0, "US")  # 1048576 MB; 2 x 1920 GB
    assert a100.inferred == ("gpu_memory_gb",)  # Vultr's A100s are 80 GB cards; the plan does not say

    gh200 = metal["vbm-72c-480gb-gh200-gpu:ewr"]  # no count token: one superchip
    assert (gh200.gpu_model, gh200.gpu_count, gh200.gpu_memory_gb) == ("GH200", 1, 96.0)
    assert (gh200.price_per_hour, gh200.spot_price, gh200.vcpus, gh200.ram_gb) == (
        Decimal("2.9900"), Decimal("2.0000"), 72, 480.0)
    assert gh200.inferred == ("gpu_count", "gpu_memory_gb")

    l40s = metal["vbm-64c-2048gb-8-l40-gpu:lax"]  # monthly only: $12000 / 672 h
    assert (l40s.gpu_model, l40s.gpu_count, l40s.price_per_hour, l40s.disk_gb) == ("L40S", 8, Decimal("17.8571"), 960.0)

    mi300x = metal["vbm-256c-2048gb-8-mi300x-gpu:ord"]
    assert (mi300x.gpu_vendor, mi300x.gpu_count, mi300x.gpu_memory_gb) == ("AMD", 8, 192.0)
    assert (mi300x.price_per_hour, mi300x.spot_price, mi300x.ram_gb, mi300x.disk_gb) == (
        Decimal("17.5200"), Decimal("14.7200"), 2267.5, 28608.0)  # 2321924 MB; 8 x 3576 GB

    nvlink = metal["vbm-64c-1536gb-8-a100_nvlink:nrt"]  # id not ending in -gpu; NVLink stated in the token
    assert (nvlink.gpu_model, nvlink.gpu_count, nvlink.interconnect, nvlink.price_per_hour) == (
        "A100", 8, "nvlink", Decimal("14.4000"))
    assert (nvlink.country, nvlink.gpu_form_factor) == ("JP", "SXM")
    assert all(o.interconnect is None for k, o in metal.items() if "nvlink" not in k)

    b200 = metal["vbm-112c-2048gb-8-b200-gpu:sea@spot"]  # deploy_ondemand: false: preemptible only
    assert (b200.pricing_type, b200.gpu_count, b200.gpu_memory_gb, b200.price_per_hour) == (
        "spot", 8, 192.0, Decimal("31.2000"))


def test_whole_gpu_cloud_plans_of_type_vdm(replay):
    replay.put("vultr", "plans-1.json", recording("vultr", "variant-whole-gpu-vdm.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped["a vGPU slice of one card, not a whole GPU"] >= 1  # vcg-a100-1c-6g-4vram
    assert batch.skipped["not a GPU plan (type 'vc2')"] == 1 and not batch.dropped
    offers = by_id(batch)
    h100 = offers["vcg-h100-216c-1914gb-640vram:atl"]  # 640 GB of H100s: 8 cards
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.vcpus, h100.ram_gb) == ("H100", 8, 80.0, 216, 1914.0)
    assert (h100.price_per_hour, h100.spot_price, h100.country) == (Decimal("22.0160"), Decimal("16.9380"), "US")
    b200 = offers["vcg-b200-248c-2826g-1536vram:mia@spot"]  # no gpu_type: B200 from the id; spot only
    assert (b200.gpu_model, b200.gpu_count, b200.gpu_memory_gb, b200.pricing_type, b200.price_per_hour) == (
        "B200", 8, 192.0, "spot", Decimal("32.0000"))
    assert "vcg-b200-248c-2826g-1536vram:mia" not in offers  # its on-demand price is not for sale
    mi325x = offers["vcg-mi325x-256c-3072g-2048vram:ord"]
    assert (mi325x.gpu_model, mi325x.gpu_count, mi325x.gpu_memory_gb, mi325x.price_per_hour) == (
        "MI325X", 8, 256.0, Decimal("20.6200"))
    a100 = offers["vcg-a100-12c-120g-80vram:sjc"]  # no deploy_* fields: on demand, no spot price
    assert (a100.gpu_count, a100.price_per_hour, a100.spot_price, a100.pricing_type) == (
        1, Decimal("2.3970"), None, "on_demand")


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"id": "vbm-64c-1024gb-8-gpu", "gpu_count": 8}, "GPU plan whose GPU is named neither in gpu_type nor in its id"),
        ({"id": "vcg-32c-256g-96vram", "type": "vdm", "gpu_vram_gb": 96},
         "GPU plan whose GPU is named neither in gpu_type nor in its id"),
    ],
    ids=["metal-gpu-count-no-name", "vdm-no-name"],
)
def test_a_gpu_plan_whose_gpu_cannot_be_named_is_dropped_never_skipped_as_cpu(replay, plan, reason):
    kind = "plans_metal" if plan["id"].startswith("vbm") else "plans"
    base = {"ram": 1024, "disk": 100, "hourly_cost": 5.0, "locations": ["ewr"], "cpu_count": 8, "vcpu_count": 8}
    body = copy.deepcopy(recording("vultr", "plans-metal.json" if kind == "plans_metal" else "plans-1.json"))
    body[kind].append(base | plan)
    replay.put("vultr", "plans-metal.json" if kind == "plans_metal" else "plans-1.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}


def test_a_gpu_the_registry_does_not_know_is_counted_not_guessed(replay):
    body = copy.deepcopy(recording("vultr", "plans-metal.json"))
    body["plans_metal"].append({"id": "vbm-64c-1024gb-8-xq9-gpu", "cpu_count": 64, "ram": 1024, "disk": 960,
                                "hourly_cost": 9.0, "locations": ["ewr"]})  # fmt: skip
    replay.put("vultr", "plans-metal.json", body)
    assert hook(replay).fetch_batch().unknown_gpus == {"xq9": 1}
