"""The live feed's protocol (WebSocket `/ws/providers/` and SSE `/api/v1/stream`).

Channels a client subscribes to:
  price_updates       every price change (and significant change) and price anomaly
  provider:<slug>     everything about one provider (its prices, availability, anomalies, health)
  gpu:<model>         one GPU model, any alias (`gpu:RTX 4090` is `gpu:RTX4090`)
  region:<region>     one vendor region, as offers name it (case-insensitive)
  health_status       provider health changes and health scores
  availability        offers appearing, vanishing or changing availability

Client -> server, JSON text frames:
  {"type": "subscribe" | "unsubscribe", "channel": ...} or {..., "channels": [...]}
  {"type": "ping", "timestamp": ...}                       -> pong
  {"type": "get_offers", "filters": {..., "page", "per_page"}} -> offers_list (the REST search; `page`
                                                              and `per_page` may also sit beside `filters`)
  {"type": "get_providers"}                                -> providers_list
  {"type": "resume", "session_id": ..., "last_event_id": ...} -> resumed, then what was missed

Server -> client, every frame flat (its fields at top level, no wrapper):
  connection_established {session_id, available_subscriptions, subscriptions, message, timestamp}
  subscribed / unsubscribed {channel (when one was asked), channels, subscriptions}
  pong {timestamp: the client's (the server's time when it sent none), server_time}
  offers_list {total, items, filters (as read, page and per_page included), page, per_page, has_next, ...}
  providers_list {providers: [{name, healthy, weight, avg_latency_ms, slug, ...}], timestamp}
  resumed, heartbeat, error {code, message, timestamp}
and the events, `{"type", "id", <the event's fields>}`, where `id` is the event's position in the
feed (send it back as `last_event_id` / SSE `Last-Event-ID` to resume) and `event_type` the event's
own type on Kafka:
  price_update (PriceChange: provider, offer_id, old_price, new_price, change_percent, timestamp),
  significant_price_change (SignificantPriceChange, the same fields: beside a price_update of 5% or more),
  availability_update (AvailabilityChange: provider, offer_id, availability, timestamp),
  anomaly_alert (Anomaly), health_update (provider, healthy, reason, timestamp: a ProviderEvent, a
  health change or a quarantine, healthy while its status is healthy or degraded; or a HealthScore,
  `event_type` "health_score", every minute, healthy while its score is above 0: some call succeeded).
`timestamp` is when the stream detected the event (`detected_at`), a ProviderEvent's own `timestamp`.
SSE (`/api/v1/stream`) carries the same frames as its `data:` lines.

Error codes (the socket stays open after each): invalid_json, invalid_message (names the field,
e.g. `get_offers: filters.region: ...`), unknown_type, binary_frame, frame_too_large, bad_channel,
too_many_subscriptions, bad_query (a name GPUBroker does not know, paging past the end),
unavailable (the database cannot answer now: retry), unknown_session, feed_unavailable, events_lost.
Close codes: 4008 (too slow to keep up), 1012 (the feed restarts: reconnect and resume), 1009 (a
frame over 1 MiB), 4401/4429/4503 (the gateway, where the server cannot refuse a connect in HTTP:
bad key, rate limit, PostgreSQL unavailable for a key the worker has not seen; retry).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from gpubroker import gpus, search, settings
from gpubroker.schema import (Anomaly, AvailabilityChange, HealthScore, PriceChange, ProviderEvent,
                              SignificantPriceChange)  # fmt: skip
from gpubroker.vendors import VENDORS

PRICE_UPDATES, HEALTH, AVAILABILITY = "price_updates", "health_status", "availability"
KINDS = ("provider", "gpu", "region")
AVAILABLE_SUBSCRIPTIONS = [PRICE_UPDATES, HEALTH, AVAILABILITY, "provider:<slug>", "gpu:<model>", "region:<region>"]
MAX_SUBSCRIPTIONS = 64  # per connection
MAX_FRAME_BYTES = 64 * 1024  # larger client frames get an error (the server closes above 1 MiB: 1009)


class BadChannel(ValueError):
    """A channel nobody can subscribe to: unknown kind, provider, GPU or region."""


_EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_STREAM_ID_MAX = 2**64 - 1  # each half of a Redis stream id


def event_id(text: str) -> str:
    """An event's feed position as a client sends it back (`last_event_id`, SSE `Last-Event-ID`):
    `<ms>-<seq>` in ASCII digits, each below 2^64 (a Redis stream id); ValueError otherwise."""
    if not _EVENT_ID.fullmatch(text) or any(int(half) > _STREAM_ID_MAX for half in text.split("-")):
        raise ValueError("an event id is two whole numbers below 2^64 joined by '-', as the feed sent it, e.g. 1764158400000-0")
    return text


EventId = Annotated[str, AfterValidator(event_id)]
Channel = search.text(200)
SessionId = search.text(64)
Echo = search.text(200, 0) | Annotated[int, Field(ge=-(2**63), lt=2**63)] | float  # what a pong can carry back


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def canonical(channel: str, regions: dict[str, str]) -> str:
    """`gpu:rtx_4090` -> `gpu:RTX4090`; BadChannel for anything not subscribable.

    `regions`: lower-case region -> region as offers spell it (the regions that have offers).
    """
    if channel in (PRICE_UPDATES, HEALTH, AVAILABILITY):
        return channel
    kind, sep, value = channel.partition(":")
    value = value.strip()
    if not sep or kind not in KINDS or not value:
        raise BadChannel(f"unknown channel {channel!r}; use one of {', '.join(AVAILABLE_SUBSCRIPTIONS)}")
    if kind == "provider" and value not in VENDORS:
        raise BadChannel(f"unknown provider {value!r}; known: {', '.join(sorted(VENDORS))}")
    if kind == "gpu":
        try:
            value = gpus.resolve(value).model.name
        except gpus.UnknownGpu:
            raise BadChannel(f"unknown GPU model {value!r}; use a name such as H100, A100, RTX4090") from None
    if kind == "region":
        if value.lower() not in regions:
            raise BadChannel(f"unknown region {value!r}: no offer is listed there")
        value = regions[value.lower()]
    return f"{kind}:{value}"


# --- client messages ----------------------------------------------------------------------------
class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Subscribe(_Message):
    type: Literal["subscribe", "unsubscribe"]
    channels: list[Channel] = Field(min_length=1, max_length=MAX_SUBSCRIPTIONS)

    @model_validator(mode="before")
    @classmethod
    def _single_channel(cls, data: Any) -> Any:
        """Also accept `{"channel": "gpu:H100"}` (one channel)."""
        if isinstance(data, dict) and "channels" not in data and isinstance(data.get("channel"), str):
            return {**data, "channels": [data["channel"]]}
        return data


class Ping(_Message):
    type: Literal["ping"]
    timestamp: Echo | None = None


class GetOffers(_Message):
    """`filters` are the REST search's parameters; `page` and `per_page` may sit beside them."""

    type: Literal["get_offers"]
    filters: search.OfferQuery = Field(default_factory=search.OfferQuery)

    @model_validator(mode="before")
    @classmethod
    def _paging_beside_filters(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("filters", {}), dict):
            paging = {name: data[name] for name in ("page", "per_page") if name in data}
            return {**data, "filters": {**data.get("filters", {}), **paging}}
        return data


class GetProviders(_Message):
    type: Literal["get_providers"]


class Resume(_Message):
    type: Literal["resume"]
    session_id: SessionId
    last_event_id: EventId | None = None


ClientMessage = TypeAdapter(Annotated[Subscribe | Ping | GetOffers | GetProviders | Resume, Field(discriminator="type")])


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def parse(text: str) -> Subscribe | Ping | GetOffers | GetProviders | Resume:
    """One client frame; ProtocolError (code + message) when it is not a message we know."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise ProtocolError("invalid_json", "frames must be JSON objects, e.g. {\"type\": \"ping\"}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ProtocolError("invalid_message", 'a message is a JSON object with a "type"')
    try:
        return ClientMessage.validate_python(raw)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ProtocolError("unknown_type", f"unknown message type {raw['type']!r}") from None
        where = ".".join(str(p) for p in first["loc"][1:])
        raise ProtocolError("invalid_message", f"{raw['type']}: {where + ': ' if where else ''}{first['msg']}") from None


def error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message, "timestamp": now()}


# --- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedEvent:
    """One event as the feed carries it: its client type, the channels it reaches, its frame's body."""

    kind: str
    event_id: str
    channels: tuple[str, ...]
    body: str  # the frame's other fields, a JSON object: serialised once, sent as is to every subscriber

    def frame(self, position: str) -> str:
        """The client frame, built by concatenation: `body` is already a JSON object, never empty."""
        return f'{{"type":"{self.kind}","id":"{position}",{self.body[1:]}'


class PoisonMessage(ValueError):
    """A Kafka message that is not an event of its topic's contract (sent to the dead-letter topic)."""


_TOPICS = {
    settings.Topics.PRICE_CHANGES: {"price_change": PriceChange, "significant_price_change": SignificantPriceChange,
                                    "availability_change": AvailabilityChange},
    settings.Topics.ANOMALIES: {"anomaly": Anomaly},
    settings.Topics.PROVIDER_EVENTS: {"health_update": ProviderEvent, "quarantine": ProviderEvent},
    settings.Topics.HEALTH_SCORES: {"health_score": HealthScore},
}
TOPICS = tuple(_TOPICS)


def from_kafka(topic: str, value: bytes | None) -> FeedEvent | None:
    """The feed event of a Kafka message; None for a type the feed does not carry; PoisonMessage if malformed."""
    try:
        raw = json.loads(value or b"")
        model = _TOPICS[topic].get(raw.get("type")) if isinstance(raw, dict) else None
        if model is None:
            if isinstance(raw, dict) and isinstance(raw.get("type"), str):
                return None  # e.g. a future event type: not for clients yet
            raise PoisonMessage(f"{topic}: not an event object")
        event = model.model_validate(raw)
    except (ValueError, KeyError) as broken:
        raise PoisonMessage(f"{topic}: {str(broken)[:300]}") from None
    body = body_of(event)
    if isinstance(event, SignificantPriceChange):
        return FeedEvent("significant_price_change", event.event_id, _offer_channels(event, PRICE_UPDATES), body)
    if isinstance(event, PriceChange):
        return FeedEvent("price_update", event.event_id, _offer_channels(event, PRICE_UPDATES), body)
    if isinstance(event, AvailabilityChange):
        return FeedEvent("availability_update", event.event_id, _offer_channels(event, AVAILABILITY), body)
    if isinstance(event, Anomaly):
        return FeedEvent("anomaly_alert", event.event_id, _offer_channels(event, PRICE_UPDATES), body)
    return FeedEvent("health_update", event.event_id, (HEALTH, f"provider:{event.provider}"), body)  # health, scores


def _offer_channels(event: PriceChange | AvailabilityChange | Anomaly, everything: str) -> tuple[str, ...]:
    return (everything, f"provider:{event.provider}", f"gpu:{event.gpu}", f"region:{event.region}")


HEALTHY_STATUSES = frozenset({"healthy", "degraded"})  # a ProviderEvent's statuses in which the provider serves
Event = PriceChange | AvailabilityChange | Anomaly | ProviderEvent | HealthScore


def body_of(event: Event) -> str:
    """An event's frame body: its fields beside the contract's (`timestamp`; for health, `healthy` and
    `reason`), its own `type` as `event_type` (the frame's `type` is the client's name for it)."""
    fields = event.model_dump(mode="json")
    fields["event_type"] = fields.pop("type")
    if isinstance(event, ProviderEvent):
        fields["healthy"] = event.status in HEALTHY_STATUSES
    elif isinstance(event, HealthScore):
        fields |= {"healthy": event.score > 0, "timestamp": fields["detected_at"],
                   "reason": f"health score {event.score}: {event.failures} of {event.calls} calls failed"}  # fmt: skip
    else:
        fields["timestamp"] = fields["detected_at"]
    return orjson.dumps(fields).decode()


_MODELS = {kind: model for models in _TOPICS.values() for kind, model in models.items()}


def body_of_data(data: str) -> str:
    """The frame body of an event as the feed's stream kept it before frames were flat (its `data`)."""
    raw = json.loads(data)
    return body_of(_MODELS[raw["type"]].model_validate(raw))


def event_of(frame: dict, model: type[Event]) -> Event:
    """The event an event frame carries, as `model` (the fields the model has, `event_type` its type)."""
    fields = {name: frame[name] for name in model.model_fields if name in frame}
    return model.model_validate(fields | {"type": frame["event_type"]})
