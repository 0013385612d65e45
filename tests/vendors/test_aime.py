"""AIME GPU cloud page: German-format EUR per hour of the half-yearly plan, whole servers, Berlin."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.aime import AimeHook, german_number
from gpubroker_provider.hooks.base import PayloadError
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "aime" / "gpucloud.html").read_text()


def hook(replay):
    return AimeHook(base_url=replay.vendor_url("aime"))


def test_cards_become_half_yearly_server_offers_in_usd(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"product-cloud-basic1", "product-cloud-pro1", "product-cloud-pro4",
                           "product-cloud-enterprise4", "product-cloud-enterprise1"}  # fmt: skip
    assert (batch.items, batch.skipped) == (6, {"price on request": 1})  # the 8x H200 NVL server
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    h200 = offers["product-cloud-enterprise1"]
    assert (h200.gpu_model, h200.gpu_form_factor, h200.gpu_count, h200.gpu_memory_gb) == ("H200", "NVL", 1, 141.0)
    assert h200.price_per_hour == Decimal("3.3408")  # "2,88 € per hour" x 1.16
    assert (h200.pricing_type, h200.commitment_months) == ("reserved", 6)  # the half-yearly plan
    assert (h200.vcpus, h200.ram_gb, h200.disk_gb) == (30, 192.0, 4000.0)
    assert (h200.region, h200.country, h200.continent, h200.instance_type) == ("berlin", "DE", "EU", "1x NVIDIA H200 NVL 141GB")

    a100 = offers["product-cloud-enterprise4"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 4, 80.0, "6.3568")
    assert (a100.vcpus, a100.ram_gb, a100.disk_gb) == (60, 480.0, 4000.0)
    assert (offers["product-cloud-pro4"].gpu_model, str(offers["product-cloud-pro4"].price_per_hour)) == ("RTXA6000", "3.0160")
    assert (offers["product-cloud-pro1"].gpu_model, str(offers["product-cloud-pro1"].price_per_hour)) == ("RTX6000ADA", "1.1368")
    assert (offers["product-cloud-basic1"].gpu_model, str(offers["product-cloud-basic1"].price_per_hour)) == ("RTXA5000", "0.4872")


@pytest.mark.parametrize(("written", "value"), [("2,88", "2.88"), ("1.899,00", "1899.00"), ("0,42", "0.42")])
def test_german_prices_are_read_as_written(written, value):
    assert german_number(written) == Decimal(value)


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("corresponds to 2,88 €", "corresponds to 2.88 €"), "price '2.88' is not written as AIME writes prices (1.899,00)",
         "product-cloud-enterprise1"),
        (("(half-yearly plan)</small><br><span class=\"u-pricing-v2-hourly\">corresponds to 0,98",
          "(weekly plan)</small><br><span class=\"u-pricing-v2-hourly\">corresponds to 0,98"),
         "no plan term in '719,00 € per month (weekly plan) corresponds to 0,98 € per hour'", "product-cloud-pro1"),
        (("<li>60 vCores (Epyc Milan)</li>", "<li>60 cores (Epyc Milan)</li>"),
         "no vCores in '60 cores (Epyc Milan) 480 GB ECC 4 TB NVMe SSD'", "product-cloud-enterprise4"),
        (("1x NVIDIA RTX A5000 24GB</h3>", "NVIDIA RTX A5000 24GB</h3>"), "no GPU count in 'NVIDIA RTX A5000 24GB'",
         "product-cloud-basic1"),
    ],
    ids=["english-decimal-point", "unknown-plan", "vcores-gone", "count-gone"],
)
def test_a_broken_card_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert PAGE.count(edit[0]) == 1
    replay.put("aime", "gpucloud.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_page_without_its_cards_is_refused_as_changed(replay):
    replay.put("aime", "gpucloud.html", PAGE.replace("u-pricing-v2", "u-pricing-v3"))
    with pytest.raises(PayloadError, match=r"aime: malformed payload: no 'div.u-pricing-v2' on the page"):
        hook(replay).fetch_batch()
