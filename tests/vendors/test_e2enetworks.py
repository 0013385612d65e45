"""E2E Networks price page: per-GPU hourly on demand, monthly and annual terms as reserved offers, ₹ via fx."""

from decimal import Decimal

import pytest

from gpubroker.fx import TO_USD
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.e2enetworks import E2eNetworksHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "e2enetworks" / "pricing.html").read_text()
RTX_PRO = ("rtx-pro-6000-96gb", "rtx-pro-6000-96gb@reserved-1mo", "rtx-pro-6000-96gb@reserved-12mo")


def hook(replay):
    return E2eNetworksHook(base_url=replay.vendor_url("e2enetworks"))


def test_each_gpu_row_is_an_hourly_offer_and_two_committed_terms(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, len(offers), len(batch.offers)) == (10, 30, 30)  # the CPU table is not read
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus and not batch.memory_mismatches

    b200 = offers["b200-180gb"]
    assert (b200.gpu_model, b200.gpu_count, b200.gpu_memory_gb, b200.instance_type) == ("B200", 1, 180.0, "B200 180GB")
    assert (b200.price_per_hour, b200.pricing_type, b200.commitment_months) == (Decimal("6.99"), "on_demand", None)
    assert (b200.vcpus, b200.ram_gb, b200.region, b200.country, b200.continent) == (30, 200.0, "india", "IN", "AS")
    month, year = offers["b200-180gb@reserved-1mo"], offers["b200-180gb@reserved-12mo"]
    assert (month.pricing_type, month.commitment_months, month.price_per_hour) == ("reserved", 1, Decimal("6.0000"))  # $4,380/730
    assert (year.pricing_type, year.commitment_months, year.price_per_hour) == ("reserved", 12, Decimal("5.2500"))  # $45,990/8760

    a100, small = offers["a100-80gb"], offers["a100-40gb"]  # two "A100" rows, told apart by their vRAM
    assert (a100.gpu_model, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 80.0, "2.8000")
    assert (small.gpu_model, small.gpu_memory_gb, str(small.price_per_hour)) == ("A100", 40.0, "1.9900")
    assert str(offers["a100-40gb@reserved-12mo"].price_per_hour) == "1.4000"  # $12,264 / 8760 h
    pro = offers["rtx-pro-6000-96gb"]
    assert (pro.gpu_model, pro.gpu_memory_gb, str(pro.price_per_hour)) == ("RTXPRO6000", 96.0, "1.8900")
    assert str(offers["h200-141gb@reserved-1mo"].price_per_hour) == "2.8000"  # $2,044 / 730 h
    assert all((o.availability, o.interconnect, o.spot_price) == ("unknown", None, None) for o in offers.values())


def test_rupee_prices_convert_at_the_dated_inr_rate(replay):
    replay.put("e2enetworks", "pricing.html", PAGE.replace("$6.99", "₹671").replace("$4,380", "₹3,50,400"))
    offers = by_id(hook(replay).fetch_batch())
    assert offers["b200-180gb"].price_per_hour == (671 * TO_USD["INR"]).quantize(Decimal("0.0001"))
    assert str(offers["b200-180gb"].price_per_hour) == "7.5823"  # ₹671 x 0.0113
    assert str(offers["b200-180gb@reserved-1mo"].price_per_hour) == "5.4240"  # ₹3,50,400 x 0.0113 / 730 h
    assert str(offers["b200-180gb@reserved-12mo"].price_per_hour) == "5.2500"  # still $45,990


def test_unpriced_terms_are_left_out_and_an_unpriced_row_skipped(replay):
    whole = hook(replay).fetch_batch()
    replay.put("e2enetworks", "pricing.html", PAGE.replace("$1,241", "—").replace("$13,140", "Contact Sales"))
    terms_gone = hook(replay).fetch_batch()
    assert not terms_gone.dropped and not terms_gone.skipped
    assert lost(whole, terms_gone) == set(RTX_PRO[1:])  # the hourly price still lands
    replay.put("e2enetworks", "pricing.html",
               PAGE.replace("$1.89", "Contact Sales").replace("$1,241", "—").replace("$13,140", "—"))  # fmt: skip
    row_gone = hook(replay).fetch_batch()
    assert row_gone.skipped == {"contact sales: no public price": 1} and lost(whole, row_gone) == set(RTX_PRO)


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (('<td class="font-medium">A100</td><td>80</td>', '<td class="font-medium">A100</td><td>80 GB</td>'),
         "vRAM '80 GB' is not a whole number", {"a100-80gb", "a100-80gb@reserved-1mo", "a100-80gb@reserved-12mo"}),
        (("$6.99", "6.99"), "no price in '6.99'", {"b200-180gb", "b200-180gb@reserved-1mo", "b200-180gb@reserved-12mo"}),
        (('<td class="font-medium">L4</td><td>24</td><td>25</td>', '<td class="font-medium">L4</td><td>24</td><td>-</td>'),
         "vCPUs '-' is not a whole number", {"l4-24gb", "l4-24gb@reserved-1mo", "l4-24gb@reserved-12mo"}),
    ],
    ids=["vram", "price-without-currency", "vcpus"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("e2enetworks", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


def test_an_unknown_gpu_is_counted_not_guessed(replay):
    replay.put("e2enetworks", "pricing.html", PAGE.replace(">A30<", ">X30<"))
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"X30": 1} and not batch.dropped and len(batch.offers) == 27


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("Prices are per GPU-hour.", "Prices shown for the selected machine."),
         "the GPU table no longer says 'Prices are per GPU-hour': its prices may be per machine"),
        (("<th>Monthly</th>", "<th>1 Month</th>"), "'#gpu-pricing table' has no column 'Monthly'"),
        (('id="gpu-pricing"', 'id="gpus"'), "no rows in '#gpu-pricing table'"),
    ],
    ids=["per-gpu-footnote", "column", "table"],
)
def test_a_changed_page_is_refused(replay, edit, message):
    replay.put("e2enetworks", "pricing.html", PAGE.replace(*edit))
    with pytest.raises(PayloadError, match=f"e2enetworks: malformed payload: {message}"):
        hook(replay).fetch_batch()
