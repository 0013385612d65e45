"""Seeweb ECS v2 plans: GPU plans per region, EUR per hour for the whole server, strings and MiB converted."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.seeweb import SeewebHook
from tests.conftest import REPLAY_KEY
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay, key=REPLAY_KEY) -> SeewebHook:
    return SeewebHook(base_url=replay.vendor_url("seeweb"), api_key=key)


def test_gpu_plans_become_offers_in_each_of_their_regions(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {
        "ECS1GPU7@it-fr2", "ECS1GPU7@it-mi2", "ECS2GPU7@it-fr2", "ECS1GPU4@it-fr2", "ECS1GPU4@ch-lug1",
        "ECS1GPU5@it-fr2", "ECS1GPU5@it-mi2", "ECS1GPU5@bg-sof1", "ECS1GPU11@it-fr2", "ECS8GPU11@it-fr2",
        "ECS1GPU14@it-fr2",
    }  # fmt: skip
    assert (batch.items, batch.skipped) == (11, {"CPU plan": 2, "plan no longer available": 1})
    assert batch.unknown_gpus == {"Tenstorrent Wormhole n300": 1}  # counted, not guessed
    assert not batch.dropped and not batch.memory_mismatches

    l40s = offers["ECS1GPU7@it-mi2"]
    assert (l40s.gpu_model, l40s.gpu_count, l40s.gpu_memory_gb, l40s.price_per_hour) == ("L40S", 1, 48.0, Decimal("0.9860"))
    assert (l40s.vcpus, l40s.ram_gb, l40s.disk_gb) == (8, 34.4, 500.0)  # "32768" MiB, "500" GB
    assert (l40s.country, l40s.continent, l40s.availability, l40s.pricing_type) == ("IT", "EU", "unknown", "on_demand")
    assert (offers["ECS2GPU7@it-fr2"].gpu_count, str(offers["ECS2GPU7@it-fr2"].price_per_hour)) == (2, "1.9720")

    h100 = offers["ECS8GPU11@it-fr2"]
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb, str(h100.price_per_hour)) == ("H100", 8, 80.0, "26.9120")
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (192, 2061.6, 16000.0)
    a6000 = offers["ECS1GPU4@ch-lug1"]
    assert (a6000.gpu_model, str(a6000.price_per_hour), a6000.country) == ("RTXA6000", "0.8352", "CH")
    assert (offers["ECS1GPU5@bg-sof1"].gpu_model, offers["ECS1GPU5@bg-sof1"].country) == ("L4", "BG")
    mi300x = offers["ECS1GPU14@it-fr2"]
    assert (mi300x.gpu_vendor, mi300x.gpu_memory_gb, mi300x.inferred, str(mi300x.price_per_hour)) == (
        "AMD", 192.0, ("gpu_memory_gb",), "1.8560")  # "MI300X": the registry's one size


@pytest.mark.parametrize(
    ("index", "mutate", "reason", "gone"),
    [
        (2, lambda p: p.update(hourly_price="0.85"), "field 'hourly_price' is not a number", {"ECS1GPU7@it-fr2", "ECS1GPU7@it-mi2"}),
        (4, lambda p: p.update(available_regions=[]), "available in no region", {"ECS1GPU4@it-fr2", "ECS1GPU4@ch-lug1"}),
        (6, lambda p: p.update(ram="240 GB"), "invalid literal for int() with base 10: '240 GB'", {"ECS1GPU11@it-fr2"}),
        (7, lambda p: p["available_regions"][0].pop("location"), "missing field 'location'", {"ECS8GPU11@it-fr2"}),
    ],
    ids=["price-as-text", "no-region", "ram-with-unit", "region-without-location"],
)
def test_a_broken_plan_is_dropped_with_its_reason_and_the_rest_land(replay, index, mutate, reason, gone):
    whole, broken = with_one_item_broken(replay, hook, "seeweb", "plans.json", lambda body: mutate(body["plans"][index]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


def test_a_wrong_envelope_refuses_the_batch(replay):
    replay.put("seeweb", "plans.json", {"status": "ok", "plan": []})
    with pytest.raises(PayloadError, match=r'seeweb: malformed payload: expected \{"plans": \[...\]\}'):
        hook(replay).fetch_batch()


def test_the_token_travels_as_x_apitoken_and_a_wrong_one_gets_seewebs_401(replay):
    with pytest.raises(VendorError, match=r"seeweb: GET /ecs/v2/plans -> HTTP 401: .*Invalid API token") as error:
        hook(replay, key="wrong-token-9").fetch_batch()
    assert "wrong-token-9" not in str(error.value)
