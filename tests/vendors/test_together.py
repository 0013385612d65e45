"""Together AI price page: GPU Clusters per GPU-hour, on demand and four reserved terms; look-alikes not read."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.together import TogetherHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "together" / "pricing.html").read_text()
SPANNING = '<td colspan="4"><div class="pricing_cell"><p class="text-size-small">'
H100 = {"hgx-h100", *(f"hgx-h100@reserved-{t}" for t in ("7-30d", "31-90d", "91-180d", "181d-plus"))}


def hook(replay):
    return TogetherHook(base_url=replay.vendor_url("together"))


def test_each_priced_row_is_one_gpu_on_demand_and_per_reserved_term(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert (batch.items, len(offers), len(batch.offers)) == (6, 15, 15)  # hidden copy and inference row not read
    assert batch.skipped == {"contact sales: no public price": 3}  # HGX B300, GB200 / GB300 NVL72
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h100 = offers["hgx-h100"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 1, 80.0)
    assert (h100.price_per_hour, h100.pricing_type, h100.commitment_months) == (Decimal("3.99"), "on_demand", None)
    assert (h100.instance_type, h100.region, h100.country, h100.interconnect) == ("HGX H100", "unknown", None, None)
    terms = [(offers[f"hgx-h100@reserved-{t}"].price_per_hour, offers[f"hgx-h100@reserved-{t}"].commitment_months)
             for t in ("7-30d", "31-90d", "91-180d", "181d-plus")]  # fmt: skip
    assert terms == [(Decimal("3.75"), 1), (Decimal("3.45"), 1), (Decimal("3.15"), 3), (Decimal("2.85"), 6)]  # " $3.45"
    assert all(offers[i].pricing_type == "reserved" for i in H100 - {"hgx-h100"})

    h200, b200 = offers["hgx-h200"], offers["hgx-b200@reserved-181d-plus"]
    assert (h200.gpu_model, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 141.0, "4.4900")
    assert (b200.gpu_model, b200.gpu_form_factor, b200.gpu_memory_gb) == ("B200", "SXM", 180.0)
    assert (str(b200.price_per_hour), b200.commitment_months) == ("4.8500", 6)
    assert str(offers["hgx-b200"].price_per_hour) == "5.9900"  # not the Dedicated Inference row's $8.99


def test_a_priced_contact_us_row_lands_with_its_on_demand_price(replay):
    on_demand = 'NVIDIA GB200 NVL72</p></div></td><td class="is-right-border"><div class="pricing_cell"><p class="text-size-small">'
    replay.put("together", "pricing.html", PAGE.replace(on_demand + "—", on_demand + "$7.50"))
    gb200 = by_id(hook(replay).fetch_batch())["gb200-nvl72"]  # NVL72 names the rack: no form factor
    assert (gb200.gpu_model, gb200.gpu_form_factor, gb200.gpu_memory_gb) == ("GB200", None, 186.0)
    assert (str(gb200.price_per_hour), gb200.instance_type) == ("7.5000", "GB200 NVL72")


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$3.15", "€3.15"), "not a $ price: '€3.15'", H100),
        (("$3.75", "TBD 2027"), "not a $ price: 'TBD 2027'", H100),
        ((SPANNING + "Contact us", SPANNING + "$6.50"), "a price spanning 4 reserved terms", set()),  # HGX B300: none before
    ],
    ids=["currency", "words", "price-over-every-term"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("together", "pricing.html", PAGE.replace(*edit, 1))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("All prices are per GPU per hour", "All prices are per node per hour"),
         "the GPU Clusters table no longer says 'All prices are per GPU per hour'"),
        (('id="gpu-clusters"', 'id="clusters"'), "no '#gpu-clusters ~ \\* tr"),
        (("is-right-border", "is-bordered"), "no '#gpu-clusters ~ \\* tr"),
    ],
    ids=["per-gpu-caption", "anchor", "on-demand-cell"],
)
def test_a_changed_page_is_refused(replay, edit, message):
    replay.put("together", "pricing.html", PAGE.replace(*edit))
    with pytest.raises(PayloadError, match=f"together: malformed payload: {message}"):
        hook(replay).fetch_batch()
