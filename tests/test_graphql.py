"""GraphQL at /graphql (webapp/graphql_api), asked with a real GraphQL client (gql: HTTPX for queries,
websockets + graphql-transport-ws for the subscription) of the whole application served by uvicorn.

- Queries answer what REST answers for the same parameters, field for field (offers for any filters,
  a property; providers, history, GPUs, GPU stats).
- Bad arguments are GraphQL errors naming the argument, with REST's status in `extensions`.
- Keys and plan limits are REST's: the free plan's 10 per minute, each further root field counted,
  WebSocket connects counted, unknown keys refused.
- A subscription receives a price update pushed through the feed (the bridge's append to the Redis
  stream, as in production) exactly once, and nothing of other channels or kinds.
"""

from __future__ import annotations

import asyncio
import types
import typing
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from pydantic import BaseModel
from websockets.exceptions import InvalidStatus

from feed import bridge as feed_bridge
from feed import hub as feed_hub
from gpubroker.schema import Availability, PricingType
from gpubroker.search import Sort
from tests.test_feed import change, record
from tests.webapp_fixtures import make_key, offer_row

NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
FREE_LIMIT = 10  # the seed's free plan: requests per sliding minute


# --- asking ---------------------------------------------------------------------------------------
def selection(model: type[BaseModel], leave: tuple[str, ...] = ()) -> str:
    """Every field of a REST schema as a GraphQL selection (nested schemas spelt out), less `leave`."""
    fields = []
    for name, info in model.model_fields.items():
        inner = _schema_in(info.annotation)
        if name not in leave:
            fields.append(f"{name} {{ {selection(inner, leave)} }}" if inner else name)
    return " ".join(fields)


def _schema_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((found for arg in typing.get_args(annotation) if (found := _schema_in(arg))), None)


def client(url: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(transport=HTTPXAsyncTransport(url=f"{url}/graphql", headers=headers, timeout=30))


async def ask(url: str, document: str, key: str | None = None, **variables) -> dict:
    async with client(url, key) as session:
        return await session.execute(GraphQLRequest(document, variable_values=variables))


async def refused(url: str, document: str, key: str | None = None, **variables) -> dict:
    """The first error of a query that must fail."""
    with pytest.raises(TransportQueryError) as failed:
        await ask(url, document, key, **variables)
    return failed.value.errors[0]


def subscribing(url: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = WebsocketsTransport(url=url.replace("http://", "ws://") + "/graphql", headers=headers,
                                    subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])  # fmt: skip
    return Client(transport=transport)


def without_clock(answer: dict) -> dict:
    """An answer less what depends on the moment it was computed."""
    kept = {k: v for k, v in answer.items() if k not in ("generated_at", "since")}
    if "items" in kept:
        kept["items"] = [{k: v for k, v in i.items() if k != "data_age_seconds"} for i in kept["items"]]
    return kept


def ages_as_of_their_answer(page: dict) -> bool:
    """Each offer's data age is counted up to the moment its answer was computed."""
    computed = datetime.fromisoformat(page["generated_at"])
    return all(i["data_age_seconds"] == int((computed - datetime.fromisoformat(i["observed_at"])).total_seconds())
               for i in page["items"])  # fmt: skip


def rest(url: str, key: str, path: str, **params) -> dict:
    answer = httpx.get(f"{url}/api/v1{path}", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- data -----------------------------------------------------------------------------------------
@pytest.fixture
def site(live_webapp):
    """The live application with offers of three GPUs at three providers, one offer's price history
    and the stream's 1-minute windows."""
    from analytics.models import GpuPriceAggregate
    from offers.models import Offer, PriceHistory

    Offer.objects.bulk_create([
        offer_row("h1", price="2.50"), offer_row("h2", price="2.00", provider="lambda", region="us-east-1"),
        offer_row("h3", price="3.10", availability="limited", spot_price=Decimal("1.50")),
        offer_row("h8", price="24.00", gpu_count=8, pricing_type="reserved", commitment_months=12),
        offer_row("a1", gpu="A100", price="1.10", provider="runpod", gpu_memory_gb=40),
        offer_row("a2", gpu="A100", price="1.40", provider="lambda", availability="unavailable"),
        offer_row("r1", gpu="RTX4090", price="0.35", provider="vastai", gpu_memory_gb=24, country="NO", continent="EU"),
    ])  # fmt: skip
    PriceHistory.objects.bulk_create([
        PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal(p), observed_at=NOW - timedelta(days=d))
        for p, d in (("3.00", 2), ("1.20", 1), ("2.50", 0))
    ])  # fmt: skip
    GpuPriceAggregate.objects.bulk_create([
        GpuPriceAggregate(gpu="H100", dimension=dimension, value=value, window_start=start, window_end=start + timedelta(minutes=1),
                          min_price_per_gpu=Decimal("2.00"), avg_price_per_gpu=Decimal("2.50"),
                          max_price_per_gpu=Decimal("3.10"), offers=3, available=2)
        for start in (NOW - timedelta(minutes=30), NOW - timedelta(minutes=10), NOW - timedelta(hours=24, minutes=30))
        for dimension, value in (("provider", "vastai"), ("provider", "lambda"), ("continent", "EU"))
    ])  # fmt: skip
    return live_webapp


@pytest.fixture
def key(transactional_db) -> str:
    return make_key("unlimited")


# --- queries answer what REST answers -------------------------------------------------------------
OFFERS = "query($f: OfferFilters) { offers(filters: $f) { %s } }"


def _offer_page_selection() -> str:
    from offers import schemas

    return selection(schemas.OfferPage)


rest_filters = st.fixed_dictionaries({}, optional={
    "gpu": st.sampled_from(["H100", "h100 sxm", "A100", "RTX 4090"]),
    "provider": st.lists(st.sampled_from(["vastai", "lambda", "runpod"]), min_size=1, max_size=2, unique=True),
    "min_gpu_count": st.integers(1, 8),
    "max_price": st.sampled_from([0.5, 2.0, 2.5, 30.0]),
    "availability": st.lists(st.sampled_from([a.value for a in Availability]), min_size=1, max_size=2, unique=True),
    "pricing_type": st.lists(st.sampled_from([p.value for p in PricingType]), min_size=1, max_size=2, unique=True),
    "spot": st.booleans(),
    "sort": st.sampled_from([s.value for s in Sort]),
    "page": st.integers(1, 3),
    "per_page": st.integers(1, 4),
})  # fmt: skip


def as_graphql(params: dict) -> dict:
    """REST's parameters as the GraphQL input: enums by their member names."""
    names = {"sort": Sort, "availability": Availability, "pricing_type": PricingType}
    out = dict(params)
    for field, enum in names.items():
        if field in out:
            out[field] = [enum(v).name for v in out[field]] if isinstance(out[field], list) else enum(out[field]).name
    return out


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=rest_filters)
async def test_offers_answer_what_rest_answers_for_any_filters(site, key, params):
    expected = await asyncio.to_thread(rest, site, key, "/offers", **params)
    answer = (await ask(site, OFFERS % _offer_page_selection(), key, f=as_graphql(params)))["offers"]
    assert without_clock(answer) == without_clock(expected)
    assert ages_as_of_their_answer(answer) and ages_as_of_their_answer(expected)  # REST's may come from its cache


async def test_providers_history_gpus_and_gpu_stats_answer_what_rest_answers(site, key):
    from analytics import api as analytics
    from offers import schemas

    document = (
        "query($since: DateTime) {"
        f" providers {{ {selection(schemas.ProviderList)} }}"
        f" history(provider: vastai, offer_id: \"h1\", since: $since) {{ {selection(schemas.OfferHistory)} }}"
        f" gpus {{ {selection(analytics.GpuList)} }}"
        f" gpu_stats(gpu: \"h100\", window: \"1h\", by: \"provider\") {{ {selection(analytics.GpuStats, ('continent',))} }} }}"
    )  # fmt: skip
    since = (NOW - timedelta(hours=36)).isoformat()
    answer = await ask(site, document, key, since=since)
    assert without_clock(answer["providers"]) == without_clock(await asyncio.to_thread(rest, site, key, "/providers"))
    history = await asyncio.to_thread(rest, site, key, "/offers/vastai/h1/history", since=since)
    assert without_clock(answer["history"]) == without_clock(history)
    assert [p["price_per_hour"] for p in answer["history"]["items"]] == [1.2, 2.5]  # since 36 h ago, oldest first
    assert answer["history"]["since"] == history["since"]
    assert without_clock(answer["gpus"]) == without_clock(await asyncio.to_thread(rest, site, key, "/gpus"))
    stats = await asyncio.to_thread(rest, site, key, "/gpus/h100/stats", window="1h", by="provider")
    assert without_clock(answer["gpu_stats"]) == without_clock(stats)
    assert len(answer["gpu_stats"]["series"]) == 4  # two windows of the hour, two providers each


# --- bad arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("document", "variables", "named", "status"),
    [(OFFERS % "total", {"f": {"gpu": "H1\x0000"}}, "filters.gpu: must not contain a NUL", 422),
     (OFFERS % "total", {"f": {"min_gpu_count": 0}}, "filters.min_gpu_count: ", 422),
     (OFFERS % "total", {"f": {"per_page": 501}}, "filters.per_page: ", 422),
     (OFFERS % "total", {"f": {"max_price": 1e300}}, "filters.max_price: ", 422),
     (OFFERS % "total", {"f": {"at": "2026-12-01T12:00:00"}}, "filters.at: Value error, give a timezone", 422),
     (OFFERS % "total", {"f": {"at": 17}}, "filters.at: ", 422),
     (OFFERS % "total", {"f": {"gpu": "Voodoo5"}}, "unknown GPU model 'Voodoo5'", 400),
     (OFFERS % "total", {"f": {"page": 10000, "per_page": 2}}, "passes the last reachable result", 400),
     (OFFERS % "total", {"f": {"min_gpu_count": 4, "max_gpu_count": 2}}, "min_gpu_count 4 is above max_gpu_count 2", 400),
     ('query($o: String!) { history(provider: vastai, offer_id: $o) { offer_id } }', {"o": "x\x00"}, "offer_id: ", 422),
     ('query($o: String!) { history(provider: vastai, offer_id: $o) { offer_id } }', {"o": "nope"},
      "offer_id: no offer 'nope' at vastai", 404),
     ('{ history(provider: vastai, offer_id: "h1", until: "yesterday") { offer_id } }', {}, "until: ", 422),
     ('{ gpu_stats(gpu: "H100", window: "2h") { gpu } }', {}, "window: ", 422),
     ('{ gpu_stats(gpu: "H100", by: "planet") { gpu } }', {}, "by: ", 422),
     ('{ gpu_stats(gpu: "Voodoo5") { gpu } }', {}, "gpu: unknown GPU model", 400)],
)  # fmt: skip
async def test_bad_arguments_are_errors_naming_the_argument_with_rest_s_status(site, key, document, variables, named, status):
    error = await refused(site, document, key, **variables)
    assert named in error["message"], error
    assert error["extensions"]["status"] == status


@pytest.mark.parametrize(
    ("filters", "named"),
    [("{per_page: 1099511627776}", "filters.per_page: Int cannot represent"), ("{page: -99999999999999999999}", "filters.page: "),
     ('{sort: "price"}', "filters.sort: Enum 'Sort' cannot represent"), ("{provider: [nosuchcloud]}", "filters.provider.0: "),
     ("{max_price: 1e999}", "filters.max_price: "), ("{weather: 1}", "filters: Expected value of type 'OfferFilters' not to include unknown field 'weather'"),
     ('"H100"', "filters: Expected value of type 'OfferFilters'")],
)  # fmt: skip
async def test_values_graphql_cannot_read_are_validation_errors_naming_the_argument(site, key, filters, named):
    answer = httpx.post(f"{site}/graphql", json={"query": f"{{ offers(filters: {filters}) {{ total }} }}"},
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text  # GraphQL's validation, not a 500
    assert named in answer.json()["errors"][0]["message"], answer.json()


async def test_values_in_variables_are_named_too(site, key):
    error = await refused(site, OFFERS % "total", key, f={"per_page": 2**40})
    assert "Variable '$f' has invalid value at .per_page: Int cannot represent non 32-bit" in error["message"]


async def test_a_failing_resolver_says_unexpected_error_and_no_more(site, key, monkeypatch):
    from offers import providers

    async def broken():
        raise RuntimeError("the internals, a password=hunter2")

    monkeypatch.setattr(providers, "statuses", broken)
    error = await refused(site, "{ providers { generated_at } gpus { generated_at } }", key)
    assert error["message"] == "Unexpected error." and "hunter2" not in str(error)


# --- keys and plan limits -------------------------------------------------------------------------
async def test_anonymous_clients_get_the_free_plan_and_429_after_it(site):
    for _ in range(FREE_LIMIT):
        assert (await ask(site, "{ gpus { generated_at } }"))["gpus"]["generated_at"]
    with pytest.raises(TransportServerError) as over:
        await ask(site, "{ gpus { generated_at } }")
    assert over.value.code == 429
    answer = httpx.post(f"{site}/graphql", json={"query": "{ gpus { generated_at } }"})
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert answer.json()["plan"] == "free" and answer.headers["ratelimit-limit"] == str(FREE_LIMIT)


async def test_an_unknown_key_is_refused_over_http_and_websocket(site):
    from gateway import keys

    unknown = keys.new_key()
    with pytest.raises(TransportServerError) as refused_http:
        await ask(site, "{ gpus { generated_at } }", unknown)
    assert refused_http.value.code == 401
    with pytest.raises(TransportConnectionFailed) as refused_socket:
        async with subscribing(site, unknown) as session:
            await session.execute(GraphQLRequest("{ gpus { generated_at } }"))
    assert isinstance(refused_socket.value.__cause__, InvalidStatus)
    assert refused_socket.value.__cause__.response.status_code == 401


async def test_each_further_root_field_counts_as_a_request(site):
    four = "{ " + " ".join(f"p{i}: providers {{ generated_at }}" for i in range(4)) + " __typename }"
    assert len(await ask(site, four)) == 5  # 4 requests of the free plan's 10 (introspection is free)
    seven = "{ " + " ".join(f"p{i}: providers {{ generated_at }}" for i in range(7)) + " }"
    error = await refused(site, seven)  # 1 + 6 more would be 11
    assert error["extensions"]["status"] == 429 and error["extensions"]["plan"] == "free"
    assert "rate limit of the free plan exceeded" in error["message"]
    with pytest.raises(TransportServerError) as over:
        await ask(site, "{ gpus { generated_at } }")
    assert over.value.code == 429


async def test_a_websocket_connect_counts_as_the_first_request_of_its_operations(site):
    for _ in range(FREE_LIMIT - 2):
        await ask(site, "{ gpus { generated_at } }")
    async with subscribing(site) as session:  # the 9th request, paying for the first operation's field
        assert (await session.execute(GraphQLRequest("{ gpus { generated_at } }")))["gpus"]
        assert (await session.execute(GraphQLRequest("{ gpus { generated_at } }")))["gpus"]  # the 10th
        with pytest.raises(TransportQueryError) as over:
            await session.execute(GraphQLRequest("{ gpus { generated_at } }"))
        assert over.value.errors[0]["extensions"]["status"] == 429
    with pytest.raises(TransportConnectionFailed) as refused_socket:
        async with subscribing(site) as session:
            await session.execute(GraphQLRequest("{ gpus { generated_at } }"))
    assert refused_socket.value.__cause__.response.status_code == 429


# --- the subscription -----------------------------------------------------------------------------
PRICE_UPDATES = "subscription($c: [String!]) { price_updates(channels: $c) { %s } }"


@pytest.fixture
def publish(isolated_redis):
    """Events into the feed as the bridge appends them (feed.bridge), in the tests' Redis."""
    bridge = feed_bridge.Bridge(client=isolated_redis)
    return lambda *events: asyncio.to_thread(bridge.handle, [record(e) for e in events])


async def test_a_subscription_receives_a_price_update_through_the_feed_exactly_once(site, key, publish):
    from gpubroker.schema import PriceChange, SignificantPriceChange

    fields = " ".join(PriceChange.model_fields)
    async with subscribing(site, key) as session:
        updates = session.subscribe(GraphQLRequest(PRICE_UPDATES % fields, variable_values={"c": ["gpu:h100"]}))

        async def warm_up():  # until the subscription is live (graphql-transport-ws does not say when)
            for n in range(100):
                await publish(change(offer_id=f"warm-up-{n}"))
                await asyncio.sleep(0.1)

        warming = asyncio.ensure_future(warm_up())
        first = await asyncio.wait_for(anext(updates), 15)
        warming.cancel()
        assert first["price_updates"]["offer_id"].startswith("warm-up-")
        sent = change(offer_id="h1", new="1.75")
        significant = SignificantPriceChange(**(sent.model_dump() | {"type": "significant_price_change", "event_id": "sig-1"}))
        await publish(sent, sent, change(gpu="A100", offer_id="a1"), significant)  # a repeat, another GPU, another kind
        await publish(sent, change(offer_id="the-end"))  # a repeat in a later batch
        got = []
        while (update := (await asyncio.wait_for(anext(updates), 10))["price_updates"])["offer_id"] != "the-end":
            got.append(update)
        await updates.aclose()
    got = [u for u in got if not u["offer_id"].startswith("warm-up-")]
    assert len(got) == 1, got
    assert got[0] == sent.model_dump(mode="json") | {"observed_at": "2026-11-26T12:00:00Z", "detected_at": "2026-11-26T12:00:00Z"}
    await until(lambda: not any(h.subscribers for h in list(feed_hub._hubs.values())))  # the hub let it go


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the condition never held")


async def test_a_subscription_to_a_channel_nobody_can_subscribe_to_is_an_error_naming_it(site, key):
    async with subscribing(site, key) as session:
        for channels, says in ((["gpu:Voodoo5"], "channels: unknown GPU model"), (["weather"], "channels: unknown channel"),
                               (["gpu:H1\x0000"], "channels.0: must not contain a NUL")):  # fmt: skip
            with pytest.raises(TransportQueryError) as refused_channel:
                async for _ in session.subscribe(GraphQLRequest(PRICE_UPDATES % "event_id", variable_values={"c": channels})):
                    pass
            assert says in refused_channel.value.errors[0]["message"]


# --- the documentation ----------------------------------------------------------------------------
def test_the_readme_s_examples_are_valid_operations_of_the_schema():
    import re
    from pathlib import Path

    from graphql import parse, validate

    from graphql_api.schema import schema

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (examples,) = re.findall(r"```graphql\n(.*?)```", readme, re.S)
    assert validate(schema._schema, parse(examples)) == []


async def test_a_subscription_over_plain_http_is_refused_with_a_message(site, key):
    answer = httpx.post(f"{site}/graphql", json={"query": "subscription { price_updates { event_id } }"},
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["errors"][0] == {
        "message": "subscriptions run over the WebSocket at /graphql (graphql-transport-ws)", "extensions": {"status": 400}}
