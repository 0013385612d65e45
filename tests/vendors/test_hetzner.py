"""Hetzner dedicated GPU servers from the public standard-server feed: monthly EUR -> USD per hour, one month."""

from decimal import Decimal

import pytest

from gpubroker.fx import TO_USD
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.hetzner import HOURS_PER_MONTH, HetznerHook
from tests.vendors import by_id, lost, with_one_item_broken

FEED = "live_data_en_EUR.json"


def hook(replay) -> HetznerHook:
    return HetznerHook(base_url=replay.vendor_url("hetzner"))


def test_gex_servers_become_one_month_offers_per_datacenter(replay):
    assert (HOURS_PER_MONTH, TO_USD["EUR"]) == (730, Decimal("1.16"))
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"GEX44@FSN1", "GEX44@NBG1", "GEX130@FSN1", "GEX130@HEL1"}
    assert (batch.items, batch.skipped) == (5, {"CPU server: no GPU": 3})  # AX42, EX44, AX102
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    gex44 = offers["GEX44@FSN1"]
    assert (gex44.gpu_model, gex44.gpu_count, gex44.gpu_memory_gb) == ("RTX4000ADA", 1, 20.0)
    assert gex44.price_per_hour == Decimal("0.2951")  # EUR 185.70 a month / 730 h x 1.16
    assert (gex44.pricing_type, gex44.commitment_months, gex44.spot_price) == ("reserved", 1, None)
    assert (gex44.vcpus, gex44.ram_gb, gex44.disk_gb, gex44.cpu_arch) == (20, 64.0, 3840.0, "x86_64")
    assert (gex44.region, gex44.country, gex44.continent, gex44.availability) == ("FSN1", "DE", "EU", "unknown")
    assert offers["GEX44@NBG1"].country == "DE"

    gex130 = offers["GEX130@HEL1"]
    assert (gex130.gpu_model, gex130.gpu_memory_gb, gex130.vcpus, gex130.ram_gb) == ("RTX6000ADA", 48.0, 48, 128.0)
    assert (str(gex130.price_per_hour), gex130.country, gex130.continent) == ("1.2946", "FI", "EU")  # EUR 814.70 / 730 x 1.16


@pytest.mark.parametrize(
    ("index", "mutate", "reason", "gone"),
    [
        (2, lambda p: p.update(price="185.70"), "field 'price' is not a number", {"GEX44@FSN1", "GEX44@NBG1"}),
        (3, lambda p: p.update(name="GEX131"), "no GPU known for 'GEX131' (add it from Hetzner's product pages)",
         {"GEX130@FSN1", "GEX130@HEL1"}),
        (2, lambda p: p.update(datacenter=[]), "no datacenter to order it in", {"GEX44@FSN1", "GEX44@NBG1"}),
        (3, lambda p: p["datacenter"][1].pop("country_shortcode"), "missing field 'country_shortcode'",
         {"GEX130@FSN1", "GEX130@HEL1"}),
    ],
    ids=["price-as-text", "unknown-gex-product", "no-datacenter", "datacenter-without-country"],
)
def test_a_broken_product_is_dropped_with_its_reason_and_the_rest_land(replay, index, mutate, reason, gone):
    whole, broken = with_one_item_broken(replay, hook, "hetzner", FEED, lambda body: mutate(body["server"][index]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == gone


def test_a_cpu_server_gaining_a_gpu_special_is_not_guessed(replay):
    whole, broken = with_one_item_broken(replay, hook, "hetzner", FEED, lambda body: body["server"][0]["specials"].append("GPU"))
    assert broken.dropped == {"no GPU known for 'AX42' (add it from Hetzner's product pages)": 1}
    assert lost(whole, broken) == set()


def test_a_wrong_envelope_refuses_the_batch(replay):
    replay.put("hetzner", FEED, {"servers": []})
    with pytest.raises(PayloadError, match=r'hetzner: malformed payload: expected \{"server": \[...\]\}'):
        hook(replay).fetch_batch()
