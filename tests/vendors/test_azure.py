"""Azure hook (Retail Prices API) against recorded pages served over HTTP."""

import copy

import pytest

from gpubroker_provider.hooks.azure import AzureHook
from gpubroker_provider.hooks.base import PayloadError
from tests.vendors import lost, with_one_item_broken
from tests.conftest import recording


def hook(replay, **kwargs) -> AzureHook:
    return AzureHook(base_url=replay.vendor_url("azure"), api_key=None, **kwargs)


def by_id(batch):
    return {o.offer_id: o for o in batch.offers}


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
    if lost_ids:
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
    assert batch.skipped["not a Consumption VM-hour meter (another service, price type or unit)"] == 12
    assert batch.skipped["Windows meter"] > 2 and not batch.dropped
    h100 = by_id(batch)["Standard_ND96isr_H100_v5:eastus"]
    assert (str(h100.price_per_hour), str(h100.spot_price)) == ("98.3200", "32.7733")
