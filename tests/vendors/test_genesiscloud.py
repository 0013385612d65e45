"""Genesis Cloud price page: per-GPU prices x instance-type GPUs per region, GiB -> GB, "RFQ" cards skipped."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.genesiscloud import GenesisCloudHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "genesiscloud" / "pricing.html").read_text()
H100 = "vcpu-192_memory-1920g_nvidia-h100-sxm5-8"


def hook(replay):
    return GenesisCloudHook(base_url=replay.vendor_url("genesiscloud"))


def test_per_gpu_prices_times_gpus_per_region(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, batch.skipped) == (6, {"contact sales: no public price": 1})  # GB200 NVL72: "RFQ"
    assert batch.unknown_gpus == {} and not batch.dropped and not batch.memory_mismatches
    assert sorted(offers) == [
        "ARC-IS-HAF-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8",
        "ARC-IS-HAF-1:vcpu-192_memory-2048g_nvidia-h200-sxm5-8",
        "ARC-IS-HAF-1:vcpu-32_memory-192g_nvidia-rtx-3090-8",
        "ARC-IS-HAF-1:vcpu-4_memory-24g_nvidia-rtx-3090-1",
        "NORD-NO-KRS-1:vcpu-192_memory-1920g_nvidia-h100-sxm5-8",
        "NORD-NO-KRS-1:vcpu-192_memory-2048g_nvidia-h200-sxm5-8",
        "NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b200-sxm6-8",
        "NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b300-sxm6-8",
    ]
    h100 = offers[f"NORD-NO-KRS-1:{H100}"]  # "NVIDIA HGX<sup>TM</sup> H100"
    assert str(h100.price_per_hour) == "17.5200"  # 8 x 2.19
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (192, 2061.6, 30923.8)  # 1920 GiB RAM, 28800 GiB disks
    assert (h100.instance_type, h100.country, h100.continent, h100.availability) == (H100, "NO", "EU", "unknown")
    assert offers[f"ARC-IS-HAF-1:{H100}"].country == "IS"
    assert str(offers["ARC-IS-HAF-1:vcpu-4_memory-24g_nvidia-rtx-3090-1"].price_per_hour) == "0.3300"
    rtx8 = offers["ARC-IS-HAF-1:vcpu-32_memory-192g_nvidia-rtx-3090-8"]
    assert (rtx8.gpu_model, rtx8.gpu_count, rtx8.gpu_memory_gb, str(rtx8.price_per_hour)) == ("RTX3090", 8, 24, "2.6400")
    assert str(offers["NORD-NO-KRS-1:vcpu-192_memory-2048g_nvidia-h200-sxm5-8"].price_per_hour) == "23.9200"  # 8 x 2.99
    b200 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b200-sxm6-8"]
    assert (b200.gpu_model, b200.gpu_memory_gb, str(b200.price_per_hour)) == ("B200", 180, "30.0000")
    b300 = offers["NORD-NO-KRS-1:vcpu-240_memory-2880g_nvidia-b300-sxm6-8"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288)
    assert str(b300.price_per_hour) == "35.9200"  # 8 x 4.49
    assert (b300.vcpus, b300.ram_gb, b300.disk_gb, b300.country) == (240, 3092.4, 33200.1, "NO")  # from GiB


def test_a_quoted_card_once_priced_becomes_an_offer(replay):
    replay.put("genesiscloud", "pricing.html", PAGE.replace(">RFQ<", ">$5.20/h<"))
    gb200 = by_id(hook(replay).fetch_batch())["NORD-NO-KRS-1:vcpu-224_memory-1920g_nvidia-gb200-8"]
    assert (gb200.gpu_model, gb200.gpu_form_factor, gb200.gpu_count, gb200.gpu_memory_gb) == ("GB200", None, 8, 186)
    assert gb200.price_per_hour == Decimal("41.6000")  # 8 x $5.20


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$2.19/h", "from Q1"), "no price in 'from Q1'", 2),
        (("NVIDIA HGX<sup>TM</sup> B200", "NVIDIA HGX<sup>TM</sup> B200A"),
         "no instance type known for 'NVIDIA HGX B200A' (add it from Genesis Cloud's API docs)", 1),
        (("8x NVIDIA H200 GPU 141 GB", "8x NVIDIA H200 GPU"), "no size in GB in '- 8x NVIDIA H200 GPU Data center locations: Norway, Iceland'", 2),
    ],
    ids=["price-gone", "new-gpu-name", "memory-gone"],
)
def test_a_broken_card_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("genesiscloud", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == gone


def test_a_page_without_its_cards_is_refused_as_changed(replay):
    replay.put("genesiscloud", "pricing.html", PAGE.replace("pricing-two-price-item", "pricing-card"))
    with pytest.raises(PayloadError, match=r"genesiscloud: malformed payload: no 'div.pricing-two-price-item' on the page"):
        hook(replay).fetch_batch()
