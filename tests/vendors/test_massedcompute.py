"""Massed Compute price page: the virtual machine table, whole-VM prices, "[NVLink]" pairs, "Request" rows."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.massedcompute import MassedComputeHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "massedcompute" / "pricing.html").read_text()


def hook(replay):
    return MassedComputeHook(base_url=replay.vendor_url("massedcompute"))


def test_each_priced_row_of_the_vm_table_is_one_offer(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"h100-sxm5-x1", "h100-sxm5-x8", "h100-nvl-x1", "a100-sxm4-x1", "l40s-x1", "rtx-a6000-x1",
                           "rtx-a6000-x4", "rtx-a6000-nvlink-x2", "rtx-6000-ada-x1"}  # fmt: skip
    assert (batch.items, batch.skipped) == (10, {"contact sales: no public price": 1})  # the bare-metal table is not read
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers["h100-sxm5-x8"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("23.8400")  # the whole VM, as the page prices it
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb, h100.instance_type) == (208, 1500.0, 6400.0, "H100 SXM5 x8")
    assert (h100.region, h100.country, h100.availability, h100.interconnect) == ("us", "US", "unknown", None)

    nvl = offers["h100-nvl-x1"]
    assert (nvl.gpu_form_factor, nvl.gpu_memory_gb, str(nvl.price_per_hour)) == ("NVL", 94.0, "2.4900")
    ada = offers["rtx-6000-ada-x1"]
    assert (ada.gpu_model, ada.vcpus, ada.ram_gb, str(ada.price_per_hour)) == ("RTX6000ADA", 10, 64.0, "0.9700")
    assert str(offers["rtx-a6000-x4"].price_per_hour) == "2.4800"


def test_nvlink_pairs_keep_their_card_and_say_their_fabric(replay):
    offers = by_id(hook(replay).fetch_batch())
    pair = offers["rtx-a6000-nvlink-x2"]
    assert (pair.gpu_model, pair.gpu_form_factor, pair.gpu_count, pair.interconnect) == ("RTXA6000", None, 2, "nvlink")
    assert (pair.instance_type, str(pair.price_per_hour)) == ("RTX A6000 [NVLink] x2", "1.3100")
    assert offers["rtx-a6000-x1"].interconnect is None


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("<td>x 4</td>", "<td>four</td>"), "no GPU quantity in 'four'", "rtx-a6000-x4"),
        (('<span class="price">$1.05</span>', '<span class="price">soon</span>'), "no price in 'soon /hr'", "l40s-x1"),
        (("<td>12</td><td>96 GB</td>", "<td>12</td><td>96</td>"), "no size in GB in '96'", "a100-sxm4-x1"),
    ],
    ids=["quantity", "price", "ram"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert PAGE.count(edit[0]) == 1
    replay.put("massedcompute", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_renamed_column_or_a_missing_table_is_a_changed_page(replay):
    replay.put("massedcompute", "pricing.html", PAGE.replace("<th>Price</th>", "<th>Price / hour</th>"))
    with pytest.raises(PayloadError, match=r"massedcompute: malformed payload: .* has no column 'Price'"):
        hook(replay).fetch_batch()
    replay.put("massedcompute", "pricing.html", PAGE.replace('id="virtual-machines"', 'id="vms"'))
    with pytest.raises(PayloadError, match=r"massedcompute: malformed payload: no rows in '#virtual-machines"):
        hook(replay).fetch_batch()
