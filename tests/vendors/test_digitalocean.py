"""DigitalOcean hook against recorded payloads served over real HTTP by the replay server."""

import copy
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.digitalocean import DigitalOceanHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY) -> DigitalOceanHook:
    return DigitalOceanHook(base_url=replay.vendor_url("digitalocean"), api_key=key)


def test_next_links_are_followed_and_every_gpu_size_region_is_an_offer(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2
    assert set(by_id(batch)) == {
        "gpu-h100x1-80gb:nyc2", "gpu-h100x1-80gb:tor1", "gpu-h100x1-80gb:atl1",
        "gpu-h100x8-640gb:nyc2", "gpu-h100x8-640gb:tor1",
        "gpu-l40sx1-48gb:tor1",
        # page 2, reached through links.pages.next
        "gpu-6000adax1-48gb:tor1", "gpu-h200x1-141gb:atl1", "gpu-h200x1-141gb:nyc2", "gpu-mi300x1-192gb:atl1",
        "gpu-mi350x8-2304gb:atl1",
    }
    assert not batch.memory_mismatches


def test_cpu_sizes_unavailable_sizes_and_unknown_gpus_are_left_out(replay):
    batch = hook(replay).fetch_batch()
    slugs = {o.instance_type for o in batch.offers}
    assert "s-2vcpu-4gb" not in slugs  # no gpu_info
    assert "gpu-h200x8-1128gb" not in slugs  # available: false, no regions
    assert "gpu-p4000x1-8gb" not in slugs  # a GPU the registry does not know, in two regions:
    assert batch.unknown_gpus == {"nvidia_p4000": 1}  # counted once per size, not guessed


def test_vram_is_the_droplet_total_and_prices_are_per_droplet(replay):
    offers = by_id(hook(replay).fetch_batch())
    eight = offers["gpu-h100x8-640gb:tor1"]
    assert (eight.gpu_model, eight.gpu_count, eight.gpu_memory_gb) == ("H100", 8, 80.0)  # 640 gib / 8
    assert eight.price_per_hour == Decimal("23.9200")
    assert (eight.vcpus, eight.ram_gb, eight.disk_gb) == (160, 1920.0, 2046.0)  # 1966080 MB of RAM
    assert (eight.country, eight.continent, eight.availability) == ("CA", "NA", "available")

    one = offers["gpu-h100x1-80gb:atl1"]
    assert (one.gpu_count, one.gpu_memory_gb, str(one.price_per_hour)) == (1, 80.0, "3.3900")
    assert one.country == "US"


def test_vendor_model_codes_map_to_registry_models(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["gpu-6000adax1-48gb:tor1"].gpu_model == "RTX6000ADA"
    mi300x = offers["gpu-mi300x1-192gb:atl1"]
    assert (mi300x.gpu_model, mi300x.gpu_vendor, mi300x.gpu_memory_gb) == ("MI300X", "AMD", 192.0)
    assert offers["gpu-h200x1-141gb:nyc2"].gpu_memory_gb == 141.0
    mi350x = offers["gpu-mi350x8-2304gb:atl1"]
    assert (mi350x.gpu_model, mi350x.gpu_vendor, mi350x.gpu_count, mi350x.gpu_memory_gb) == ("MI350X", "AMD", 8, 288.0)
    assert (str(mi350x.price_per_hour), mi350x.vcpus, mi350x.ram_gb, mi350x.disk_gb) == ("23.8400", 128, 2304.0, 2046.0)
    assert (mi350x.region, mi350x.country) == ("atl1", "US")


def test_next_link_host_is_not_followed(replay):
    """The key stays on the configured host: only the next link's query is used."""
    body = copy.deepcopy(recording("digitalocean", "sizes-1.json"))
    body["links"]["pages"]["next"] = "https://attacker.example/v2/sizes?page=2&per_page=100"
    replay.put("digitalocean", "sizes-1.json", body)
    assert len(hook(replay).fetch_batch().offers) == 11


def test_wrong_key_gets_digitaloceans_error(replay):
    with pytest.raises(VendorError, match="HTTP 401: .*Unable to authenticate you"):
        hook(replay, key="not-the-key").fetch_batch()


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("digitalocean", "sizes-2.json"))
    body.pop("sizes")
    replay.put("digitalocean", "sizes-2.json", body)
    with pytest.raises(PayloadError, match="digitalocean: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "index", "mutate", "reason"),
    [
        ("sizes-1.json", 2, lambda size: size["gpu_info"]["vram"].update(unit="furlongs"), "unknown gpu_info.vram unit 'furlongs'"),
        ("sizes-2.json", 0, lambda size: size.update(price_hourly="1.57"), "field 'price_hourly' is not a number"),
        ("sizes-1.json", 3, lambda size: size["gpu_info"].update(count=0), "gpu_info.count 0"),
    ],
    ids=["unknown-vram-unit", "price-as-text", "zero-gpus"],
)
def test_a_broken_size_is_dropped_with_its_reason_and_the_rest_land(replay, payload, index, mutate, reason):
    slug = recording("digitalocean", payload)["sizes"][index]["slug"]
    whole, broken = with_one_item_broken(replay, hook, "digitalocean", payload, lambda body: mutate(body["sizes"][index]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {o.offer_id for o in whole.offers if o.instance_type == slug} != set()


def test_cpu_droplets_are_skipped_not_dropped_and_a_size_without_vram_takes_the_registrys(replay):
    body = copy.deepcopy(recording("digitalocean", "sizes-1.json"))
    size = next(s for s in body["sizes"] if s.get("gpu_info", {}).get("model") == "nvidia_l40s")
    size["gpu_info"].pop("vram")
    replay.put("digitalocean", "sizes-1.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.skipped["CPU Droplet size (no gpu_info)"] >= 1 and not batch.dropped
    l40s = next(o for o in batch.offers if o.instance_type == size["slug"])
    assert (l40s.gpu_memory_gb, l40s.inferred) == (48, ("gpu_memory_gb",))


def test_every_size_on_one_page_keeps_the_gpu_sizes_and_skips_the_rest(replay):
    replay.put("digitalocean", "sizes-1.json", recording("digitalocean", "variant-single-page.json"))
    batch = hook(replay).fetch_batch()
    assert batch.pages == 1 and not batch.dropped
    assert batch.skipped["CPU Droplet size (no gpu_info)"] == 3  # s-2vcpu-4gb, c-4, m-2vcpu-16gb
    mi350x = next(o for o in batch.offers if o.instance_type == "gpu-mi350x8-2304gb")
    assert (mi350x.gpu_count, mi350x.gpu_memory_gb, str(mi350x.price_per_hour)) == (8, 288.0, "23.8400")


def test_gpu_sizes_listed_without_gpu_info_are_read_from_their_slug(replay):
    replay.put("digitalocean", "sizes-1.json", recording("digitalocean", "variant-slug-only-gpus.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU Droplet size (no gpu_info)": 1, "GPU size that cannot be created anywhere now": 1}
    assert not batch.dropped and not batch.unknown_gpus
    offers = {o.offer_id: o for o in batch.offers}
    assert set(offers) == {"gpu-h100x1-80gb:nyc2", "gpu-h100x1-80gb:tor1", "gpu-mi300x8-1536gb:atl1", "gpu-4000adax1-20gb:tor1"}
    h100 = offers["gpu-h100x1-80gb:tor1"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", 1, 80.0, "3.3900")
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb, h100.country) == (20, 240.0, 720.0, "CA")  # 245760 MB
    mi300x = offers["gpu-mi300x8-1536gb:atl1"]  # 1536 GB for 8 GPUs
    assert (mi300x.gpu_model, mi300x.gpu_vendor, mi300x.gpu_count, mi300x.gpu_memory_gb) == ("MI300X", "AMD", 8, 192.0)
    assert (str(mi300x.price_per_hour), mi300x.ram_gb, mi300x.country) == ("15.9200", 1920.0, "US")
    ada = offers["gpu-4000adax1-20gb:tor1"]
    assert (ada.gpu_model, ada.gpu_memory_gb, str(ada.price_per_hour)) == ("RTX4000ADA", 20.0, "0.7600")


def test_a_gpu_slug_naming_no_gpu_is_dropped_not_skipped_as_cpu():
    size = {"slug": "gpu-x8-640gb", "memory": 1024, "vcpus": 8, "disk": 100, "price_hourly": 9.0, "regions": ["nyc1"],
            "available": True}  # fmt: skip
    batch = DigitalOceanHook().parse([{"sizes": [size, *recording("digitalocean", "sizes-1.json")["sizes"]]}],
                                     datetime.now(timezone.utc))  # fmt: skip
    assert batch.dropped == {"GPU size 'gpu-x8-640gb' without gpu_info and a slug naming no GPU": 1}
