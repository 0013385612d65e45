"""The gateway in front of the API: health, keys, plan limits, headers, the response cache, metrics."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from gpubroker import health
from tests.webapp_fixtures import landed, locked, make_key, offer_row

ROOT = Path(__file__).resolve().parent.parent


@sync_to_async
def add_offers():
    from offers.models import Offer

    Offer.objects.bulk_create([offer_row("h1", price="2.50"), offer_row("r1", "RTX4090", price="0.35", gpu_memory_gb=24)])


async def test_healthz_is_constant_and_readyz_checks_postgres_and_redis(webapp):
    response = await webapp.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    ready = await webapp.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": {"postgres": True, "redis": True}})


def test_create_api_key_prints_the_key_last_and_stores_only_its_digest(transactional_db):
    from gateway.keys import digest
    from gateway.models import ApiKey

    out = io.StringIO()
    call_command("create_api_key", "--plan", "pro", "--name", "ci robot", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("gpb_") and len(key) > 40
    row = ApiKey.objects.get(name="ci robot")
    assert (row.plan, row.digest, row.revoked_at) == ("pro", digest(key), None)
    assert key not in {str(v) for v in ApiKey.objects.values_list(flat=False).get(id=row.id)}  # never in clear


async def test_keys_travel_as_bearer_or_x_api_key_and_set_the_plan(webapp):
    await add_offers()
    pro = await sync_to_async(make_key)("pro")
    bearer = await webapp.get("/api/v1/offers", headers={"Authorization": f"Bearer {pro}"})
    x_api = await webapp.get("/api/v1/offers", headers={"X-API-Key": pro})
    anonymous = await webapp.get("/api/v1/offers")
    assert bearer.headers["ratelimit-limit"] == x_api.headers["ratelimit-limit"] == "100"
    assert bearer.headers["ratelimit-policy"] == "100;w=60"
    assert int(x_api.headers["ratelimit-remaining"]) == 98  # the same window: 2 of 100 used
    assert anonymous.headers["ratelimit-limit"] == "10"  # no key: the free plan, by IP


async def test_unknown_and_revoked_keys_get_401_at_once(webapp):
    await add_offers()
    assert (await webapp.get("/api/v1/offers", headers={"X-API-Key": "gpb_not-a-key"})).status_code == 401
    key = await sync_to_async(make_key)("pro")
    assert (await webapp.get("/api/v1/offers", headers={"X-API-Key": key})).status_code == 200
    await sync_to_async(call_command)("revoke_api_key", key[:12], stdout=io.StringIO())
    refused = await webapp.get("/api/v1/offers", headers={"X-API-Key": key})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


async def test_a_revoked_key_admitted_from_a_lease_is_refused_once_the_lease_ends(webapp, monkeypatch):
    """Unlimited keys are admitted from leased slots with no round trip (the hot path): a revocation
    reaches them when the lease ends, LEASE_SECONDS later, at the next look at Redis."""
    from gateway import ratelimit, runtime

    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 1.0)  # leases that outlive a slow machine's requests
    await add_offers()
    key = await sync_to_async(make_key)("unlimited")
    for _ in range(20):  # until this worker holds 2 slots leased ahead (leases of 1, 2, 4, ... slots)
        assert (await webapp.get("/api/v1/offers", headers={"X-API-Key": key})).status_code == 200
        client = runtime.key_directory().recall(key)
        if (lease := runtime.limiter().leases.get(client.identity)) is not None and lease.left >= 2:
            break
    await sync_to_async(call_command)("revoke_api_key", key[:12], stdout=io.StringIO())
    from_lease = await webapp.get("/api/v1/offers", headers={"X-API-Key": key})
    await asyncio.sleep(1.1)
    refused = await webapp.get("/api/v1/offers", headers={"X-API-Key": key})
    assert from_lease.status_code == 200 and from_lease.headers["x-cache"] == "l2"  # the price of a lease
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


async def test_the_free_plan_gets_429_with_retry_after_on_the_eleventh_request(webapp):
    await add_offers()
    answers = [await webapp.get("/api/v1/offers", params={"gpu": "H100"}) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert [int(a.headers["ratelimit-remaining"]) for a in answers] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and refused.headers["retry-after"].isdigit()
    body = refused.json()
    assert (body["plan"], body["limit"]) == ("free", 10) and "rate limit" in body["detail"]
    assert (await webapp.get("/healthz")).status_code == 200  # health is never limited


async def test_repeats_are_served_from_the_cache_until_a_landing_bumps_the_version(api, isolated_redis):
    from offers.models import Offer

    await add_offers()
    first = await api.get("/api/v1/offers", params={"gpu": "H100"})
    again = await api.get("/api/v1/offers", params={"gpu": "H100"})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("origin", "l2")
    assert again.content == first.content and int(again.headers["age"]) >= 0
    await sync_to_async(Offer.objects.filter(offer_id="h1").update)(price_per_hour="1.99")
    assert (await api.get("/api/v1/offers", params={"gpu": "H100"})).json()["items"][0]["price_per_hour"] == 2.5
    await landed(isolated_redis)
    fresh = await api.get("/api/v1/offers", params={"gpu": "H100"})
    assert fresh.headers["x-cache"] == "origin" and fresh.json()["items"][0]["price_per_hour"] == 1.99


@pytest.fixture
def served(live_webapp) -> tuple[str, str]:
    """The application over real HTTP with two offers, and an unlimited key: (base URL, key)."""
    from offers.models import Offer

    Offer.objects.bulk_create([offer_row("h1", price="2.50"), offer_row("r1", "RTX4090", price="0.35")])
    return live_webapp, make_key("unlimited")


async def test_a_client_hanging_up_does_not_fail_the_others_waiting_on_the_same_answer(served, pg_url):
    """Over real HTTP: the first client's request computes the answer (its query waits on a lock),
    three more wait on that computation, the first hangs up; the three still get the answer."""
    url, key = served
    path, port = "/api/v1/offers?gpu=H100", int(url.rsplit(":", 1)[1])
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        with locked(pg_url, "offers"):
            _, first = await asyncio.open_connection("127.0.0.1", port)
            first.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode())
            await first.drain()
            await asyncio.sleep(0.5)  # its computation waits for the lock
            others = [asyncio.ensure_future(http.get(path)) for _ in range(3)]
            await asyncio.sleep(0.5)  # they wait on the same computation
            first.close()  # the first client hangs up
            await asyncio.sleep(1.0)  # and the server hears it
        answers = await asyncio.gather(*others)
    assert [(a.status_code, a.headers["x-cache"]) for a in answers] == [(200, "origin")] * 3, answers[0].text
    assert {a.json()["items"][0]["offer_id"] for a in answers} == {"h1"}


async def test_cached_answers_go_out_gzipped_to_clients_that_accept_gzip(api):
    from offers.models import Offer

    await sync_to_async(Offer.objects.bulk_create)([offer_row(f"h{i}", price=f"2.{i}0") for i in range(8)])
    ask = lambda encoding: api.get("/api/v1/offers", params={"gpu": "H100"}, headers={"Accept-Encoding": encoding})  # noqa: E731
    plain, zipped, refused = await ask("identity"), await ask("br, gzip;q=0.5"), await ask("gzip;q=0, *")
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["x-cache"] == "l2"
    assert zipped.json() == plain.json()  # httpx decoded it
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3  # the bytes on the wire
    assert "content-encoding" not in refused.headers and refused.content == plain.content


@pytest.mark.parametrize(("header", "gzip"), [
    (None, False), ("identity", False), ("gzip", True), ("GZIP", True), ("deflate, gzip;q=0.8", True),
    ("x-gzip", True), ("*", True), ("gzip;q=0", False), ("gzip;q=0, *", False), ("*;q=0", False),
    ("br, *;q=0.1", True), ("gzip;q=nonsense", False),
])  # fmt: skip
def test_accept_encoding_is_read_as_rfc_9110_says(header, gzip):
    from gateway.asgi import accepts_gzip

    assert accepts_gzip([] if header is None else [(b"accept-encoding", header.encode())]) is gzip


async def test_errors_are_not_cached_and_private_paths_never_are(api):
    await add_offers()
    assert (await api.get("/api/v1/offers", params={"gpu": "Voodoo"})).status_code == 400
    again = await api.get("/api/v1/offers", params={"gpu": "Voodoo"})
    assert again.status_code == 400 and again.headers.get("x-cache") == "origin"


async def test_metrics_expose_requests_cache_limits_and_providers(api):
    await add_offers()
    await api.get("/api/v1/offers")
    await api.get("/api/v1/offers")
    text = (await api.get("/metrics")).text
    for name in ("gpubroker_http_requests_total", "gpubroker_http_request_duration_seconds_bucket",
                 "gpubroker_cache_lookups_total", "circuit_breaker_state", "circuit_breaker_failures_total",
                 "circuit_breaker_successes_total", "circuit_breaker_rejections_total",
                 "provider_request_latency_seconds_bucket", "provider_weight"):  # fmt: skip
        assert name in text, name
    assert 'gpubroker_http_requests_total{method="GET",route="/api/v1/offers",status="200"}' in text
    assert 'gpubroker_cache_lookups_total{result="hit",tier="l2"}' in text


async def test_request_tallies_reach_the_histogram_as_observe_would_put_them():
    """Requests are tallied and written in batches (gateway.metrics.flush): the same buckets, count and sum."""
    from prometheus_client import REGISTRY

    from gateway import metrics

    def sample(suffix: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(f"gpubroker_http_request_duration_seconds_{suffix}", {"route": "/readyz", **labels}) or 0.0

    metrics.flush()
    before = {le: sample("bucket", le=le) for le in ("0.0005", "0.001", "0.005", "5.0", "+Inf")}
    count, total = sample("count"), sample("sum")
    for seconds in (0.0004, 0.001, 0.003, 7.0):  # 0.001 belongs to le="0.001": bounds are inclusive
        metrics.observe_request("/readyz", "GET", 200, seconds)
    assert sample("count") == count  # tallied, not written yet
    metrics.flush()
    after = {le: sample("bucket", le=le) - before[le] for le in before}
    assert after == {"0.0005": 1, "0.001": 2, "0.005": 3, "5.0": 3, "+Inf": 4}
    assert sample("count") - count == 4 and abs(sample("sum") - total - 7.0044) < 1e-9


async def test_the_grafana_dashboard_asks_only_for_metrics_the_webapp_exposes(api, isolated_redis):
    from offers.models import ProviderStatus

    await add_offers()
    await sync_to_async(ProviderStatus.objects.create)(provider="vastai", last_good_at=datetime.now(timezone.utc),
                                                       last_good_rows=1, stale=False)  # fmt: skip
    isolated_redis.hset(health.CURRENT, "vastai", json.dumps({"status": "healthy", "latency_ms": 80, "weight": 1.0,
                                                              "checked_at": datetime.now(timezone.utc).isoformat()}))  # fmt: skip
    free = {"Authorization": f"Bearer {await sync_to_async(make_key)('free')}"}
    assert 429 in [(await api.get("/api/v1/offers", headers=free)).status_code for _ in range(11)]
    exposed = {line.split("{")[0].split(" ")[0] for line in (await api.get("/metrics")).text.splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    dashboard = json.loads((ROOT / "astro" / "grafana" / "gpubroker.json").read_text())
    asked = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\b(?:gpubroker|circuit_breaker|provider)_[a-z_]+\b", target["expr"])}  # fmt: skip
    assert len(asked) >= 12 and asked <= exposed, asked - exposed


async def test_openapi_and_docs_are_not_rate_limited(webapp):
    for _ in range(12):
        assert (await webapp.get("/api/v1/openapi.json")).status_code == 200


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_a_websocket_connect_counts_against_the_plan(webapp, header):
    from channels.testing import WebsocketCommunicator

    from gpubroker_web.asgi import application

    key = await sync_to_async(make_key)("free")
    value = f"Bearer {key}" if header == "Authorization" else key
    accepted = 0
    for _ in range(11):
        ws = WebsocketCommunicator(application, "/ws/providers/", headers=[(header.lower().encode(), value.encode())])
        connected, code = await ws.connect()
        if connected:
            accepted += 1
            assert json.loads(await ws.receive_from())["type"] == "connection_established"
            await ws.disconnect()
        else:
            assert code == 4429
    assert accepted == 10


async def test_the_breaker_state_metric_is_0_closed_1_open_2_half_open_and_the_dashboard_says_so(api, isolated_redis):
    """circuit_breaker_state in the gateway contract's encoding, for the breakers the pipeline keeps in Redis."""
    from gpubroker.breaker import Breaker

    for provider, opened_ago in (("lambda", 0), ("runpod", 31)):  # runpod opened 31 s ago: half-open by now
        breaker = Breaker(provider, isolated_redis, clock_offset=-opened_ago)
        for _ in range(10):
            breaker.record(breaker.admit(), False)
    healthy = Breaker("vastai", isolated_redis)
    healthy.record(healthy.admit(), True)
    text = (await api.get("/metrics")).text
    states = dict(re.findall(r'^circuit_breaker_state\{provider="([a-z0-9]+)"\} (\S+)$', text, re.MULTILINE))
    assert (states["vastai"], states["lambda"], states["runpod"]) == ("0.0", "1.0", "2.0")
    dashboard = json.loads((ROOT / "astro" / "grafana" / "gpubroker.json").read_text())
    [panel] = [p for p in dashboard["panels"] if p["targets"][0]["expr"] == "circuit_breaker_state"]
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    assert {value: shown["text"] for value, shown in mapping["options"].items()} == {"0": "closed", "1": "open", "2": "half-open"}
