"""CoreWeave price page: per-node (instance) prices as shown, specs from the row, instance ids, "Contact Sales" rows."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.coreweave import CoreWeaveHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "coreweave" / "pricing.html").read_text()


def hook(replay):
    return CoreWeaveHook(base_url=replay.vendor_url("coreweave"))


def test_hgx_nodes_are_priced_per_node(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == 9  # 10 rows, HGX B300 is "Contact Sales"
    assert (batch.items, batch.skipped) == (10, {"contact sales: no public price": 1})
    assert "b300-8x@US" not in offers
    assert batch.unknown_gpus == {} and not batch.dropped and not batch.memory_mismatches

    h100 = offers["gd-8xh100ib-i128@US"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert h100.price_per_hour == Decimal("49.2400")  # the whole 8-GPU node, not x8
    assert h100.price_per_hour / h100.gpu_count == Decimal("6.155")  # per GPU-hour, derived
    assert (h100.vcpus, h100.ram_gb) == (128, 2048.0)  # "2,048"
    assert (h100.instance_type, h100.region, h100.country, h100.continent) == (
        "gd-8xh100ib-i128", "US (North America general access)", "US", "NA")

    assert offers["gd-8xh200ib-i128@US"].price_per_hour == Decimal("50.4400")
    b200 = offers["b200-8x@US"]
    assert (b200.gpu_model, b200.gpu_form_factor, b200.gpu_memory_gb) == ("B200", "SXM", 180.0)
    assert b200.price_per_hour == Decimal("68.8000")
    gb200 = offers["gb200-4x@US"]  # GPU count "4<sup>1</sup>": the count, not its footnote mark
    assert (gb200.gpu_model, gb200.gpu_form_factor, gb200.gpu_count, gb200.gpu_memory_gb) == ("GB200", None, 4, 186.0)
    assert (gb200.price_per_hour, gb200.vcpus, gb200.ram_gb) == (Decimal("42.0000"), 144, 960.0)
    gh200 = offers["gd-1xgh200@US"]
    assert (gh200.gpu_model, gh200.gpu_count, gh200.gpu_memory_gb) == ("GH200", 1, 96.0)
    assert gh200.price_per_hour == Decimal("6.5000")
    a100 = offers["gd-8xa100-i128@US"]
    assert (a100.gpu_model, a100.gpu_form_factor, str(a100.price_per_hour)) == ("A100", "SXM", "21.6000")
    l40s = offers["gd-8xl40s-i128@US"]
    assert (l40s.gpu_model, l40s.gpu_form_factor, str(l40s.price_per_hour)) == ("L40S", None, "18.0000")
    pro = offers["rtxp6000-8x@US"]
    # "NVIDIA RTX PRO 6000 Blackwell Server Edition", as CoreWeave writes it; "—" vCPUs and RAM
    assert (pro.gpu_model, pro.gpu_memory_gb, pro.vcpus, pro.ram_gb) == ("RTXPRO6000", 96.0, None, None)
    assert (pro.gpu_count, pro.gpu_form_factor, str(pro.price_per_hour)) == (8, None, "20.0000")
    assert {o.availability for o in batch.offers} == {"unknown"}


def test_a_priced_contact_sales_row_becomes_an_offer(replay):
    replay.put("coreweave", "pricing.html", PAGE.replace('<a href="/contact" class="table-link">Contact Sales</a>', "$86.00"))
    b300 = by_id(hook(replay).fetch_batch())["b300-8x@US"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 288.0)
    assert (b300.price_per_hour, b300.vcpus, b300.ram_gb) == (Decimal("86.0000"), None, None)


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$49.24", "TBD"), "no price in 'TBD'", "gd-8xh100ib-i128@US"),
        ((">NVIDIA L40</h3>", ">NVIDIA L40 Ada</h3>"),
         "no instance id known for 'NVIDIA L40 Ada' (add it from CoreWeave's docs)", "gd-8xl40-i128@US"),
        (("<div>1</div>", "<div>one</div>"), "no GPU count in 'one'", "gd-1xgh200@US"),
        (("<div>186</div>", "<div></div>"), "no VRAM in ''", "gb200-4x@US"),
    ],
    ids=["price-gone", "new-gpu-name", "gpu-count-not-a-number", "vram-gone"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("coreweave", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_page_without_its_gpu_rows_is_refused_as_changed(replay):
    replay.put("coreweave", "pricing.html", PAGE.replace("table-row-v2 w-dyn-item kubernetes-gpu-pricing", "table-row"))
    with pytest.raises(PayloadError, match=r"coreweave: malformed payload: no 'div.table-row-v2.kubernetes-gpu-pricing' on the page"):
        hook(replay).fetch_batch()
