"""Nebius price page: per-GPU prices x preset GPUs, per-GPU shares x GPUs, GiB -> GB, the table found by its headings."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.nebius import NebiusHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "nebius" / "prices.html").read_text()
BODY = '<div class="pc-highlight-table-block__body">'


def hook(replay):
    return NebiusHook(base_url=replay.vendor_url("nebius"))


def test_items_map_to_whole_vm_prices_per_preset_and_region(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == 16
    assert (batch.items, batch.skipped) == (8, {"contact sales: no public price": 1})  # GB200 NVL72: "Contact us"
    assert batch.unknown_gpus == {} and not batch.dropped and not batch.memory_mismatches

    h100 = offers["gpu-h100-sxm/8gpu-128vcpu-1600gb@eu-north1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("36.0000")  # 8 x $4.50 per GPU-hour
    assert (h100.vcpus, h100.ram_gb) == (128, 1718.0)  # 8 x (16 vCPUs, 200 GiB)
    assert (h100.region, h100.country, h100.continent) == ("eu-north1", "FI", "EU")

    h200 = offers["gpu-h200-sxm/1gpu-16vcpu-200gb@us-central1"]
    assert (str(h200.price_per_hour), h200.ram_gb, h200.country, h200.continent) == ("5.4000", 214.7, "US", "NA")
    assert offers["gpu-h200-sxm/8gpu-128vcpu-1600gb@eu-north2"].country == "IS"
    assert offers["gpu-h200-sxm/8gpu-128vcpu-1600gb@eu-west1"].country == "FR"

    b300 = offers["gpu-b300-sxm/8gpu-192vcpu-2768gb@uk-south1"]  # "NVIDIA HGX B300"
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288.0)
    assert b300.price_per_hour == Decimal("76.0000")  # 8 x $9.50 per GPU-hour
    assert (b300.vcpus, b300.ram_gb, b300.country, b300.continent) == (192, 2972.1, "GB", "EU")  # 2768 GiB

    b200 = offers["gpu-b200-sxm/8gpu-160vcpu-1792gb@us-central1"]
    assert (b200.gpu_model, b200.gpu_memory_gb, str(b200.price_per_hour)) == ("B200", 180.0, "68.0000")

    l40s = offers["gpu-l40s-a/1gpu-8vcpu-32gb@eu-north1"]  # "from $1.55", host CPU not part of the GPU name
    assert (l40s.gpu_model, l40s.gpu_form_factor, l40s.ram_gb) == ("L40S", "PCIe", 34.4)  # 32 GiB
    assert l40s.price_per_hour == Decimal("1.5500")
    assert str(offers["gpu-l40s-d/1gpu-16vcpu-96gb@eu-north1"].price_per_hour) == "1.8200"
    pro = offers["gpu-rtx-pro-6000/1gpu-24vcpu-218gb@eu-north1"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96.0, "1.8000")
    assert pro.gpu_form_factor is None  # "... Blackwell Server Edition" names no form factor
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_another_table_on_the_page_is_not_read(replay):
    storage = ('<div class="pc-highlight-table-block"><div class="pc-highlight-table-block__head"><div class="pc-highlight-table-block__row">'
               '<div class="pc-highlight-table-block__cell"><p>Item</p></div><div class="pc-highlight-table-block__cell"><p>Price per GiB</p></div>'
               f'</div></div>{BODY}<div class="pc-highlight-table-block__row"><div class="pc-highlight-table-block__cell"><p>Network SSD</p></div>'
               '<div class="pc-highlight-table-block__cell"><p>$0.071</p></div></div></div></div>')
    replay.put("nebius", "prices.html", PAGE.replace("</div></div>\n</div></div></div>\n</body>", f"</div></div>\n{storage}</div></div></div>\n</body>"))
    batch = hook(replay).fetch_batch()
    assert (batch.items, len(batch.offers), batch.dropped) == (8, 16, {})


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("<p>$4.50</p>", "<p>on request</p>"), "no price in 'on request'", 2),
        (("NVIDIA HGX B200", "NVIDIA HGX B200A"), "no platform known for 'NVIDIA HGX B200A' (add it from Nebius's docs)", 2),
        (("<p>218</p>", "<p>218 GiB</p>"), "invalid literal for int() with base 10: '218 GiB'", 1),
    ],
    ids=["price-gone", "new-gpu-name", "ram-not-a-number"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("nebius", "prices.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == gone


@pytest.mark.parametrize(
    "edit",
    [
        ("<p>On-demand, GPU-hour</p></div></div>",
         '<p>On-demand, GPU-hour</p></div></div><div class="pc-highlight-table-block__cell"><p>Reserved, GPU-hour</p></div>'),
        ("<p>vCPUs</p>", "<p>CPU</p>"),
        ("pc-highlight-table-block__row", "pc-table-row"),
    ],
    ids=["column-added-after-on-demand", "column-renamed", "rows-renamed"],
)
def test_a_page_whose_gpu_table_changed_is_refused(replay, edit):
    replay.put("nebius", "prices.html", PAGE.replace(*edit))
    with pytest.raises(PayloadError, match=r"nebius: malformed payload: no 'div.pc-highlight-table-block:has\(.* on the page"):
        hook(replay).fetch_batch()
