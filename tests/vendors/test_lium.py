"""Lium hook against recorded executor pages served over real HTTP by the replay server."""

import copy

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.lium import LiumHook
from gpubroker import gpus
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


GTX_1660_SUPER = "5b2e9d71-3a8c-4f64-b0d7-1e5c9a2f6b83"  # executors-2.json: a GPU the registry does not know


def hook(replay) -> LiumHook:
    return LiumHook(base_url=replay.vendor_url("lium"), api_key=REPLAY_KEY)


@pytest.fixture
def six_per_page(monkeypatch):
    """The recorded first page holds 6 executors: make that a full page so the hook asks for page 2."""
    monkeypatch.setattr(LiumHook, "page_size", len(recording("lium", "executors-1.json")))


def test_pages_are_followed_until_a_short_page(replay, six_per_page):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2
    offers = by_id(batch)
    page1, page2 = recording("lium", "executors-1.json"), recording("lium", "executors-2.json")
    # page 1: one CPU-only executor skipped; page 2: one GTX 1660 SUPER unknown to the registry
    assert len(offers) == len(page1) - 1 + len(page2) - 1
    assert {e["id"] for e in page2} - set(offers) == {GTX_1660_SUPER}
    assert batch.unknown_gpus == {"NVIDIA GeForce GTX 1660 SUPER": 1}  # counted, not guessed
    assert "e9f03b6d-1c27-48a5-b3e9-0d4c7a2f8b51" not in offers  # CPU-only


def test_a_short_first_page_is_the_only_page(replay):
    batch = hook(replay).fetch_batch()  # default page size 100 > 6 recorded executors
    assert batch.pages == 1
    assert "0a7c3e58-94d1-4b26-8f0e-6d2b1a9c5e37" not in by_id(batch)


def test_executor_mapping(replay, six_per_page):
    offers = by_id(hook(replay).fetch_batch())
    h100 = offers["3f6c2a1e-8d4b-4c7e-9a51-2b7d0e91c4a8"]
    assert str(h100.price_per_hour) == "17.5200"  # whole executor, 8 GPUs
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb) == ("H100", 8, 79.6)  # 81559 MiB
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (192, 2015.5, 3576.3)  # KiB -> GiB
    assert (h100.region, h100.country, h100.continent) == ("Ashburn, VA, US", "US", "NA")
    assert (h100.availability, h100.available_count, h100.instance_type) == ("available", 1, "8x NVIDIA H100 80GB HBM3")

    a100 = offers["c7e41f92-0a6b-4d38-b5c1-9e2f8a7d3b16"]
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_memory_gb, a100.country) == ("A100", "SXM", 80, "CA")
    h200 = offers["f4b87d20-6e39-4a1c-9d5f-3a2b8c7e1d94"]
    assert (h200.gpu_model, h200.gpu_memory_gb) == ("H200", 140.4)  # 143771 MiB
    assert (str(h200.price_per_hour), h200.country) == ("25.5200", "FI")
    rtx = offers["b1d9e7a4-52c3-4f0a-8e6d-7c1a3b9f2e05"]
    assert (rtx.gpu_model, rtx.gpu_count, rtx.gpu_memory_gb, str(rtx.price_per_hour), rtx.instance_type) == (
        "RTX4090", 1, 24.0, "0.2900", "NVIDIA GeForce RTX 4090",
    )
    rtx4090d = offers["d2a58c3b-7f14-4e9d-a6b2-5c8e1f0d9a73"]  # "NVIDIA GeForce RTX 4090 D", 24564 MiB
    assert (rtx4090d.gpu_model, rtx4090d.gpu_count, rtx4090d.gpu_memory_gb, str(rtx4090d.price_per_hour)) == (
        "RTX4090D", 2, 24.0, "0.5000",
    )
    assert (rtx4090d.country, rtx4090d.instance_type) == ("HK", "2x NVIDIA GeForce RTX 4090 D")
    a6000 = offers["0a7c3e58-94d1-4b26-8f0e-6d2b1a9c5e37"]
    assert (a6000.gpu_model, a6000.gpu_count, str(a6000.price_per_hour), a6000.region) == (
        "RTXA6000", 2, "0.8000", "Dallas, TX, US",
    )


def test_executor_without_location_keeps_an_unknown_region(replay, six_per_page):
    rtx5090 = by_id(hook(replay).fetch_batch())["8d6f1a24-c5b7-4e93-a2d8-4f0e7b3c9a15"]
    assert (rtx5090.gpu_model, rtx5090.region, rtx5090.country) == ("RTX5090", "unknown", None)


def test_the_key_travels_in_x_api_key(replay):
    assert hook(replay).auth_headers("k") == {"X-API-Key": "k"}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda ex: ex.pop("price_per_hour"), "no price (price_per_hour, price_per_gpu)"),
        (lambda ex: ex["specs"]["gpu"].update(count=4), "gpu.count != len(gpu.details)"),  # 8 details, 4 GPUs
        (lambda ex: ex.update(price_per_hour="cheap"), "field 'price_per_hour' is not a number"),
        (lambda ex: ex.update(price_per_hour=0), "price_per_hour: Input should be greater than 0"),
    ],
    ids=["no-price", "count-disagrees-with-details", "price-not-a-number", "zero-price"],
)
def test_a_broken_executor_is_dropped_with_its_reason_and_the_rest_land(replay, six_per_page, mutate, reason):
    whole, broken = with_one_item_broken(
        replay, hook, "lium", "executors-1.json", lambda body: mutate(body[0]))  # fmt: skip
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {recording("lium", "executors-1.json")[0]["id"]}


def test_gpu_memory_not_reported_comes_from_the_registry(replay, six_per_page):
    body = copy.deepcopy(recording("lium", "executors-1.json"))
    body[1]["specs"]["gpu"]["details"][0].pop("capacity")
    replay.put("lium", "executors-1.json", body)
    offer = by_id(hook(replay).fetch_batch())[body[1]["id"]]
    assert offer.gpu_memory_gb == gpus.resolve(body[1]["specs"]["gpu"]["details"][0]["name"]).model.memory_gb[0]
    assert offer.inferred == ("gpu_memory_gb",)


def test_an_object_instead_of_an_array_is_rejected(replay):
    replay.put("lium", "executors-1.json", {"executors": recording("lium", "executors-1.json")})
    with pytest.raises(PayloadError, match="JSON array of executors"):
        hook(replay).fetch_batch()


def test_the_newer_listing_names_the_gpu_in_machine_name_and_prices_per_gpu(replay):
    """Since the backend's 2025-11 migration: `price_per_gpu`, GPU details optional, `tier`."""
    replay.put("lium", "executors-1.json", recording("lium", "variant-machine-name.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU-only executor": 1} and not batch.dropped and not batch.unknown_gpus
    offers = by_id(batch)
    assert len(offers) == 4

    h100 = offers["6a1f0c3e-2b7d-4e58-9c14-8d3e5f7a9b20"]  # no details: the GPU from machine_name
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.inferred) == ("H100", 8, 80.0, ())  # "80GB"
    assert str(h100.price_per_hour) == "15.1200"  # 8 x $1.89
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (224, 2015.5, 7152.6)  # KiB -> GiB
    assert (h100.region, h100.country, h100.pricing_type, h100.instance_type) == (
        "Frankfurt am Main, HE, DE", "DE", "on_demand", "8x NVIDIA H100 80GB HBM3")

    h200 = offers["7b2e1d4f-3c8e-4f69-ad25-9e4f6a8b0c31"]  # tier "spot": reclaimable
    assert (h200.gpu_model, h200.gpu_count, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 8, 141.0, "18.4000")
    assert (h200.pricing_type, h200.inferred, h200.country) == ("spot", ("gpu_memory_gb",), "US")

    sxm = offers["8c3f2e50-4d9f-4a7a-be36-af507b9c1d42"]  # "NVIDIA H100 SXM 8x", details named "H100"
    assert (sxm.gpu_model, sxm.gpu_count, sxm.gpu_memory_gb, str(sxm.price_per_hour)) == ("H100", 8, 80.0, "20.0000")
    assert (sxm.instance_type, sxm.vcpus, sxm.ram_gb, sxm.disk_gb) == ("NVIDIA H100 SXM 8x", None, 2.0, 10.0)
    assert (sxm.region, sxm.country) == ("US", "US")  # a country without a code

    rtx = offers["9d4a3f61-5e0a-4b8b-8f47-b0618cad2e53"]  # top-level gpu_count, empty specs
    assert (rtx.gpu_model, rtx.gpu_count, rtx.gpu_memory_gb, str(rtx.price_per_hour)) == ("RTX4090", 2, 24.0, "0.6200")
    assert (rtx.vcpus, rtx.ram_gb, rtx.disk_gb, rtx.country) == (None, None, None, "CA")


def test_an_executor_stating_its_gpus_nowhere_is_dropped_not_skipped(replay):
    body = copy.deepcopy(recording("lium", "variant-machine-name.json"))
    body[3].pop("gpu_count")  # RTX 4090: no count anywhere, no details
    body[0]["machine_name"] = ""  # H100: 8 GPUs, no details: nothing names the GPU
    replay.put("lium", "executors-1.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {"GPU count stated nowhere (specs.gpu.count, gpu_count, machine_name, gpu.details)": 1,
                             "GPU model named nowhere (gpu.details[].name, machine_name)": 1}


def test_the_public_node_feed_is_read_row_by_row(replay):
    """`/api/public/v1/nodes`: {"nodes": [...]}, flat rows, the price for the whole node."""
    replay.put("lium", "executors-1.json", recording("lium", "variant-public-nodes.json"))
    batch = hook(replay).fetch_batch()
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus
    offers = by_id(batch)
    h100 = offers["b1c6d283-7a2c-4dad-8b69-d2830e4f5a75"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", 8, 80.0, "14.3200")
    assert (h100.vcpus, h100.ram_gb, h100.region, h100.country, h100.continent) == (208, 1934.0, "US", "US", "NA")
    assert (h100.availability, h100.available_count, h100.pricing_type) == ("available", 1, "on_demand")
    rtx = offers["c2d7e394-8b3d-4ebe-9c7a-e3941f5a6b86"]  # 2 of its 4 GPUs in use: not rentable whole
    assert (rtx.gpu_model, rtx.gpu_count, str(rtx.price_per_hour), rtx.availability, rtx.available_count) == (
        "RTX5090", 4, "2.0800", "limited", 0)
    b200 = offers["d3e8f4a5-9c4e-4fcf-ad8b-f4a5206b7c97"]
    assert (b200.gpu_model, b200.gpu_memory_gb, b200.pricing_type, str(b200.price_per_hour), b200.country) == (
        "B200", 180.0, "spot", "24.8000", "NL")
    pro = offers["e4f9a5b6-ad5f-40d0-be9c-a5b6317c8da8"]
    assert (pro.gpu_model, pro.gpu_count, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 1, 96.0, "1.0500")


@pytest.mark.parametrize("listing", ["variant-machine-name.json", "variant-public-nodes.json"])
def test_secure_tier_executors_are_tagged_secure_cloud_and_no_others(replay, listing):
    replay.put("lium", "executors-1.json", recording("lium", listing))
    body = recording("lium", listing)
    tiers = {str(row.get("id") or row.get("node_id")): row.get("tier") for row in (body["nodes"] if isinstance(body, dict) else body)}
    offers = by_id(hook(replay).fetch_batch())
    assert {o.offer_id: o.tags for o in offers.values()} == {
        offer_id: ("secure-cloud",) if tiers[offer_id] == "secure" else () for offer_id in offers}
    assert {tiers[o] for o in offers} >= {"secure", "spot"}  # both tiers are in the listing
