"""JarvisLabs price page: per-GPU prices and allocations converted to whole-instance offers per GPU count and region."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.jarvislabs import GPU_TYPES, JarvisLabsHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "jarvislabs" / "pricing.html").read_text()


def hook(replay):
    return JarvisLabsHook(base_url=replay.vendor_url("jarvislabs"))


def test_per_gpu_prices_become_whole_instance_prices(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == sum(len(t.gpu_counts) * len(t.regions) for t in GPU_TYPES.values()) == 26
    assert (batch.items, batch.unknown_gpus, batch.dropped, batch.skipped) == (7, {}, {}, {})
    assert not batch.memory_mismatches

    h100 = offers["8x H100 SXM@EU1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("21.5200")  # 8 x $2.69 per GPU-hour
    assert (h100.vcpus, h100.ram_gb) == (128, 1600.0)  # 8 x (16 vCPU, 200 GB)
    assert (h100.instance_type, h100.country, h100.continent) == ("8x H100 SXM", "FI", "EU")

    one = offers["1x H100 SXM@IN1"]
    assert (str(one.price_per_hour), one.country, one.continent) == ("2.6900", "IN", "AS")

    h200 = offers["8x H200 SXM@EU1"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 141.0, "31.9200")

    # the 40 GB and 80 GB A100 are different offers at different prices
    assert offers["1x A100 40GB@IN1"].price_per_hour == Decimal("0.8900")
    assert offers["1x A100 80GB@IN1"].price_per_hour == Decimal("1.4900")
    assert offers["4x A100 80GB@IN1"].price_per_hour == Decimal("5.9600")
    assert offers["1x A100 40GB@IN1"].gpu_memory_gb == 40.0

    pro = offers["2x RTX Pro 6000 Blackwell@IN1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96.0, "3.7800")
    l4 = offers["8x L4@IN1"]
    assert (l4.gpu_model, l4.vcpus, l4.ram_gb, str(l4.price_per_hour)) == ("L4", 256, 992.0, "3.5200")
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_an_nvidia_prefix_on_the_page_keeps_the_offer_ids(replay):
    whole = hook(replay).fetch_batch()
    replay.put("jarvislabs", "pricing.html", PAGE.replace('<td class="font-medium">', '<td class="font-medium">NVIDIA '))
    assert [o.offer_id for o in hook(replay).fetch_batch().offers] == [o.offer_id for o in whole.offers]


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$2.69", "Sold out"), "no price in 'Sold out /hr'", 4),
        ((">A30<", ">A40<"), "no GPU counts or regions known for 'A40' (add them from JarvisLabs' launch form)", 4),
        ((">141GB<", ">141<"), "no size in GB in '141'", 2),
        ((">32<", ">32 vCPU<"), "invalid literal for int() with base 10: '32 vCPU'", 4),
    ],
    ids=["price-gone", "new-gpu-name", "vram-unit-gone", "vcpus-not-a-number"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("jarvislabs", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == gone


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("<th>Price ($/hr)</th>", "<th>Price ($/mo)</th>"), r"'#gpu-pricing table' has no column 'Price \(\$/hr\)'"),
        (('<section id="gpu-pricing">', '<section id="pricing">'), r"no rows in '#gpu-pricing table'"),
    ],
    ids=["price-column-renamed", "table-moved"],
)
def test_a_page_without_its_table_is_refused_as_changed(replay, edit, message):
    replay.put("jarvislabs", "pricing.html", PAGE.replace(*edit))
    with pytest.raises(PayloadError, match=f"jarvislabs: malformed payload: {message}"):
        hook(replay).fetch_batch()
