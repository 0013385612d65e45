"""TensorWave price page: AMD Instinct nodes, per-GPU on-demand prices x the node's GPUs."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.tensorwave import TensorWaveHook
from tests.conftest import RECORDINGS
from tests.vendors import by_id, lost

PAGE = (RECORDINGS / "tensorwave" / "pricing.html").read_text()


def hook(replay):
    return TensorWaveHook(base_url=replay.vendor_url("tensorwave"))


def test_each_priced_accelerator_is_one_eight_gpu_node(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert set(offers) == {"mi300x.8x", "mi325x.8x"}
    assert (batch.items, batch.skipped) == (3, {"contact sales: no public price": 1})  # MI355X
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    mi325x = offers["mi325x.8x"]
    assert (mi325x.gpu_model, mi325x.gpu_vendor, mi325x.gpu_count, mi325x.gpu_memory_gb) == ("MI325X", "AMD", 8, 256.0)
    assert mi325x.price_per_hour == Decimal("15.6000")  # 8 x $1.95
    mi300x = offers["mi300x.8x"]
    assert (mi300x.gpu_model, mi300x.gpu_memory_gb, mi300x.price_per_hour) == ("MI300X", 192.0, Decimal("12.0000"))
    for offer in offers.values():
        assert (offer.region, offer.country, offer.availability, offer.interconnect) == ("us", "US", "unknown", None)


def test_the_mi355x_lands_once_it_has_a_price(replay):
    replay.put("tensorwave", "pricing.html", PAGE.replace("Contact sales</td>", "$2.85 / GPU / hr</td>"))
    mi355x = by_id(hook(replay).fetch_batch())["mi355x.8x"]
    assert (mi355x.gpu_model, mi355x.gpu_memory_gb, mi355x.price_per_hour) == ("MI355X", 288.0, Decimal("22.8000"))


@pytest.mark.parametrize(
    ("edit", "reason", "gone"),
    [
        (("$1.95<span class=unit> / GPU / hr</span>", "$15.60 per node"), "price '$15.60 per node' is not per GPU-hour", "mi325x.8x"),
        (("<td>192 GB HBM3</td><td>8 GPUs</td>", "<td>192 GB HBM3</td><td>a node</td>"), "no GPU count in 'a node'", "mi300x.8x"),
        (("<td>256 GB HBM3E</td>", "<td>HBM3E</td>"), "no size in GB in 'HBM3E'", "mi325x.8x"),
    ],
    ids=["price-unit", "node", "memory"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, edit, reason, gone):
    whole = hook(replay).fetch_batch()
    assert PAGE.count(edit[0]) == 1
    replay.put("tensorwave", "pricing.html", PAGE.replace(*edit))
    broken = hook(replay).fetch_batch()
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {gone}


def test_a_renamed_column_is_a_changed_page(replay):
    replay.put("tensorwave", "pricing.html", PAGE.replace("<th>On-demand</th>", "<th>Price</th>"))
    with pytest.raises(PayloadError, match=r"tensorwave: malformed payload: 'table.pricing-table' has no column 'On-demand'"):
        hook(replay).fetch_batch()
