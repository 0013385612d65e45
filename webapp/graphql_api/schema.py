"""GraphQL at /graphql: the REST API's reads and the live feed's price updates, one schema.

    query        offers(filters)                            GET /api/v1/offers (every parameter)
                 history(provider, offer_id, since, until)  GET /api/v1/offers/{provider}/{offer_id}/history
                 providers                                  GET /api/v1/providers
                 gpus                                       GET /api/v1/gpus
                 gpu_stats(gpu, window, by)                 GET /api/v1/gpus/{gpu}/stats
    subscription price_updates(channels)  the feed's `price_update` events on any of `channels` (the
                 WebSocket feed's names; default `price_updates`, or `gpu:H100`, `provider:vastai`...)

Each resolver calls the function its REST view calls and answers with the REST schema, validated
(graphql_api.types are made from those schemas): the same fields and values. Queries go over HTTP
(POST, or GET) or the WebSocket, subscriptions over the WebSocket (`graphql-transport-ws`), each one a
subscriber of this worker's feed hub (feed.hub), as a `/ws/` client is. Keys and plan limits are the
REST API's (graphql_api.limits); errors say what REST would say (graphql_api.errors).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from datetime import datetime, timezone

import orjson
import strawberry
from graphql import GraphQLError
from pydantic import TypeAdapter
from strawberry.extensions import MaskErrors, MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig

from analytics import api as analytics_api
from analytics import queries as analytics
from feed import protocol
from feed.hub import Interrupted, Subscriber, hub
from gpubroker.schema import PriceChange
from graphql_api.errors import NamedValues, answering, refused, unexpected
from graphql_api.limits import Admission
from graphql_api.types import SCALARS, GpuList, GpuStats, OfferFilters, OfferHistory, OfferPage, PriceUpdate, ProviderList
from offers import api as offers_api
from offers import providers, queries, schemas

log = logging.getLogger(__name__)
MAX_TOKENS = 2000  # a document's tokens at most: parsing stays cheap whatever a client sends
PRICE_UPDATE = '{"type":"price_update",'  # how the feed's price_update frames start (protocol.FeedEvent.frame)
_OFFER_ID = TypeAdapter(offers_api.OfferId)


@strawberry.type
class Query:
    @strawberry.field(description="Offers matching every filter given, sorted, one page at a time (as GET /api/v1/offers)")
    async def offers(self, info: strawberry.Info, filters: OfferFilters | None = None) -> OfferPage | None:
        with answering("filters"):
            query = filters.to_pydantic() if filters is not None else offers_api.OfferQuery()
            page = await queries.offer_page(query, info.context.data_version)
        return schemas.OfferPage.model_validate(page)

    @strawberry.field(description="Every price one offer had (as GET /api/v1/offers/{provider}/{offer_id}/history)")
    async def history(self, provider: offers_api.Provider, offer_id: str, since: datetime | None = None,
                      until: datetime | None = None) -> OfferHistory | None:  # fmt: skip
        # since, until: as the client wrote them (types.DateTime); HistoryQuery reads them as REST does
        with answering("offer_id"):
            offer_id = _OFFER_ID.validate_python(offer_id)
        with answering():
            window = offers_api.HistoryQuery(since=since, until=until)
            found = await queries.offer_history(provider.value, offer_id, window.since, window.until)
        if found is None:
            raise refused("offer_id", f"no offer {offer_id!r} at {provider.value}", status=404)
        return schemas.OfferHistory.model_validate(found)

    @strawberry.field(description="Every provider's status, and the Vault's (as GET /api/v1/providers)")
    async def providers(self) -> ProviderList | None:
        with answering():
            items, vault = await asyncio.gather(providers.statuses(), providers.vault())
        return schemas.ProviderList.model_validate({"items": items, "vault": vault, "generated_at": datetime.now(timezone.utc)})

    @strawberry.field(description="Every GPU model: cheapest now, median, offers, 24 h change (as GET /api/v1/gpus)")
    async def gpus(self) -> GpuList | None:
        now = datetime.now(timezone.utc)
        with answering():
            items = await analytics.gpu_overview(now)
        return analytics_api.GpuList.model_validate({"items": items, "generated_at": now})

    @strawberry.field(description="A GPU's 1-minute price series (as GET /api/v1/gpus/{gpu}/stats); window: 15m, 1h, "
                                  "6h, 24h or 7d; by: all, provider or continent")  # fmt: skip
    async def gpu_stats(self, gpu: str, window: str = "1h", by: str = "all") -> GpuStats | None:
        with answering():
            asked = analytics_api.StatsQuery(window=window, by=by)
        with answering("gpu"):
            model = analytics_api.canonical(gpu)
        now = datetime.now(timezone.utc)
        since = now - analytics_api.WINDOWS[asked.window]
        with answering():
            series = await analytics.gpu_series(model, since, asked.by)
        return analytics_api.GpuStats.model_validate({"gpu": model, "window": asked.window, "by": asked.by, "since": since,
                                                      "series": series, "generated_at": now})  # fmt: skip


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Price changes as the live feed carries them, on any of `channels` (the "
                                         "WebSocket feed's names: price_updates, gpu:<model>, provider:<slug>, "
                                         "region:<region>), each once, from when the subscription starts")  # fmt: skip
    async def price_updates(self, channels: list[str] | None = None) -> AsyncGenerator[PriceUpdate, None]:
        wanted = await _channels(channels or [protocol.PRICE_UPDATES])
        return _price_updates(wanted)


async def _channels(requested: list[str]) -> list[str]:
    """The channels, canonical; a GraphQL error naming `channels` for one nobody can subscribe to."""
    with answering():
        message = protocol.Subscribe(type="subscribe", channels=requested)
        regions = await hub().known_regions()
    try:
        return [protocol.canonical(channel, regions) for channel in message.channels]
    except protocol.BadChannel as bad:
        raise refused("channels", str(bad)) from None


async def _price_updates(channels: list[str]) -> AsyncGenerator[PriceChange, None]:
    """This worker's feed on `channels`, as a hub subscriber: its price updates, until the client stops
    (or the feed does: too slow to keep up, or Redis gone; the error says which, resubscribe)."""
    feed, subscriber = hub(), Subscriber()
    await feed.join(subscriber)
    feed.subscribe(subscriber, channels)
    try:
        while True:
            at, frame = await subscriber.next_frame()
            if at is not None and frame.startswith(PRICE_UPDATE):
                yield protocol.event_of(orjson.loads(frame), PriceChange)
    except Interrupted as stop:
        raise GraphQLError(stop.reason, extensions={"close_code": stop.code}) from None
    finally:
        feed.leave(subscriber)


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Log what went wrong on our side; a client's mistakes are its answer, not our log."""
        for error in errors:
            if unexpected(error):
                log.error("GraphQL resolver failed: %s", type(error.original_error).__name__, exc_info=error.original_error)


schema = Schema(
    query=Query, subscription=Subscription, scalar_overrides=SCALARS,
    config=StrawberryConfig(auto_camel_case=False),
    extensions=[lambda: MaxTokensLimiter(MAX_TOKENS), NamedValues, Admission, lambda: MaskErrors(should_mask_error=unexpected)],
)  # fmt: skip
