from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gpubroker.schema import OFFER_FIELDS, Offer

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
BASE = dict(
    provider="vastai", offer_id="1", instance_type="1x RTX 4090", gpu_model="RTX4090", gpu_vendor="NVIDIA",
    gpu_count=1, gpu_memory_gb=24.0, price_per_hour="0.35", region="Texas, US", observed_at=NOW,
)  # fmt: skip


def offer(**changes) -> Offer:
    return Offer(**(BASE | changes))


@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), allow_nan=False, places=8))
def test_prices_are_stored_to_four_places(price):
    stored = offer(price_per_hour=price).price_per_hour
    assert stored == price.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert stored.as_tuple().exponent == -4


@pytest.mark.parametrize("price", [0, -1, "abc", None, float("nan"), "1e12"])
def test_non_positive_or_non_numeric_prices_are_rejected(price):
    with pytest.raises(ValidationError):
        offer(price_per_hour=price)


@pytest.mark.parametrize("count", [0, -1, 17])
def test_an_offer_has_one_to_sixteen_gpus(count):
    with pytest.raises(ValidationError, match="gpu_count"):
        offer(gpu_count=count)


def test_naive_timestamps_and_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="timezone-aware"):
        offer(observed_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="extra"):
        offer(colour="green")


def test_django_model_mirrors_the_offer_schema():
    from offers.models import Offer as OfferRow

    bookkeeping = {"id", "first_seen", "last_seen", "previous_price", "previous_availability"}  # the store's, not an offer's
    columns = {f.name for f in OfferRow._meta.get_fields()} - bookkeeping
    assert columns == set(OFFER_FIELDS)
