"""Scaleway hook against recorded payloads served over real HTTP by the replay server."""

import copy
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.scaleway import EUR_USD, ScalewayHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY) -> ScalewayHook:
    return ScalewayHook(base_url=replay.vendor_url("scaleway"), api_key=key)


def test_every_zone_and_page_is_read(replay):
    batch = hook(replay).fetch_batch()
    # 4 zones x (servers + availability), and fr-par-2's servers take a second page
    assert batch.pages == 9
    assert set(by_id(batch)) == {
        "GPU-3070-S:fr-par-1",
        "H100-1-80G:fr-par-2", "H100-2-80G:fr-par-2", "H100-SXM-2-80G:fr-par-2", "L4-1-24G:fr-par-2",
        "L40S-1-48G:fr-par-2", "B300-SXM-8-288G:fr-par-2",  # page 2 of fr-par-2
        "L4-1-24G:pl-waw-2", "L40S-2-48G:pl-waw-2", "H100-1-80G:pl-waw-2",
    }
    assert not batch.memory_mismatches


def test_cpu_and_end_of_service_types_are_left_out(replay):
    batch = hook(replay).fetch_batch()
    types = {o.instance_type for o in batch.offers}
    assert not types & {"DEV1-S", "DEV1-M", "PRO2-S", "PRO2-XS"}  # gpu: 0
    assert "RENDER-S" not in types  # end_of_service: true
    assert batch.unknown_gpus == {}  # end-of-service P100 is skipped before the registry is asked


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(replay):
    body = copy.deepcopy(recording("scaleway", "servers-pl-waw-2.json"))
    body["servers"]["L40S-2-48G"]["gpu_info"].update(gpu_name="RTX 3050", gpu_memory=8 * 2**30)
    replay.put("scaleway", "servers-pl-waw-2.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"RTX 3050": 1}  # counted, not guessed
    assert "L40S-2-48G:pl-waw-2" not in by_id(batch)
    assert len(batch.offers) == 9  # every other GPU type and zone is still an offer


def test_eur_prices_are_converted_and_memory_is_per_gpu(replay):
    assert EUR_USD == Decimal("1.16")
    offers = by_id(hook(replay).fetch_batch())
    two = offers["H100-2-80G:fr-par-2"]
    assert (two.gpu_model, two.gpu_count, two.gpu_memory_gb) == ("H100", 2, 80.0)  # 80 GiB in bytes, per GPU
    assert two.price_per_hour == Decimal("6.3336")  # EUR 5.46 for the whole Instance x 1.16
    assert (two.vcpus, two.ram_gb, two.disk_gb) == (48, 480.0, 6000.0)
    assert (two.country, two.continent, two.cpu_arch) == ("FR", "EU", "x86_64")

    sxm = offers["H100-SXM-2-80G:fr-par-2"]
    assert (sxm.gpu_model, sxm.gpu_form_factor, str(sxm.price_per_hour)) == ("H100", "SXM", "6.9809")  # 6.018 x 1.16

    l4 = offers["L4-1-24G:pl-waw-2"]
    assert (l4.gpu_memory_gb, l4.price_per_hour, l4.disk_gb, l4.country) == (24.0, Decimal("0.8700"), None, "PL")
    assert offers["GPU-3070-S:fr-par-1"].gpu_model == "RTX3070"

    b300 = offers["B300-SXM-8-288G:fr-par-2"]  # page 2 of fr-par-2
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", None, 8, 288.0)
    assert b300.price_per_hour == Decimal("74.0544")  # EUR 63.84 for the whole Instance x 1.16
    assert (b300.vcpus, b300.ram_gb, b300.disk_gb, b300.country) == (224, 3840.0, 30720.0, "FR")
    assert b300.availability == "available"


def test_stock_levels_map_to_availability(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["H100-1-80G:fr-par-2"].availability == "available"
    assert offers["H100-2-80G:fr-par-2"].availability == "limited"  # scarce
    assert offers["H100-SXM-2-80G:fr-par-2"].availability == "unavailable"  # shortage
    assert offers["H100-1-80G:pl-waw-2"].availability == "unknown"  # not in pl-waw-2's availability map


def test_the_key_travels_as_x_auth_token(replay):
    with pytest.raises(VendorError, match="HTTP 401: .*denied_authentication"):
        hook(replay, key="not-the-key").fetch_batch()
    assert ScalewayHook(api_key="k").auth_headers("k") == {"X-Auth-Token": "k"}


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("scaleway", "servers-pl-waw-2.json"))
    body.update(servers=list(body["servers"].values()))
    replay.put("scaleway", "servers-pl-waw-2.json", body)
    with pytest.raises(PayloadError, match="scaleway: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "lost_ids"),
    [
        ("servers-fr-par-2-2.json", lambda body: body["servers"]["L40S-1-48G"].pop("gpu_info"),
         "missing field 'gpu_info'", {"L40S-1-48G:fr-par-2"}),
        ("servers-fr-par-1.json", lambda body: body["servers"]["GPU-3070-S"].update(hourly_price="0.98"),
         "TypeError: hourly_price '0.98' is not a number", {"GPU-3070-S:fr-par-1"}),
        ("availability-fr-par-2.json", lambda body: body["servers"]["L4-1-24G"].pop("availability"),
         "missing field 'availability'", set()),  # the type stays, its stock level unknown
    ],
    ids=["gpu-type-without-gpu-info", "price-as-text", "availability-without-level"],
)
def test_a_broken_type_is_dropped_with_its_reason_and_the_rest_land(replay, payload, mutate, reason, lost_ids):
    whole, broken = with_one_item_broken(replay, hook, "scaleway", payload, mutate)
    assert broken.dropped == {reason: 1}
    if lost_ids:
        assert lost(whole, broken) == lost_ids
    else:
        assert by_id(broken)["L4-1-24G:fr-par-2"].availability == "unknown"
