"""No input gets a 5xx. Hypothesis over every surface a client reaches, not only the OpenAPI routes
(tests/test_contract.py): the REST API's query strings and paths, the page's query strings, WebSocket
frames (get_offers included), the SSE stream's Last-Event-ID and query, and alert bodies; with values
made to break parsers: NUL, lone surrogates (escaped in JSON; as the invalid UTF-8 they would be in
a URL), non-ASCII digits, huge numbers, NaN, markup and quotes. A bad value gets a 4xx that names its
parameter. The whole ASGI application (gateway, Django, Channels) on pytest-django's database and
the tests' own Redis database.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote_from_bytes

import httpx
import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import search
from tests.test_feed import connect
from tests.webapp_fixtures import make_key, offer_row

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- values ---------------------------------------------------------------------------------------
TRICKY = ["\x00", "a\x00b", "H100\x00", "²", "٣", "１２", "߁", "৪২", "-1", "0", "1e309", "NaN", "-Infinity", "9" * 30,
          "9" * 5000, "1.5", "true", "'\"><script>alert(1)</script>&amp;", "\u202e", "\ufeff", " ", "%00", "\ud800",
          "a\udfffb", "1-1", "9" * 21 + "-0", "18446744073709551616-0", "٣-1", "1-1\n"]  # fmt: skip
texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),  # digits of every script
    st.text(st.characters(categories=["Cc", "Cs"]), min_size=1, max_size=4),  # NUL and controls, lone surrogates
    st.integers().map(str),
    st.text(max_size=12),
)
numbers = st.one_of(st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.sampled_from([10**400, -(10**30)]))
json_values = st.recursive(st.none() | st.booleans() | numbers | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6)  # fmt: skip


def on_the_wire(value: str) -> str:
    """A value percent-encoded as a URL carries it: UTF-8, lone surrogates as the bytes they would be."""
    return quote_from_bytes(value.encode("utf-8", "surrogatepass"), safe="")


def query_string(params: dict[str, str]) -> str:
    return "&".join(f"{on_the_wire(name)}={on_the_wire(value)}" for name, value in params.items())


@pytest.fixture
async def client(api):
    """The application with a few offers, asked with an unlimited key."""
    await sync_to_async(lambda: [offer_row(i, price="1.50", region="Norway").save() for i in ("b1", "b2")])()
    return api


# --- REST API -------------------------------------------------------------------------------------
OFFER_PARAMETERS = sorted(search.OfferQuery.model_fields)
ROUTES = {
    "/api/v1/offers": OFFER_PARAMETERS,
    "/api/v1/anomalies": ["gpu", "provider", "since", "limit"],
    "/api/v1/gpus/H100/stats": ["window", "by"],
    "/api/v1/offers/vastai/b1/history": ["since", "until"],
}


def named(answer: httpx.Response, sent: set[str]) -> None:
    """A 4xx says what is wrong; a 422 names each parameter it refuses, and only parameters sent."""
    body = answer.json()
    assert answer.status_code < 500 and (answer.status_code < 400 or body["detail"]), answer.text
    if answer.status_code == 422:
        refused = {e["parameter"].split(".")[0] for e in body["errors"]}
        assert refused and refused <= sent, (refused, sent)
        assert all(f"{name}:" in body["detail"] for name in refused)


@SETTINGS
@given(route=st.sampled_from(sorted(ROUTES)), data=st.data())
async def test_query_strings_of_every_route_get_a_4xx_naming_the_parameter(client, route, data):
    params = data.draw(st.dictionaries(st.sampled_from(ROUTES[route]), texts, min_size=1, max_size=3))
    named(await client.get(f"{route}?{query_string(params)}"), set(params))


@pytest.mark.parametrize("route", list(ROUTES))
async def test_nul_in_any_text_parameter_is_a_422_naming_it(client, route):
    for name in ("gpu", "region", "since"):
        if name in ROUTES[route]:
            answer = await client.get(f"{route}?{name}=a%00b")
            assert answer.status_code == 422 and answer.json()["errors"][0]["parameter"] == name, answer.text


@SETTINGS
@given(segment=texts, where=st.sampled_from(["/api/v1/offers/vastai/{}/history", "/api/v1/offers/{}/b1/history",
                                             "/api/v1/gpus/{}/stats", "/api/v1/gpus/{}/cheapest"]))  # fmt: skip
async def test_path_segments_never_get_a_5xx(client, segment, where):
    answer = await client.get(where.format(on_the_wire(segment)))
    assert answer.status_code in (200, 400, 404, 422), answer.text
    if answer.status_code == 422:
        named(answer, {"offer_id"})


async def test_a_nul_in_an_offer_id_is_a_422_naming_it(client):
    answer = await client.get("/api/v1/offers/vastai/b%001/history")
    assert answer.status_code == 422 and answer.json()["errors"][0]["parameter"] == "offer_id", answer.text


# --- the page -------------------------------------------------------------------------------------
PAGE_PARAMETERS = [*OFFER_PARAMETERS, "page", "unknown"]


def status_line(html: str) -> str:
    return re.search(r'<p id="status"[^>]*>(.*?)</p>', html, re.S).group(1)


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(PAGE_PARAMETERS), texts, min_size=1, max_size=3))
async def test_the_page_answers_any_query_string_with_200_or_a_400_naming_the_parameter(client, params):
    answer = await client.get(f"/?{query_string(params)}")
    assert answer.status_code in (200, 400) and answer.headers["content-type"].startswith("text/html"), answer.text[:500]
    if answer.status_code == 400:
        line = status_line(answer.text)
        marked = [n for n in params if f'id="{n}-error"' in answer.text or f"{n}:" in line]
        assert marked or "unknown" in line or "passes the last reachable result" in line, (params, line)


@pytest.mark.parametrize("page", ["²", "٣", "9" * 5000, "-1", "1\x00"])
async def test_a_page_number_in_any_script_or_size_is_a_400_naming_page(client, page):
    answer = await client.get(f"/?{query_string({'page': page})}")
    assert answer.status_code == 400 and "page:" in status_line(answer.text), answer.text[:500]


# --- WebSocket frames ----------------------------------------------------------------------------
frames = st.one_of(
    st.builds(lambda filters, paging: {"type": "get_offers", "filters": filters, **paging},
              st.dictionaries(st.sampled_from(OFFER_PARAMETERS), json_values, max_size=3),
              st.dictionaries(st.sampled_from(["page", "per_page"]), json_values, max_size=2)),
    st.builds(lambda channels: {"type": "subscribe", "channels": channels}, st.lists(texts, max_size=3) | json_values),
    st.builds(lambda session, last: {"type": "resume", "session_id": session, "last_event_id": last}, json_values, json_values),
    st.builds(lambda stamp: {"type": "ping", "timestamp": stamp}, json_values),
    st.builds(lambda kind, extra: {"type": kind, **extra}, texts, st.dictionaries(texts, json_values, max_size=2)),
)  # fmt: skip


@pytest.fixture
async def key(transactional_db, isolated_redis):
    from django.db import connections

    from feed import hub

    hub.reset()
    yield await sync_to_async(make_key)("unlimited")
    hub.reset()
    await sync_to_async(connections.close_all)()  # the test database is dropped at the end


@SETTINGS
@given(sent=st.lists(frames, min_size=1, max_size=5))
async def test_any_frame_gets_one_answer_and_the_socket_stays_open(client, key, sent):
    ws, _ = await connect(key)
    for frame in sent:
        await ws.send_to(text_data=json.dumps(frame))  # lone surrogates travel as JSON escapes
    await ws.send_to(text_data=json.dumps({"type": "ping", "timestamp": "the end"}))
    replies = []
    while ((reply := await ws.receive_json_from(timeout=10))["type"], reply.get("timestamp")) != ("pong", "the end"):
        if reply["type"] != "heartbeat":
            replies.append(reply)
    assert len(replies) == len(sent), (sent, replies)
    assert all(r["type"] != "error" or (r["code"] and r["message"]) for r in replies)
    await ws.disconnect()


@pytest.mark.parametrize("field", ["region", "gpu"])
async def test_get_offers_with_nul_in_a_filter_is_an_error_naming_it(client, key, field):
    ws, _ = await connect(key)
    await ws.send_to(text_data=json.dumps({"type": "get_offers", "filters": {field: "a\x00b"}}))
    reply = await ws.receive_json_from(timeout=10)
    assert (reply["type"], reply["code"]) == ("error", "invalid_message") and f"filters.{field}:" in reply["message"]
    await ws.disconnect()


# --- SSE ------------------------------------------------------------------------------------------
header_values = st.one_of(
    st.sampled_from([t for t in TRICKY if t.isprintable() and t.isascii()]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), min_size=1, max_size=25),
    st.tuples(st.integers(0, 2**70), st.integers(0, 2**70)).map(lambda p: f"{p[0]}-{p[1]}"),
).map(str.strip).filter(bool)  # a header value has no whitespace around it


def is_event_id(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{1,20}-[0-9]{1,20}", text)) and all(int(half) < 2**64 for half in text.split("-"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(last=header_values, in_query=st.booleans())
async def test_sse_resumes_from_an_event_id_and_refuses_anything_else_naming_it(key, live_webapp, last, in_query):
    headers = {"Authorization": f"Bearer {key}"} | ({} if in_query else {"Last-Event-ID": last.encode("latin-1")})
    url = f"{live_webapp}/api/v1/stream?channels=price_updates" + (f"&last_event_id={on_the_wire(last)}" if in_query else "")
    async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", url, headers=headers) as answer:
        if is_event_id(last):
            assert answer.status_code == 200
            assert (await anext(answer.aiter_lines())).startswith(": subscribed to price_updates")
        else:
            await answer.aread()
            assert answer.status_code == 400, answer.text
            assert answer.json()["detail"].startswith("last_event_id: " if in_query else "Last-Event-ID: ")


async def test_sse_tells_a_resuming_client_the_buffer_cannot_be_read_and_ends_the_stream(key, live_webapp, isolated_redis):
    """Redis answers the resume's reads with an error (the feed's key holds the wrong type): the
    stream opens, says so in an `error` event and ends, so EventSource reconnects and resumes."""
    from feed import hub

    isolated_redis.set(hub.STREAM, "not a stream")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{live_webapp}/api/v1/stream?channels=price_updates",
                                headers={"Authorization": f"Bearer {key}", "Last-Event-ID": "1-0"})  # fmt: skip
    assert answer.status_code == 200 and "event: error" in answer.text and '"code":"feed_unavailable"' in answer.text


# --- alert bodies ---------------------------------------------------------------------------------
RULE_FIELDS = ["name", "gpu", "providers", "region", "country", "continent", "max_price", "max_price_per_gpu",
               "drop_percent", "anomaly", "becomes_available", "webhook_url", "cooldown_seconds"]  # fmt: skip
rules = st.dictionaries(st.sampled_from(RULE_FIELDS), json_values, max_size=4).map(
    lambda body: {"webhook_url": "https://hooks.example.com/x"} | body)


@SETTINGS
@given(body=rules | json_values)
async def test_alert_bodies_get_a_4xx_naming_the_field(client, body):
    answer = await client.post("/api/v1/alerts", content=json.dumps(body), headers={"content-type": "application/json"})
    assert answer.status_code in (201, 400, 422), answer.text
    if answer.status_code == 422:
        fields = {e["parameter"].split(".")[0] for e in answer.json()["errors"]}
        assert fields <= set(RULE_FIELDS) | {"body"}, fields


@pytest.mark.parametrize("field", ["name", "region", "gpu", "webhook_url"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
async def test_an_alert_field_holding_nul_or_a_lone_surrogate_is_a_422_naming_it(client, field, bad):
    body = {"webhook_url": "https://hooks.example.com/x", field: bad}
    answer = await client.post("/api/v1/alerts", content=json.dumps(body), headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["parameter"] == field, answer.text
