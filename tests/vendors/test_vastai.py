"""Vast.ai hook against recorded payloads served over real HTTP by the replay server."""

import copy
from datetime import datetime, timezone

import pytest

from gpubroker import gpus
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.vastai import VastAiHook
from tests.conftest import REPLAY_KEY, recording

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)
EVERY_KNOWN_OFFER = {str(r["id"]) for r in recording("vastai", "bundles.json")["offers"] if r["gpu_name"] != "GTX 1660 SUPER"}


def hook(replay, key=REPLAY_KEY) -> VastAiHook:
    return VastAiHook(base_url=replay.vendor_url("vastai"), api_key=key)


def test_bundles_search_normalises_every_known_offer(replay):
    batch = hook(replay).fetch_batch()
    rows = recording("vastai", "bundles.json")["offers"]
    assert batch.pages == 1
    assert len(batch.offers) == len(rows) - 1
    assert batch.unknown_gpus == {"GTX 1660 SUPER": 1}  # reported, not dropped silently or guessed
    assert "18019999" not in {o.offer_id for o in batch.offers}

    h100 = next(o for o in batch.offers if o.offer_id == "18013001")
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count) == ("H100", "SXM", 8)
    assert h100.gpu_memory_gb == 79.6  # 81559 MiB
    assert (h100.country, h100.continent, h100.region) == ("NO", "EU", "Norway")
    assert str(h100.price_per_hour) == "18.4000" and str(h100.spot_price) == "12.0000"

    rtx = next(o for o in batch.offers if o.offer_id == "18012345")
    assert rtx.ram_gb == round(128794 * 0.125 / 1024, 1)  # the offer's gpu_frac share of the machine
    assert rtx.cpu_arch == "x86_64"
    for offer in batch.offers:
        assert gpus.BY_NAME[offer.gpu_model].memory_matches(offer.gpu_memory_gb), offer


def test_missing_key_is_a_clear_error(replay):
    with pytest.raises(VendorError, match="no API key"):
        VastAiHook(conn_id="gpubroker_vastai_missing", base_url=replay.vendor_url("vastai")).fetch_batch()


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("vastai", "bundles.json", {"offers": {"18012345": "not a list"}})
    with pytest.raises(PayloadError, match="vastai: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda row: row.pop("num_gpus"), "missing field 'num_gpus'"),
        (lambda row: row.update(dph_total=-1), "price_per_hour: Input should be greater than 0"),
        (lambda row: row.update(num_gpus=0), "gpu_count: Input should be greater than or equal to 1"),
        (lambda row: row.update(num_gpus="many"),
         "gpu_count: Input should be a valid integer, unable to parse string as an integer"),
    ],
    ids=["missing-gpu-count", "negative-price", "no-gpus", "gpu-count-not-a-number"],
)
def test_a_broken_offer_is_dropped_with_its_reason_and_the_rest_land(replay, mutate, reason):
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    mutate(body["offers"][3])
    replay.put("vastai", "bundles.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.dropped == {reason: 1}
    assert {o.offer_id for o in batch.offers} == EVERY_KNOWN_OFFER - {str(body["offers"][3]["id"])}


def test_a_bundle_without_gpus_never_becomes_an_offer_with_zero_gpus():
    """Found by the corruption property: `num_gpus: 0` once produced an offer with gpu_count 0."""
    row = recording("vastai", "bundles.json")["offers"][0] | {"num_gpus": 0}
    batch = VastAiHook().parse([{"offers": [row, *recording("vastai", "bundles.json")["offers"][1:]]}], NOW)
    assert batch.dropped == {"gpu_count: Input should be greater than or equal to 1": 1}
    assert all(offer.gpu_count >= 1 for offer in batch.offers)


def test_storage_volumes_in_the_same_listing_are_skipped_not_dropped():
    rows = recording("vastai", "variant-search-asks.json")["offers"]
    volume = {"id": 999, "resource_type": "volume", "gpu_name": None, "num_gpus": 0, "search": {"totalHour": 0.01}}
    batch = VastAiHook().parse([{"offers": [*rows, volume]}], NOW)
    assert batch.skipped == {"resource_type 'volume'": 1} and not batch.dropped
    assert len(batch.offers) == len(rows)


def test_newer_search_layout_prices_the_whole_offer_from_search_total(replay):
    replay.put("vastai", "bundles.json", recording("vastai", "variant-search-asks.json"))
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    h200 = by_id["24410188"]
    row = next(r for r in recording("vastai", "variant-search-asks.json")["offers"] if r["id"] == 24410188)
    assert "dph_total" not in row
    assert float(h200.price_per_hour) == pytest.approx(row["search"]["totalHour"], abs=1e-4)
    assert float(h200.price_per_hour) == pytest.approx(row["dph_base"] + row["search"]["diskHour"], abs=1e-4)
    assert (h200.gpu_model, h200.gpu_count, h200.gpu_memory_gb, h200.country) == ("H200", 8, 140.4, "IS")
    assert h200.inferred == ()
    assert by_id["24410777"].availability == "unavailable"  # rentable: false


def test_a_search_for_a_subset_of_fields_infers_memory_and_leaves_the_rest_empty(replay):
    replay.put("vastai", "bundles.json", recording("vastai", "variant-subset-fields.json"))
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    l40s = by_id["24420345"]
    assert (l40s.gpu_count, l40s.gpu_memory_gb, l40s.inferred) == (8, 48, ("gpu_memory_gb",))
    assert (l40s.ram_gb, l40s.vcpus, l40s.disk_gb) == (None, 96, 2000.0)
    assert str(l40s.price_per_hour) == "6.0833"  # dph_base 6.0 + storage_total_cost 0.0833
    assert by_id["24420456"].spot_price is None  # min_bid null


def test_a_subset_without_memory_for_a_gpu_sold_in_several_sizes_is_dropped_precisely():
    row = {"id": 1, "gpu_name": "A100 SXM4", "num_gpus": 8, "dph_total": 9.6, "geolocation": "Texas, US"}
    batch = VastAiHook().parse([{"offers": [row, *recording("vastai", "variant-subset-fields.json")["offers"]]}], NOW)
    assert batch.dropped == {"no GPU memory given and A100 comes in 40/80 GB": 1}
    assert len(batch.offers) == 5


def test_the_clis_raw_output_is_the_same_rows_as_a_bare_array(replay):
    replay.put("vastai", "bundles.json", recording("vastai", "variant-cli-raw.json"))
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    assert set(by_id) == {"24430001", "24430002", "24430003"}
    assert (by_id["24430002"].gpu_form_factor, str(by_id["24430002"].price_per_hour)) == ("SXM", "17.9000")


def test_offers_of_hosts_vast_verified_are_tagged_verified_and_only_those(replay):
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    body["offers"][0]["verification"] = "unverified"
    body["offers"][1]["verification"] = "deverified"
    replay.put("vastai", "bundles.json", body)
    tags = {o.offer_id: o.tags for o in hook(replay).fetch_batch().offers}
    stated = {str(r["id"]): r["verification"] for r in body["offers"]}
    assert tags == {offer_id: ("verified",) if stated[offer_id] == "verified" else () for offer_id in tags}
    assert set(stated.values()) == {"verified", "unverified", "deverified"}
    subset = copy.deepcopy(recording("vastai", "variant-subset-fields.json"))  # `verified` true, no `verification`
    subset["offers"][0]["verified"] = False
    replay.put("vastai", "bundles.json", subset)
    tags = {o.offer_id: o.tags for o in hook(replay).fetch_batch().offers}
    unverified = str(subset["offers"][0]["id"])
    assert tags[unverified] == () and {t for o, t in tags.items() if o != unverified} == {("verified",)}
