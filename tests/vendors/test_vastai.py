"""Vast.ai hook against recorded payloads served over real HTTP by the replay server."""

import copy

import pytest

from gpubroker import gpus
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.vastai import VastAiHook
from tests.conftest import REPLAY_KEY, recording


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


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body: body.pop("offers"),
        lambda body: body["offers"][3].pop("dph_total"),
        lambda body: body["offers"][5].update(dph_total=-1),
        lambda body: body["offers"][0].update(num_gpus="many"),
    ],
    ids=["no-offers-list", "missing-price", "negative-price", "bad-gpu-count"],
)
def test_malformed_payload_rejects_the_whole_batch(replay, mutate):
    body = copy.deepcopy(recording("vastai", "bundles.json"))
    mutate(body)
    replay.put("vastai", "bundles.json", body)
    with pytest.raises(PayloadError, match="vastai: malformed payload"):
        hook(replay).fetch_batch()


