"""Crusoe price page: per-GPU prices x VM GPU count, spot prices, fabrics from tags, "Contact sales" cards."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.crusoe import CrusoeHook
from tests.conftest import REPLAY_KEY, RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "crusoe" / "pricing.html").read_text()


def hook(replay):
    return CrusoeHook(base_url=replay.vendor_url("crusoe"), api_key=REPLAY_KEY)


def test_cards_map_to_whole_vm_prices_per_region(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert len(offers) == len(batch.offers) == 22  # 6 priced cards: sizes x regions (VM_TYPES)
    assert (batch.items, batch.skipped) == (8, {"contact sales: no public price": 2})
    assert batch.unknown_gpus == {} and not batch.dropped and not batch.memory_mismatches

    h100 = offers["h100-80gb-sxm-ib.8x@eu-iceland1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80.0)
    assert (h100.price_per_hour, h100.spot_price) == (Decimal("31.2000"), Decimal("12.8000"))  # 8 x $3.90, 8 x $1.60
    assert (h100.country, h100.continent, h100.interconnect) == ("IS", "EU", "infiniband")
    assert (h100.vcpus, h100.ram_gb, h100.availability) == (None, None, "unknown")  # not published

    h200 = offers["h200-141gb-sxm-ib.8x@us-east1"]
    assert (h200.gpu_model, str(h200.price_per_hour), h200.spot_price, h200.country) == ("H200", "34.3200", None, "US")
    l40s = offers["l40s-48gb.10x@us-northcentral1"]
    assert (l40s.gpu_model, l40s.gpu_count, str(l40s.price_per_hour), l40s.interconnect) == ("L40S", 10, "15.0000", "pcie")
    pcie = offers["a100-80gb.1x@us-northcentral1"]
    assert (pcie.gpu_model, pcie.gpu_form_factor, str(pcie.price_per_hour)) == ("A100", "PCIe", "2.0000")
    sxm = offers["a100-80gb-sxm-ib.8x@us-northcentral1"]
    assert (sxm.gpu_form_factor, str(sxm.price_per_hour), str(sxm.spot_price)) == ("SXM", "18.4000", "10.4000")
    mi = offers["mi300x-192gb-ib.8x@us-northcentral1"]
    assert (mi.gpu_model, mi.gpu_vendor, mi.gpu_memory_gb, mi.price_per_hour) == ("MI300X", "AMD", 192.0, Decimal("27.6000"))
    assert not any(o.gpu_model in ("B200", "GB200") for o in batch.offers)  # "Contact sales": no price, no offer


def test_a_priced_contact_sales_card_resolves_its_name(replay):
    """GB200 NVL72 (NVL72 is the rack, no form factor) and B200 HGX (SXM), once they carry a price."""
    replay.put("crusoe", "pricing.html", PAGE.replace("<p>Contact sales</p>", "<p><strong>$6.00</strong>/GPU-hr on-demand</p>"))
    offers = by_id(hook(replay).fetch_batch())
    gb200 = offers["gb200-186gb-nvl-ib.4x@us-southcentral1"]
    assert (gb200.gpu_model, gb200.gpu_form_factor, gb200.gpu_count, gb200.gpu_memory_gb) == ("GB200", None, 4, 186.0)
    assert gb200.price_per_hour == Decimal("24.0000")
    b200 = offers["b200-180gb-sxm-ib.8x@us-southcentral1"]
    assert (b200.gpu_model, b200.gpu_form_factor, str(b200.price_per_hour)) == ("B200", "SXM", "48.0000")


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("<strong>$1.50</strong>/GPU-hr on-demand", "Call us"), "no on-demand price in 'Call us'", 10),
        (("NVIDIA A100 PCIe", "NVIDIA A100 PCIe 2.0"), "no VM type known for 'NVIDIA A100 PCIe 2.0' (add it from Crusoe's docs)", 4),
        (("<div class=\"pricing-tag\">192GB</div>", ""), "no size in GB in 'Infinity Fabric InfiniBand'", 1),
    ],
    ids=["price-gone", "new-gpu-name", "memory-tag-gone"],
)
def test_a_broken_card_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("crusoe", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert len(lost(whole, broken)) == gone


def test_a_page_without_its_cards_is_refused_as_changed(replay):
    replay.put("crusoe", "pricing.html", PAGE.replace("pricing_gpu-item", "pricing_card"))
    with pytest.raises(PayloadError, match=r"crusoe: malformed payload: no 'div.pricing_gpu-item' on the page"):
        hook(replay).fetch_batch()
