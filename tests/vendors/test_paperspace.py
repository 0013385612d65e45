"""Paperspace price page: per-machine hourly prices as shown, GPU count from the machine type, datacenter countries."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.paperspace import DATACENTERS, PaperspaceHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "paperspace" / "pricing.html").read_text()


def hook(replay):
    return PaperspaceHook(base_url=replay.vendor_url("paperspace"))


def test_machines_map_to_one_offer_per_datacenter(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {f"{machine}@{dc}" for machine, dcs in DATACENTERS.items() for dc in dcs}
    assert (batch.items, len(offers), batch.unknown_gpus, batch.dropped) == (12, 20, {}, {})
    assert not batch.memory_mismatches

    h100x8 = offers["H100x8@NY2"]
    assert (h100x8.gpu_model, h100x8.gpu_count, h100x8.gpu_memory_gb) == ("H100", 8, 80.0)
    assert h100x8.price_per_hour == Decimal("47.6000")  # the whole 8-GPU machine, not per GPU ("$47.60/hr*")
    assert (h100x8.vcpus, h100x8.ram_gb) == (128, 1638.0)
    assert (h100x8.region, h100x8.country, h100x8.continent) == ("NY2", "US", "NA")

    a100 = offers["A100@NY2"]
    assert (a100.gpu_model, a100.gpu_count, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 1, 40.0, "3.0900")
    assert str(offers["A100-80Gx8@NY2"].price_per_hour) == "25.4400"

    ams = offers["A4000@AMS1"]
    assert (ams.gpu_model, ams.country, ams.continent, str(ams.price_per_hour)) == ("RTXA4000", "NL", "EU", "0.7600")
    a6000x4 = offers["A6000x4@CA1"]
    assert (a6000x4.gpu_count, a6000x4.price_per_hour, a6000x4.vcpus, a6000x4.ram_gb) == (4, Decimal("7.5600"), 32, 180.0)
    assert offers["V100-32G@NY2"].gpu_memory_gb == 32.0
    assert {o.availability for o in batch.offers} == {"unknown"}
    assert {o.provider for o in batch.offers} == {"paperspace"}


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(replay):
    replay.put("paperspace", "pricing.html", PAGE.replace("NVIDIA Quadro RTX 4000", "NVIDIA Quadro P4000"))
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"NVIDIA Quadro P4000": 1}  # counted once, not guessed
    assert not batch.dropped and not any(o.offer_id.startswith("RTX4000@") for o in batch.offers)
    assert len(batch.offers) == 17  # every other machine and datacenter is still an offer


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$5.95/hr*", "Waitlist"), "no price in 'Waitlist'", {"H100@NY2"}),
        ((">V100-32G<", ">V100-32Gx2<"),
         "no datacenters known for machine type 'V100-32Gx2' (add it from Paperspace's docs)", {"V100-32G@NY2"}),
        ((">1638 GB<", ">1.6 TiB<"), "no size in GB in '1.6 TiB'", {"H100x8@NY2"}),
        ((">96<", ">96 vCPU<"), "invalid literal for int() with base 10: '96 vCPU'", {"A100-80Gx8@NY2"}),
    ],
    ids=["price-gone", "new-machine-type", "ram-unit-unknown", "vcpus-not-a-number"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    replay.put("paperspace", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("<th>Price/hr</th>", "<th>Price/mo</th>"), r"'#machines table' has no column 'Price/hr'"),
        (('<section id="machines">', '<section id="gpu-machines">'), r"no rows in '#machines table'"),
    ],
    ids=["price-column-renamed", "table-moved"],
)
def test_a_page_without_its_table_is_refused_as_changed(replay, edit, message):
    replay.put("paperspace", "pricing.html", PAGE.replace(*edit))
    with pytest.raises(PayloadError, match=f"paperspace: malformed payload: {message}"):
        hook(replay).fetch_batch()
