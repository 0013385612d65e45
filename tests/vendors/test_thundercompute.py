"""Thunder Compute: /v1/specs configurations priced from /v1/pricing (whole-instance prices, included vCPUs/RAM)."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.thundercompute import ThunderComputeHook
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay) -> ThunderComputeHook:
    return ThunderComputeHook(base_url=replay.vendor_url("thundercompute"))  # public pricing: no token


def test_every_configuration_is_one_offer_at_its_whole_instance_price(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert batch.pages == 2 and batch.items == len(offers) == 10  # both modes, every GPU count
    assert not batch.dropped and not batch.skipped and not batch.unknown_gpus and not batch.memory_mismatches
    assert "additional_vcpus" not in offers and "disk_gb" not in offers  # add-on rates, not configurations

    h100 = offers["h100_x8_production"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", None, 8, 80.0)
    assert h100.price_per_hour == Decimal("19.9200")  # the configuration's price: all 8 GPUs
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (144, 773.1, 100.0)  # 144 x 5 GiB = 720 GiB -> GB
    assert (h100.instance_type, h100.pricing_type, h100.spot_price) == ("h100_x8_production", "on_demand", None)

    a100 = offers["a100xl_x2_prototyping"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 2, 80.0, "1.5600")
    assert (a100.vcpus, a100.ram_gb) == (8, 68.7)  # the smallest vCPU option is included: 8 x 8 GiB
    a6000 = offers["a6000_x1_prototyping"]
    assert (a6000.gpu_model, a6000.gpu_memory_gb, str(a6000.price_per_hour)) == ("RTXA6000", 48.0, "0.3500")
    assert str(offers["h100_x1_prototyping"].price_per_hour) == "1.3800"
    assert str(offers["h100_x1_production"].price_per_hour) == "2.4900"


def test_no_location_or_capacity_is_published(replay):
    for offer in hook(replay).fetch_batch().offers:
        assert (offer.region, offer.country, offer.continent) == ("unknown", None, None)
        assert (offer.availability, offer.interconnect) == ("unknown", None)


def test_a_configuration_without_a_price_is_dropped_with_its_reason(replay):
    whole, broken = with_one_item_broken(replay, hook, "thundercompute", "pricing.json",
                                         lambda body: body["pricing"].pop("h100_x4_production"))  # fmt: skip
    assert broken.dropped == {"no price for 'h100_x4_production' in /v1/pricing": 1}
    assert lost(whole, broken) == {"h100_x4_production"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mode": "reserved"}, "unknown mode 'reserved'"),
        ({"vramGB": "80GB"}, "field 'vramGB' is not a number"),
        ({"vcpuOptions": []}, "IndexError: list index out of range"),
        ({"displayName": ""}, "field 'displayName' is not a name"),
    ],
    ids=["mode", "memory", "vcpus", "name"],
)
def test_a_broken_configuration_is_dropped_with_its_reason(replay, change, reason):
    whole, broken = with_one_item_broken(replay, hook, "thundercompute", "specs.json",
                                         lambda body: body["specs"]["a100xl_x1_production"].update(change))  # fmt: skip
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"a100xl_x1_production"}


def test_a_cpu_only_configuration_is_skipped_and_an_unknown_gpu_counted(replay):
    def edit(body):
        body["specs"]["a6000_x1_prototyping"]["gpuCount"] = 0
        body["specs"]["h100_x2_prototyping"]["displayName"] = "NVIDIA H300"

    whole, broken = with_one_item_broken(replay, hook, "thundercompute", "specs.json", edit)
    assert broken.skipped == {"CPU-only configuration": 1} and broken.unknown_gpus == {"NVIDIA H300": 1}
    assert lost(whole, broken) == {"a6000_x1_prototyping", "h100_x2_prototyping"} and not broken.dropped


def test_a_price_list_without_its_envelope_refuses_the_batch(replay):
    replay.put("thundercompute", "pricing.json", {"rates": {"h100_x1_production": 2.49}})
    with pytest.raises(PayloadError, match=r'thundercompute: malformed payload: expected \{"pricing"'):
        hook(replay).fetch_batch()


def test_a_token_from_the_connection_is_sent_as_bearer(replay):
    client = ThunderComputeHook(base_url=replay.vendor_url("thundercompute"), api_key="tnr-token").client()
    assert client.headers["Authorization"] == "Bearer tnr-token"
