"""RunPod hook against the recorded GraphQL `gpuTypes` answer, served over real HTTP."""

import copy
from decimal import Decimal

import pytest

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.runpod import RunPodHook
from tests.conftest import REPLAY_KEY, recording
from tests.vendors import lost, with_one_item_broken


def hook(replay, key=REPLAY_KEY) -> RunPodHook:
    return RunPodHook(base_url=replay.vendor_url("runpod"), api_key=key)


def offers(batch):
    return {o.offer_id: o for o in batch.offers}


def test_gpu_types_normalise_one_offer_per_cloud(replay):
    batch = hook(replay).fetch_batch()
    by_id = offers(batch)
    assert batch.pages == 1
    assert len(batch.offers) == 17
    assert batch.unknown_gpus == {}  # the "unknown" placeholder is not a GPU: skipped
    assert not any(o.offer_id.startswith("unknown") for o in batch.offers)
    a2000 = by_id["NVIDIA RTX A2000:community"]
    assert (a2000.gpu_model, str(a2000.price_per_hour), str(a2000.spot_price)) == ("RTXA2000", "0.1200", "0.0700")

    h100 = by_id["NVIDIA H100 80GB HBM3:secure"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 1, 80)
    assert str(h100.price_per_hour) == "2.6900" and str(h100.spot_price) == "1.7500"
    assert (h100.vcpus, h100.ram_gb, h100.region, h100.country) == (20, 125, "global", None)
    assert h100.availability == Availability.AVAILABLE

    nvl = by_id["NVIDIA H100 NVL:community"]
    assert (nvl.gpu_form_factor, nvl.gpu_memory_gb, str(nvl.price_per_hour)) == ("NVL", 94, "2.5900")

    ada = by_id["NVIDIA RTX 2000 Ada Generation:secure"]
    assert (ada.gpu_model, ada.gpu_count, ada.gpu_memory_gb) == ("RTX2000ADA", 1, 16)
    assert (str(ada.price_per_hour), str(ada.spot_price), ada.vcpus, ada.ram_gb) == ("0.2400", "0.1400", 6, 31)
    ada_community = by_id["NVIDIA RTX 2000 Ada Generation:community"]
    assert (str(ada_community.price_per_hour), str(ada_community.spot_price)) == ("0.2300", "0.1300")


def test_clouds_not_offered_are_skipped_and_stock_maps_to_availability(replay):
    by_id = offers(hook(replay).fetch_batch())
    # RTX 3090: Community Cloud only (secureCloud false, securePrice 0)
    assert "NVIDIA GeForce RTX 3090:secure" not in by_id
    assert str(by_id["NVIDIA GeForce RTX 3090:community"].price_per_hour) == "0.2200"
    # B200: Secure only, communityPrice null, no spot price, stock "Low"
    assert "NVIDIA B200:community" not in by_id
    b200 = by_id["NVIDIA B200:secure"]
    assert (b200.gpu_memory_gb, b200.spot_price, b200.availability) == (180, None, Availability.LIMITED)
    # stockStatus null: listed but none to rent
    v100 = by_id["Tesla V100-SXM2-32GB:community"]
    assert (v100.gpu_model, v100.gpu_memory_gb, v100.availability) == ("V100", 32, Availability.UNAVAILABLE)
    assert by_id["AMD Instinct MI300X OAM:secure"].gpu_vendor == "AMD"


def test_api_key_travels_as_query_parameter(replay):
    client = hook(replay).client()
    assert client.params["api_key"] == REPLAY_KEY and "Authorization" not in client.headers


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body: body.update(errors=[{"message": "Cannot query field \"securePrice\""}], data=None),
        lambda body: body["data"].update(gpuTypes={"not": "a list"}),
    ],
    ids=["graphql-errors-without-data", "gpu-types-not-a-list"],
)
def test_a_wrong_envelope_rejects_the_whole_batch(replay, mutate):
    body = copy.deepcopy(recording("runpod", "gpu-types.json"))
    mutate(body)
    replay.put("runpod", "gpu-types.json", body)
    with pytest.raises(PayloadError, match="runpod: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda row: row["lowestPrice"].update(stockStatus="Plenty"), "unknown stockStatus 'Plenty'"),
        (lambda row: [row.pop("securePrice"), row.pop("communityPrice")], "missing field 'securePrice'"),
        (lambda row: row.update(communityPrice="cheap"), "field 'communityPrice' is not a number"),
    ],
    ids=["unknown-stock-status", "no-price-at-all", "price-not-a-number"],
)
def test_a_broken_gpu_type_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    body = copy.deepcopy(recording("runpod", "gpu-types.json"))
    mutate(body["data"]["gpuTypes"][5])  # RTX 4090
    replay.put("runpod", "gpu-types.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}
    assert len(batch.offers) == 15 and not any("RTX 4090" in o.offer_id for o in batch.offers)


def test_a_query_without_lowest_price_gives_unknown_availability(replay):
    replay.put("runpod", "gpu-types.json", recording("runpod", "variant-without-lowest-price.json"))
    batch = hook(replay).fetch_batch()
    by_id = offers(batch)
    assert batch.skipped == {"placeholder GPU type 'unknown'": 1}
    assert {o.availability for o in batch.offers} == {Availability.UNKNOWN}
    l40s = by_id["NVIDIA L40S:community"]
    assert (str(l40s.price_per_hour), str(l40s.spot_price), l40s.vcpus, l40s.ram_gb) == ("0.7900", "0.4000", None, None)
    assert "NVIDIA GeForce RTX 5090:secure" not in by_id  # secureCloud false
    assert "NVIDIA A40:community" not in by_id  # communityPrice null


def test_a_query_for_fewer_fields_prices_each_cloud_it_names_and_infers_memory(replay):
    replay.put("runpod", "gpu-types.json", recording("runpod", "variant-fewer-fields.json"))
    batch = hook(replay).fetch_batch()
    by_id = offers(batch)
    assert len(batch.offers) == 9 and not batch.dropped
    h100 = by_id["NVIDIA H100 PCIe:community"]
    assert (h100.gpu_memory_gb, h100.inferred, h100.spot_price) == (80, ("gpu_memory_gb",), None)  # PCIe: 80 GB
    assert by_id["AMD Instinct MI300X OAM:secure"].gpu_memory_gb == 192
    assert "AMD Instinct MI300X OAM:community" not in by_id  # no community price


def test_a_partial_graphql_answer_is_read_and_a_failed_lowest_price_means_unknown(replay):
    replay.put("runpod", "gpu-types.json", recording("runpod", "variant-partial-errors.json"))
    by_id = offers(hook(replay).fetch_batch())
    assert by_id["NVIDIA A40:secure"].availability == Availability.UNKNOWN  # its lowestPrice resolver failed
    assert (by_id["NVIDIA A40:secure"].vcpus, by_id["NVIDIA A40:secure"].ram_gb) == (None, None)
    assert by_id["NVIDIA RTX 6000 Ada Generation:secure"].availability == Availability.LIMITED


def test_savings_plan_prices_become_reserved_offers_beside_the_on_demand_ones(replay):
    replay.put("runpod", "gpu-types.json", recording("runpod", "variant-savings-plans.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"sold in neither cloud (no on-demand price)": 1} and not batch.dropped  # A40: 0 and 0
    by_id = offers(batch)
    assert set(by_id) == {
        "NVIDIA H100 80GB HBM3:secure", "NVIDIA H100 80GB HBM3:secure@reserved-1mo",
        "NVIDIA H100 80GB HBM3:secure@reserved-3mo", "NVIDIA H100 80GB HBM3:secure@reserved-6mo",
        "NVIDIA GeForce RTX 4090:secure", "NVIDIA GeForce RTX 4090:community",
        "NVIDIA L40S:secure", "NVIDIA L40S:community", "NVIDIA L40S:secure@reserved-1mo",
        "NVIDIA L40S:secure@reserved-3mo", "NVIDIA L40S:secure@reserved-6mo",
        "AMD Instinct MI300X OAM:secure", "AMD Instinct MI300X OAM:secure@reserved-1mo",
        "AMD Instinct MI300X OAM:secure@reserved-6mo",  # threeMonthPrice null
    }
    h100 = by_id["NVIDIA H100 80GB HBM3:secure"]
    assert (h100.price_per_hour, h100.spot_price, h100.pricing_type, h100.commitment_months) == (
        Decimal("2.6900"), None, "on_demand", None)
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, h100.vcpus, h100.ram_gb) == ("H100", 1, 80.0, 24, 125)
    plans = {m: by_id[f"NVIDIA H100 80GB HBM3:secure@reserved-{m}mo"] for m in (1, 3, 6)}
    assert {m: (o.price_per_hour, o.pricing_type, o.commitment_months) for m, o in plans.items()} == {
        1: (Decimal("2.3900"), "reserved", 1), 3: (Decimal("2.2900"), "reserved", 3), 6: (Decimal("2.1900"), "reserved", 6)}
    assert all(o.spot_price is None and o.availability == "available" for o in plans.values())
    assert by_id["NVIDIA L40S:community"].price_per_hour == Decimal("0.7900")
    assert by_id["NVIDIA L40S:secure@reserved-6mo"].availability == "limited"  # stockStatus Low
    assert by_id["AMD Instinct MI300X OAM:secure"].availability == "unavailable"  # stockStatus null
    assert by_id["NVIDIA GeForce RTX 4090:community"].price_per_hour == Decimal("0.3400")


def test_a_gpu_the_registry_does_not_know_is_counted_not_guessed(replay):
    def rename(body):
        gpu = next(t for t in body["data"]["gpuTypes"] if t["id"] == "NVIDIA RTX A2000")
        gpu.update(id="NVIDIA RTX A1000", displayName="RTX A1000")

    whole, renamed = with_one_item_broken(replay, hook, "runpod", "gpu-types.json", rename)
    assert renamed.unknown_gpus == {"RTX A1000": 1} and not renamed.dropped
    assert lost(whole, renamed) == {"NVIDIA RTX A2000:secure", "NVIDIA RTX A2000:community"}


def test_offers_are_tagged_with_their_cloud_and_secure_cloud_with_the_certifications_runpod_lists(replay):
    by_id = offers(hook(replay).fetch_batch())  # the recording states no certifications
    assert by_id["NVIDIA H100 80GB HBM3:secure"].tags == ("secure-cloud",)
    assert by_id["NVIDIA RTX A2000:community"].tags == ("community-cloud",)
    replay.put("runpod", "gpu-types.json", recording("runpod", "variant-savings-plans.json"))
    by_id = offers(hook(replay).fetch_batch())  # H100: compliance ["SOC2", "ISO27001"]; the others null
    assert by_id["NVIDIA H100 80GB HBM3:secure"].tags == ("iso27001", "secure-cloud", "soc2")
    assert by_id["NVIDIA H100 80GB HBM3:secure@reserved-3mo"].tags == ("iso27001", "secure-cloud", "soc2")
    assert by_id["NVIDIA GeForce RTX 4090:secure"].tags == ("secure-cloud",)
    assert by_id["NVIDIA GeForce RTX 4090:community"].tags == ("community-cloud",)  # certifications are Secure Cloud's
