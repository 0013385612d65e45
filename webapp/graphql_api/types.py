"""The GraphQL types, made from the REST API's schemas (strawberry's pydantic integration), so each
field has one definition, one description and the REST API's name (snake_case, as in REST, the
WebSocket and SSE). Resolvers answer with those schemas, filled with what the REST views render.

Times are the `DateTime` scalar written as REST writes them (ISO 8601, UTC as `Z`); on input it is
read by the REST parameter it stands for (`search.Timestamp`: ISO 8601 with a timezone). Names that
REST types as a `Literal` (a provider's `source`, the Vault's `status`) are strings here; so are the
price updates' names (availability, ...) and their prices numbers, as in the feed's JSON.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.experimental import pydantic

from analytics import api as analytics
from gpubroker.schema import PriceChange
from offers import api as offers
from offers import schemas


def _as_rest_writes(value: datetime) -> str:
    """ISO 8601, UTC as `Z`: what orjson's OPT_UTC_Z writes (gpubroker_web.responses.render)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


DateTime = strawberry.scalar(
    name="DateTime", serialize=_as_rest_writes, parse_value=lambda value: value,
    description="ISO 8601 with a timezone, e.g. 2026-12-01T12:00:00Z (UTC is written as Z)",
)  # fmt: skip
SCALARS = {datetime: DateTime}


@pydantic.input(model=offers.OfferQuery, all_fields=True, description="GET /api/v1/offers's parameters")
class OfferFilters:
    pass


@pydantic.type(model=schemas.OfferOut, all_fields=True)
class Offer:
    pass


@pydantic.type(model=schemas.OfferPage, all_fields=True, description="GET /api/v1/offers")
class OfferPage:
    pass


@pydantic.type(model=schemas.PricePoint, all_fields=True)
class PricePoint:
    pass


@pydantic.type(model=schemas.OfferHistory, all_fields=True, description="GET /api/v1/offers/{provider}/{offer_id}/history")
class OfferHistory:
    pass


@pydantic.type(model=schemas.ProviderOut, all_fields=True)
class ProviderStatus:
    source: str


@pydantic.type(model=schemas.VaultOut, all_fields=True)
class Vault:
    status: str


@pydantic.type(model=schemas.ProviderList, all_fields=True, description="GET /api/v1/providers")
class ProviderList:
    pass


@pydantic.type(model=analytics.CheapestOffer, all_fields=True)
class CheapestOffer:
    pass


@pydantic.type(model=analytics.GpuOut, all_fields=True)
class GpuOverview:
    pass


@pydantic.type(model=analytics.GpuList, all_fields=True, description="GET /api/v1/gpus")
class GpuList:
    pass


@pydantic.type(model=analytics.WindowOut, all_fields=True)
class PriceWindow:
    pass


@pydantic.type(model=analytics.GpuStats, all_fields=True, description="GET /api/v1/gpus/{gpu}/stats")
class GpuStats:
    pass


@pydantic.type(model=PriceChange, all_fields=True, description="a `price_update` of the live feed: the price change it carries")
class PriceUpdate:  # as the feed's JSON has them: names as strings, prices as numbers
    type: str
    old_price: float
    new_price: float
    price_per_gpu: float
    direction: str
    gpu_form_factor: str | None
    availability: str
    interconnect: str | None
    pricing_type: str
