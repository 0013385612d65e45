"""Azure hook (Retail Prices API) against recorded pages served over HTTP."""

import copy
from datetime import datetime, timezone

import pytest

from gpubroker_provider.hooks.azure import AzureHook
from gpubroker_provider.hooks.base import PayloadError
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording


def hook(replay, **kwargs) -> AzureHook:
    return AzureHook(base_url=replay.vendor_url("azure"), api_key=None, **kwargs)


def test_next_page_link_is_followed_and_every_region_read(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 4  # eastus (2 pages) + westeurope + swedencentral
    assert sorted(by_id(batch)) == sorted([
        "Standard_NC24ads_A100_v4:eastus", "Standard_ND96isr_H100_v5:eastus", "Standard_NC4as_T4_v3:eastus",
        "Standard_NV36ads_A10_v5:eastus", "Standard_NC40ads_H100_v5:eastus",  # these three: page 2
        "Standard_NV32as_v4:eastus",
        "Standard_NC24ads_A100_v4:westeurope", "Standard_NC64as_T4_v3:westeurope",
        "Standard_ND96isr_H100_v5:swedencentral", "Standard_NC40ads_H100_v5:swedencentral",
    ])
    # NVv3 (Tesla M60): an N-series size nobody can name is counted, not guessed, and never an offer
    assert batch.unknown_gpus == {"Azure Standard_NV12s_v3": 1}
    assert "Standard_NV12s_v3:westeurope" not in by_id(batch)


def test_linux_on_demand_price_spot_meter_and_specs(replay):
    offers = by_id(hook(replay).fetch_batch())
    a100 = offers["Standard_NC24ads_A100_v4:eastus"]
    assert str(a100.price_per_hour) == "3.6730"  # Linux meter, not Windows 3.857
    assert str(a100.spot_price) == "0.5143"  # the Spot meter, not Low Priority 0.7346
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_count, a100.gpu_memory_gb) == ("A100", "PCIe", 1, 80)
    assert (a100.vcpus, a100.ram_gb, a100.country, a100.continent) == (24, 220, "US", "NA")

    h100 = offers["Standard_ND96isr_H100_v5:eastus"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert str(h100.price_per_hour) == "98.3200" and str(h100.spot_price) == "32.7733"

    t4 = offers["Standard_NC4as_T4_v3:eastus"]
    assert str(t4.spot_price) == "0.0526"  # spot meter on page 2 pairs with on-demand on page 1
    assert offers["Standard_NV36ads_A10_v5:eastus"].spot_price is None  # its Spot meter is Windows
    nvl = offers["Standard_NC40ads_H100_v5:swedencentral"]
    assert (nvl.gpu_form_factor, nvl.gpu_memory_gb, nvl.spot_price) == ("NVL", 94, None)  # Low Priority ignored
    assert (nvl.country, nvl.continent) == ("SE", "EU")
    assert offers["Standard_NC64as_T4_v3:westeurope"].country == "NL"
    assert offers["Standard_NC64as_T4_v3:westeurope"].gpu_count == 4

    mi25 = offers["Standard_NV32as_v4:eastus"]  # NVv4: AMD Radeon Instinct MI25
    assert (mi25.gpu_model, mi25.gpu_form_factor, mi25.gpu_count, mi25.gpu_memory_gb) == ("MI25", None, 1, 16)
    assert (str(mi25.price_per_hour), mi25.spot_price, mi25.vcpus, mi25.ram_gb) == ("1.8160", None, 32, 112)


def test_zero_missing_and_fractional_rows_are_skipped(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert "Standard_NC96ads_A100_v4:eastus" not in offers  # retailPrice 0.0
    assert "Standard_NC40ads_H100_v5:westeurope" not in offers  # retailPrice missing
    assert "Standard_NV6ads_A10_v5:eastus" not in offers  # 1/6 of an A10
    assert all(o.price_per_hour > 0 for o in offers.values())


def test_regions_are_configurable(replay):
    batch = hook(replay, regions=["swedencentral"]).fetch_batch()
    assert batch.pages == 1 and {o.region for o in batch.offers} == {"swedencentral"}


def test_spot_above_on_demand_is_dropped(replay):
    body = copy.deepcopy(recording("azure", "swedencentral.json"))
    spot = copy.deepcopy(body["Items"][1])
    spot.update(skuName="NC40ads H100 v5 Spot", meterName="NC40ads H100 v5 Spot", retailPrice=9.5, unitPrice=9.5)
    body["Items"].append(spot)
    replay.put("azure", "swedencentral.json", body)
    assert by_id(hook(replay).fetch_batch())["Standard_NC40ads_H100_v5:swedencentral"].spot_price is None


def test_a_page_without_items_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("azure", "eastus-1.json"))
    body.pop("Items")
    replay.put("azure", "eastus-1.json", body)
    with pytest.raises(PayloadError, match="azure: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("index", "mutate", "reason", "lost_ids"),
    [
        (0, lambda item: item.pop("armSkuName"), "missing field 'armSkuName'", {"Standard_NC24ads_A100_v4:eastus"}),
        (0, lambda item: item.update(currencyCode="EUR"), "price in 'EUR', not USD", {"Standard_NC24ads_A100_v4:eastus"}),
        (2, lambda item: item.update(retailPrice="n/a"),
         "meter without a size, region, start date or positive numeric price", set()),  # the Spot meter
    ],
    ids=["missing-sku", "not-usd", "non-numeric-spot-price"],
)
def test_a_broken_meter_is_dropped_with_its_reason_and_the_rest_land(replay, index, mutate, reason, lost_ids):
    whole, broken = with_one_item_broken(
        replay, hook, "azure", "eastus-1.json", lambda body: mutate(body["Items"][index]))  # fmt: skip
    assert broken.dropped == {reason: 1}
    if lost_ids:  # its Spot meter stands alone: a Spot offer in its place
        spot = by_id(broken).pop("Standard_NC24ads_A100_v4:eastus@spot")
        assert (spot.pricing_type, str(spot.price_per_hour)) == ("spot", "0.5143")
        broken.offers.remove(spot)
        assert lost(whole, broken) == lost_ids
    else:  # only the Spot meter was lost: the on-demand offer stays, without its Spot price
        assert by_id(broken)["Standard_NC24ads_A100_v4:eastus"].spot_price is None


def test_savings_plan_prices_are_not_on_demand_prices(replay):
    replay.put("azure", "eastus-1.json", recording("azure", "variant-savings-plan.json"))
    offers = by_id(hook(replay).fetch_batch())
    assert str(offers["Standard_NC24ads_A100_v4:eastus"].price_per_hour) == "3.6730"


def test_other_price_types_and_windows_meters_are_skipped_by_reason(replay):
    replay.put("azure", "eastus-1.json", recording("azure", "variant-all-price-types.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped["not a Consumption or Reservation VM-hour meter (another service, price type or unit)"] == 6
    assert batch.skipped["Windows meter"] > 2 and not batch.dropped
    h100 = by_id(batch)["Standard_ND96isr_H100_v5:eastus"]
    assert (str(h100.price_per_hour), str(h100.spot_price)) == ("98.3200", "32.7733")


def test_reservation_meters_become_reserved_offers_priced_per_hour_of_their_term(replay):
    replay.put("azure", "eastus-1.json", recording("azure", "variant-all-price-types.json"))
    offers = by_id(hook(replay).fetch_batch())
    a100 = offers["Standard_NC24ads_A100_v4:eastus@reserved-12mo"]  # $19948.80 for 1 year / 8760 h
    assert (a100.pricing_type, a100.commitment_months, str(a100.price_per_hour), a100.spot_price) == (
        "reserved", 12, "2.2773", None)
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, a100.vcpus, a100.ram_gb) == ("A100", 1, 80, 24, 220)
    h100 = offers["Standard_ND96isr_H100_v5:eastus@reserved-12mo"]  # $533995.58 / 8760 h
    assert str(h100.price_per_hour) == "60.9584"
    h100_3y = offers["Standard_ND96isr_H100_v5:eastus@reserved-36mo"]  # $1156934.40 / 26280 h
    assert (h100_3y.commitment_months, str(h100_3y.price_per_hour), h100_3y.gpu_count) == (36, "44.0234", 8)
    on_demand = offers["Standard_ND96isr_H100_v5:eastus"]  # the on-demand offer keeps its id and price
    assert (on_demand.pricing_type, str(on_demand.price_per_hour)) == ("on_demand", "98.3200")
    assert not any(k.endswith("@reserved-12mo") and "Windows" in k for k in offers)


def test_a_spot_meter_without_an_on_demand_one_is_a_spot_offer(replay):
    body = copy.deepcopy(recording("azure", "swedencentral.json"))
    spot = copy.deepcopy(body["Items"][1])
    spot.update(armSkuName="Standard_NC80adis_H100_v5", skuName="NC80adis H100 v5 Spot",
                meterName="NC80adis H100 v5 Spot", retailPrice=4.4, unitPrice=4.4)  # fmt: skip
    body["Items"].append(spot)
    replay.put("azure", "swedencentral.json", body)
    offer = by_id(hook(replay).fetch_batch())["Standard_NC80adis_H100_v5:swedencentral@spot"]
    assert (offer.pricing_type, str(offer.price_per_hour), offer.spot_price, offer.gpu_count) == ("spot", "4.4000", None, 2)


def test_fractional_and_non_gpu_sizes_are_counted_as_skipped():
    batch = AzureHook().parse([recording("azure", "eastus-1.json")], datetime.now(timezone.utc))
    assert batch.skipped["a fraction of one GPU (fractional NV size)"] == 1  # Standard_NV6ads_A10_v5
