"""FluidStack hook against the recorded /list_available_configurations answer, served over real HTTP."""

import copy

import httpx
import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.fluidstack import FluidStackHook, _location
from tests.vendors import lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording

PAYLOAD = "list_available_configurations.json"


def hook(replay, key=REPLAY_KEY) -> FluidStackHook:
    return FluidStackHook(base_url=replay.vendor_url("fluidstack"), api_key=key)


def offers(replay):
    batch = hook(replay).fetch_batch()
    return batch, {o.offer_id: o for o in batch.offers}


def test_key_travels_in_the_api_key_header_without_a_scheme(replay):
    assert FluidStackHook(api_key="k").auth_headers("k") == {"api-key": "k"}
    url = f"{replay.vendor_url('fluidstack')}/list_available_configurations"
    assert httpx.get(url, headers={"api-key": REPLAY_KEY}).status_code == 200
    denied = httpx.get(url, headers={"Authorization": f"Bearer {REPLAY_KEY}"})
    assert (denied.status_code, denied.json()) == (401, {"message": "Invalid API key"})


def test_one_offer_per_configuration_gpu_count_and_region(replay):
    batch, by_id = offers(replay)
    assert batch.pages == 1
    assert len(batch.offers) == 38
    # a GPU the registry does not know: counted once per configuration, no offers
    assert batch.unknown_gpus == {"RTX_3050_8GB": 1}
    assert not any("RTX_3050" in o.offer_id for o in batch.offers)

    h100 = by_id["H100_SXM5_80GBx8@TEXAS_USA"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert str(h100.price_per_hour) == "23.1200"  # "2.89" USD per GPU-hour x 8 GPUs
    assert h100.instance_type == "8x H100_SXM5_80GB"
    assert (h100.country, h100.continent, h100.availability) == ("US", "NA", Availability.AVAILABLE)
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb, h100.spot_price, h100.available_count) == (None,) * 5
    assert str(by_id["H100_SXM5_80GBx1@CANADA"].price_per_hour) == "2.8900"
    assert by_id["H100_SXM5_80GBx1@CANADA"].country == "CA"

    assert sorted(o.gpu_count for o in batch.offers if o.instance_type.endswith(" H100_PCIE_80GB")) == [1, 2, 4, 8]
    assert by_id["H100_PCIE_80GBx4@NORWAY"].gpu_form_factor == "PCIe"
    assert str(by_id["H100_PCIE_80GBx4@NORWAY"].price_per_hour) == "9.1600"

    # FluidStack's NVLink (HGX) parts are SXM modules
    nvlink = by_id["H100_NVLINK_80GBx8@JAPAN"]
    assert (nvlink.gpu_model, nvlink.gpu_form_factor, nvlink.gpu_count, nvlink.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert (str(nvlink.price_per_hour), nvlink.country) == ("23.9200", "JP")  # "2.99" x 8
    assert nvlink.instance_type == "8x H100_NVLINK_80GB"
    a100_nvlink = by_id["A100_NVLINK_80GBx8@ARIZONA_USA"]
    assert (a100_nvlink.gpu_model, a100_nvlink.gpu_form_factor, a100_nvlink.gpu_count, a100_nvlink.gpu_memory_gb) == (
        "A100", "SXM", 8, 80)
    assert (str(a100_nvlink.price_per_hour), a100_nvlink.country) == ("15.6000", "US")  # "1.95" x 8


def test_prices_are_exact_decimals_and_memory_is_per_gpu(replay):
    _, by_id = offers(replay)
    a4000 = by_id["RTX_A4000_16GBx8@GERMANY"]
    assert (a4000.gpu_model, a4000.gpu_memory_gb, str(a4000.price_per_hour)) == ("RTXA4000", 16, "1.4400")
    assert str(by_id["A100_PCIE_40GBx2@SWEDEN"].price_per_hour) == "2.2000"  # "1.1" x 2, no float drift
    assert by_id["A100_PCIE_40GBx2@SWEDEN"].gpu_memory_gb == 40
    a100 = by_id["A100_SXM4_80GBx8@ILLINOIS_USA"]
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_memory_gb, str(a100.price_per_hour)) == (
        "A100", "SXM", 80, "14.3200")
    assert by_id["RTX_6000_ADA_48GBx2@INDIA"].gpu_model == "RTX6000ADA"
    assert by_id["RTX_A6000_48GBx4@CALIFORNIA_USA"].gpu_model == "RTXA6000"
    assert str(by_id["RTX_A6000_48GBx4@CALIFORNIA_USA"].price_per_hour) == "3.2000"


def test_regions_map_to_countries(replay):
    _, by_id = offers(replay)
    assert {o.region: o.country for o in by_id.values() if o.region != "unknown"} == {
        "CANADA": "CA", "TEXAS_USA": "US", "NORWAY": "NO", "VIRGINIA_USA": "US", "ILLINOIS_USA": "US",
        "SWEDEN": "SE", "NETHERLANDS": "NL", "INDIA": "IN", "CALIFORNIA_USA": "US", "GERMANY": "DE",
        "JAPAN": "JP", "ARIZONA_USA": "US",
    }
    # the country is the whole name or its last part, never a substring ("INDIANA" is not India)
    assert _location("INDIANA_USA").country == "US"
    assert _location("UNITED_KINGDOM").country == "GB"
    assert _location("MARS").country is None


def test_configuration_without_regions_is_listed_unavailable(replay):
    batch, by_id = offers(replay)
    l4 = [o for o in batch.offers if o.instance_type.endswith(" L4_24GB")]
    assert sorted(o.offer_id for o in l4) == ["L4_24GBx1@none", "L4_24GBx2@none", "L4_24GBx4@none"]
    assert all((o.availability, o.region, o.country) == (Availability.UNAVAILABLE, "unknown", None) for o in l4)
    assert str(by_id["L4_24GBx4@none"].price_per_hour) == "1.8000"
    assert all(o.availability == Availability.AVAILABLE for o in batch.offers if o not in l4)


def test_a_price_change_shows_up_on_the_next_sync(replay):
    body = copy.deepcopy(recording("fluidstack", PAYLOAD))
    body[0]["price_per_gpu_hr"] = "3.10"
    replay.put("fluidstack", PAYLOAD, body)
    _, by_id = offers(replay)
    assert str(by_id["H100_SXM5_80GBx8@CANADA"].price_per_hour) == "24.8000"


def test_wrong_key_gets_fluidstacks_401(replay):
    with pytest.raises(VendorError, match="fluidstack: GET /list_available_configurations -> HTTP 401") as error:
        hook(replay, key="fs-wrong-key").fetch_batch()
    assert "Invalid API key" in str(error.value) and "fs-wrong-key" not in str(error.value)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda rows: rows[0].update(price_per_gpu_hr="contact sales"), "price_per_gpu_hr is not a number"),
        (lambda rows: rows[0].update(price_per_gpu_hr="0"), "price_per_gpu_hr is not a positive price"),
        (lambda rows: rows[0].update(price_per_gpu_hr=None), "price_per_gpu_hr is not a price"),
        (lambda rows: rows[0].pop("price_per_gpu_hr"), "missing field 'price_per_gpu_hr'"),
        (lambda rows: rows[0].update(gpu_counts=[1, "8"]), "gpu_counts is not a list of positive integers"),
        (lambda rows: rows[0].update(gpu_counts=8), "gpu_counts is not a list of positive integers"),
        (lambda rows: rows[0].update(regions="CANADA"), "regions is not a list of names"),
        (lambda rows: rows[0].update(gpu_type="H100_SXM5"), "no GPU memory given and H100 comes in 80/94 GB"),
        (lambda rows: rows.append(copy.deepcopy(rows[0])), "offer_id listed twice"),
    ],
    ids=["price-not-a-number", "price-zero", "price-null", "missing-price", "count-not-int", "counts-not-a-list",
         "regions-not-a-list", "no-memory-in-gpu-type", "configuration-listed-twice"],
)
def test_a_broken_configuration_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    whole, broken = with_one_item_broken(replay, hook, "fluidstack", PAYLOAD, mutate)
    assert broken.dropped == {reason: 1}
    gone = lost(whole, broken)
    assert gone == (set() if reason == "offer_id listed twice" else {o for o in gone if o.startswith("H100_SXM5_80GBx")})
    assert gone or reason == "offer_id listed twice"


def test_an_unknown_gpus_row_is_still_checked(replay):
    def mutate(rows):
        next(r for r in rows if r["gpu_type"] == "RTX_3050_8GB").update(price_per_gpu_hr="NaN")

    _, broken = with_one_item_broken(replay, hook, "fluidstack", PAYLOAD, mutate)
    assert broken.dropped == {"price_per_gpu_hr is not a positive price": 1}


def test_an_object_instead_of_the_bare_array_is_rejected(replay):
    replay.put("fluidstack", PAYLOAD, {"configurations": recording("fluidstack", PAYLOAD)})
    with pytest.raises(PayloadError, match="fluidstack: malformed payload: expected a JSON array"):
        hook(replay).fetch_batch()


def test_gpu_types_naming_nvlink_state_the_interconnect(replay):
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    assert by_id["H100_NVLINK_80GBx8@JAPAN"].interconnect == "nvlink"
    assert by_id["A100_NVLINK_80GBx8@ARIZONA_USA"].interconnect == "nvlink"
    assert by_id["A100_SXM4_80GBx8@VIRGINIA_USA"].interconnect is None  # SXM4 names the board only


def test_the_retired_v1_plans_are_read_plan_by_plan(replay):
    replay.put("fluidstack", "list_available_configurations.json", recording("fluidstack", "variant-v1-plans.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"custom plan: a price per component, no configuration to price": 1, "CPU-only plan": 1}
    assert not batch.dropped and not batch.unknown_gpus
    by_id = {o.offer_id: o for o in batch.offers}
    assert set(by_id) == {"a100_pcie_40gb::1@norway_2", "a100_pcie_40gb::1@canada_1", "a100_nvlink_80gb::8@germany_1",
                          "h100_pcie_80gb::8:monthly@india_2@reserved-1mo"}  # fmt: skip
    a100 = by_id["a100_pcie_40gb::1@canada_1"]
    assert (a100.gpu_model, a100.gpu_form_factor, a100.gpu_count, a100.gpu_memory_gb) == ("A100", "PCIe", 1, 40.0)
    assert (str(a100.price_per_hour), a100.vcpus, a100.ram_gb, a100.disk_gb, a100.country) == ("1.1000", 12, 64, 500, "CA")
    nvlink = by_id["a100_nvlink_80gb::8@germany_1"]  # $1.95 per GPU-hour x 8
    assert (str(nvlink.price_per_hour), nvlink.gpu_memory_gb, nvlink.interconnect, nvlink.country) == (
        "15.6000", 80.0, "nvlink", "DE")
    monthly = by_id["h100_pcie_80gb::8:monthly@india_2@reserved-1mo"]
    assert (monthly.pricing_type, monthly.commitment_months, str(monthly.price_per_hour), monthly.country) == (
        "reserved", 1, "15.9200", "IN")
