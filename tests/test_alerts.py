"""Alert rules (webapp/alerts): the API through the whole application (gateway, keys, PostgreSQL),
the matcher on real Kafka topics of the test's own and the test database, and delivery of a match
with the rule's own secret to a real local receiver, as the delivery DAG does it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import ipaddress
import json
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async
from confluent_kafka import Consumer, Producer
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from gpubroker import settings, webhooks
from gpubroker.schema import Anomaly, AvailabilityChange, PriceChange
from tests.conftest import kafka_tail
from tests.test_webhooks import Receiver
from tests.webapp_fixtures import make_key

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc)
H100_RULE = {"gpu": "h100 sxm5", "providers": ["vastai"], "max_price": 2.0, "webhook_url": "https://hooks.example.com/gpu"}


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# --- API --------------------------------------------------------------------------------------
async def test_a_rule_is_created_with_a_secret_shown_once_and_only_its_key_sees_it(webapp):
    owner, other = await sync_to_async(make_key)("pro"), await sync_to_async(make_key)("pro")
    created = await webapp.post("/api/v1/alerts", json=H100_RULE, headers=auth(owner))
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["secret"].startswith("whsec_") and len(base64.b64decode(rule["secret"][6:])) == 32
    assert (rule["gpu"], rule["providers"], rule["max_price"], rule["cooldown_seconds"]) == ("H100", ["vastai"], 2.0, 300)

    listed = (await webapp.get("/api/v1/alerts", headers=auth(owner))).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]] and listed["limit"] == 25
    one = (await webapp.get(f"/api/v1/alerts/{rule['id']}", headers=auth(owner))).json()
    assert one == {k: v for k, v in rule.items() if k != "secret"}  # never shown again
    assert rule["secret"] not in (await webapp.get("/api/v1/alerts", headers=auth(owner))).text

    assert (await webapp.get("/api/v1/alerts", headers=auth(other))).json()["items"] == []
    for method in ("get", "delete"):
        answer = await getattr(webapp, method)(f"/api/v1/alerts/{rule['id']}", headers=auth(other))
        assert answer.status_code == 404, answer.text
    assert (await webapp.get(f"/api/v1/alerts/{rule['id']}/deliveries", headers=auth(other))).status_code == 404
    assert (await webapp.delete(f"/api/v1/alerts/{rule['id']}", headers=auth(owner))).status_code == 204
    assert (await webapp.get(f"/api/v1/alerts/{rule['id']}", headers=auth(owner))).status_code == 404


async def test_rules_need_an_api_key(webapp):
    for answer in (await webapp.get("/api/v1/alerts"), await webapp.post("/api/v1/alerts", json=H100_RULE),
                   await webapp.delete("/api/v1/alerts/1")):  # fmt: skip
        assert answer.status_code == 401 and "API key" in answer.json()["detail"]


async def test_the_plan_limits_how_many_rules_a_key_has(webapp):
    free = await sync_to_async(make_key)("free")
    statuses = [(await webapp.post("/api/v1/alerts", json=H100_RULE, headers=auth(free))).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 403]
    refused = await webapp.post("/api/v1/alerts", json=H100_RULE, headers=auth(free))
    assert refused.json()["detail"] == "the free plan allows 3 alert rules; delete one first"


async def test_bad_conditions_are_4xx_with_a_message(api):
    unknown = await api.post("/api/v1/alerts", json=H100_RULE | {"gpu": "Voodoo 2"})
    assert unknown.status_code == 400 and "unknown GPU model 'Voodoo 2'" in unknown.json()["detail"]
    for bad in ({"max_price": -1}, {"providers": ["nobody"]}, {"drop_percent": 150}, {"country": "XX"},
                {"webhook_url": ""}, {"cooldown_seconds": -5}):  # fmt: skip
        answer = await api.post("/api/v1/alerts", json=H100_RULE | bad)
        assert answer.status_code == 422 and answer.json()["detail"], bad
    assert (await api.get("/api/v1/alerts/0")).status_code == 422


INTERNAL = [
    "http://127.0.0.1/hook", "http://localhost./hook", "https://[::1]/", "http://10.0.0.8/", "http://192.168.1.1/",
    "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.64.0.1/",
    "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:a00:1]/", "http://2130706433/",
    "http://0x7f.1/", "http://017700000001/", "http://0x7f000001/", "http://127.1/", "http://hooks.example.com./",
    "ftp://hooks.example.com/", "file:///etc/passwd", "gopher://hooks.example.com/", "http://user:pw@hooks.example.com/",
    "http://0.0.0.0/", "http://[::]/",
]  # fmt: skip


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_targets_are_refused_at_creation(api, url):
    answer = await api.post("/api/v1/alerts", json=H100_RULE | {"webhook_url": url})
    assert answer.status_code == 400, answer.text
    assert "webhook" in answer.json()["detail"]


def encodings(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """Ways browsers and inet_aton spell an IPv4 address that are not its dotted-decimal form."""
    n, parts = int(address), address.packed
    return st.sampled_from([
        str(n), hex(n), f"0{n:o}", ".".join(hex(p) for p in parts), ".".join(f"0{p:o}" for p in parts),
        f"{parts[0]}.{int.from_bytes(parts[1:], 'big')}", f"{parts[0]}.{parts[1]}.{int.from_bytes(parts[2:], 'big')}",
        f"{hex(parts[0])}.{parts[1]}.{parts[2]}.{parts[3]}", f"{parts[0]}.{parts[1]}.{parts[2]}.{parts[3]}.",
    ])  # fmt: skip


internal_v4 = st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                               "100.64.0.0/10", "0.0.0.0/8"]).flatmap(  # fmt: skip
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i: ipaddress.ip_network(net)[i]))


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=internal_v4.flatmap(lambda a: st.one_of(encodings(a), st.just(str(a)), st.just(f"[::ffff:{a}]"))),
       scheme=st.sampled_from(["http", "https"]))  # fmt: skip
def test_no_spelling_of_an_internal_ipv4_address_is_accepted(live_webapp, unlimited_key, host, scheme):
    answer = httpx.post(f"{live_webapp}/api/v1/alerts", json=H100_RULE | {"webhook_url": f"{scheme}://{host}/hook"},
                        headers=auth(unlimited_key))  # fmt: skip
    assert answer.status_code == 400, (host, answer.text)


@sync_to_async
def allow(host: str, *owner: str) -> None:
    """Allow-list a host as an operator does: `manage.py webhook_allowlist add HOST [--key K | --plan P]`."""
    call_command("webhook_allowlist", "add", host, *owner, stdout=io.StringIO())


async def test_the_allowlist_lets_a_local_receiver_be_a_target(api, unlimited_key):
    assert (await api.post("/api/v1/alerts", json=H100_RULE | {"webhook_url": "http://127.0.0.1:9/hook"})).status_code == 400
    await allow("127.0.0.1", "--key", unlimited_key[:12])
    assert (await api.post("/api/v1/alerts", json=H100_RULE | {"webhook_url": "http://127.0.0.1:9/hook"})).status_code == 201
    assert (await api.post("/api/v1/alerts", json=H100_RULE | {"webhook_url": "http://10.0.0.1:9/hook"})).status_code == 400


async def test_an_allow_listed_host_is_a_target_only_for_its_owner(webapp):
    """An entry belongs to a key, a plan, or the operator's own webhooks: nobody else may aim a rule at it."""
    mine, other_pro, enterprise = [await sync_to_async(make_key)(plan) for plan in ("pro", "pro", "enterprise")]

    async def create(key: str) -> int:
        return (await webapp.post("/api/v1/alerts", json=H100_RULE | {"webhook_url": "http://10.1.2.3:9/hook"},
                                  headers=auth(key))).status_code  # fmt: skip

    await allow("10.1.2.3")  # the operator's own webhooks (no alert rule)
    assert [await create(k) for k in (mine, other_pro, enterprise)] == [400, 400, 400]
    await allow("10.1.2.3", "--key", mine[:12])
    assert [await create(k) for k in (mine, other_pro, enterprise)] == [201, 400, 400]
    await allow("10.1.2.3", "--plan", "enterprise")
    assert [await create(k) for k in (other_pro, enterprise)] == [400, 201]


# --- matching on real Kafka and PostgreSQL ------------------------------------------------------
def change(offer_id="o1", gpu="H100", provider="vastai", old="2.50", new="1.90", gpu_count=1, **more) -> PriceChange:
    old_price, new_price = Decimal(old), Decimal(new)
    return PriceChange(**{
        "event_id": str(uuid.uuid4()), "provider": provider, "offer_id": offer_id, "gpu": gpu, "gpu_form_factor": None,
        "gpu_count": gpu_count, "region": "Norway", "country": "NO", "continent": "EU", "old_price": old_price,
        "new_price": new_price, "price_per_gpu": new_price / gpu_count,
        "change_percent": float((new_price - old_price) / old_price * 100),
        "direction": "down" if new_price < old_price else "up", "availability": "available", "observed_at": NOW,
        "detected_at": NOW, **more})  # fmt: skip


def opened(offer_id="o2", gpu="A100", old="unavailable", new="available") -> AvailabilityChange:
    return AvailabilityChange(event_id=str(uuid.uuid4()), provider="lambda", offer_id=offer_id, gpu=gpu,
                              region="us-east-1", country="US", continent="NA", old_availability=old, availability=new,
                              available_count=3, price_per_hour=Decimal("1.29"), observed_at=NOW, detected_at=NOW)  # fmt: skip


def anomaly(offer_id="o3", gpu="H100", price="0.80") -> Anomaly:
    return Anomaly(event_id=str(uuid.uuid4()), provider="runpod", offer_id=offer_id, gpu=gpu, gpu_form_factor=None,
                   region="EU-RO-1", price_per_hour=Decimal(price), price_per_gpu=Decimal(price), mean=2.1, stddev=0.2,
                   z=-6.5, reason="zscore", old_price=Decimal("2.00"), observed_at=NOW, detected_at=NOW)  # fmt: skip


@pytest.fixture
def topics():
    """Input and output topics of this test's own (so the live delivery DAG hears nothing)."""
    names = {kind: f"test.alerts.{kind}.{uuid.uuid4().hex[:8]}" for kind in ("changes", "anomalies", "webhooks")}
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(settings.kafka_config())
    for future in admin.create_topics([NewTopic(t, 2) for t in names.values()]).values():
        future.result(30)
    yield names
    admin.delete_topics(list(names.values()))


def produce(topic: str, events) -> None:
    producer = Producer(settings.kafka_config())
    for event in events:
        producer.produce(topic, key=event.key, value=event.model_dump_json())
    assert producer.flush(10) == 0


def read_all(topic: str, expect: int, timeout: float = 15) -> list[dict]:
    consumer = Consumer(settings.kafka_config() | {"group.id": f"test-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) <= expect:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(json.loads(message.value()))
        if len(got) == expect:  # wait a moment for any extra one
            deadline = min(deadline, time.monotonic() + 2)
    consumer.close()
    return got


def rule(key: str, **conditions) -> int:
    from alerts.api import new_secret
    from alerts.models import AlertRule
    from gateway.models import ApiKey

    values = {"webhook_url": "https://hooks.example.com/x", "cooldown_seconds": 0} | conditions
    return AlertRule.objects.create(key=ApiKey.objects.get(prefix=key[:12]), secret=new_secret(), **values).id


def run_matcher(topics: dict, seconds: float) -> None:
    from alerts import matcher
    from gpubroker_web.db import conninfo

    matcher.run(conninfo(), stop_after=seconds, group_id=f"test-{uuid.uuid4()}", start="earliest",
                topics=[topics["changes"], topics["anomalies"]], output=topics["webhooks"])  # fmt: skip


def test_the_matcher_sends_one_request_per_rule_and_event_and_none_for_a_replay(transactional_db, topics, pg):
    key = make_key("pro")
    cheap_h100 = rule(key, gpu="H100", providers=["vastai"], max_price=Decimal("2"))
    per_gpu = rule(key, gpu="H100", max_price_per_gpu=Decimal("1.00"), continent="EU")
    big_drop = rule(key, drop_percent=20.0)
    anomalies = rule(key, gpu="H100", anomaly=True, region="eu-ro-1")
    available = rule(key, gpu="A100", becomes_available=True, country="US")
    rule(key, gpu="RTX4090")  # another GPU: never matches
    events = [
        change("a", old="2.50", new="1.90"),  # cheap_h100 (-24%: big_drop too)
        change("b", old="2.50", new="2.40"),  # nothing: above 2, only -4%
        change("c", new="7.60", gpu_count=8),  # per_gpu only (0.95 per GPU, in EU; a rise, so no drop)
        change("d", provider="lambda", old="3.00", new="1.50"),  # big_drop only (not vastai)
        opened("e"), opened("f", old="available", new="limited"),  # available: only e opens
        anomaly("g"),
    ]
    changes = [e for e in events if not isinstance(e, Anomaly)]
    produce(topics["changes"], changes)
    produce(topics["anomalies"], [events[-1]])
    run_matcher(topics, 8)

    sent = read_all(topics["webhooks"], expect=6)
    pairs = sorted((m["alert_rule_id"], m["payload"]["event"]["offer_id"]) for m in sent)
    assert pairs == sorted([(cheap_h100, "a"), (big_drop, "a"), (per_gpu, "c"), (big_drop, "d"), (available, "e"),
                            (anomalies, "g")])  # fmt: skip
    for message in sent:  # the delivery DAG's format; the secret stays in the database
        hook = webhooks.Webhook.from_request(message, "unused")
        assert hook.webhook_id == webhooks.stable_id("alert", hook.alert_rule_id, message["payload"]["event"]["event_id"])
        assert hook.event_type == message["payload"]["event"]["type"] and "secret" not in json.dumps(message)
    assert pg.execute("SELECT count(*) FROM alert_matches WHERE produced_at IS NOT NULL").fetchone()[0] == 6

    produce(topics["changes"], changes)  # Flink replays after a failure: the same event ids
    run_matcher(topics, 6)
    assert len(read_all(topics["webhooks"], expect=6)) == 6  # nothing new
    assert pg.execute("SELECT count(*) FROM alert_matches").fetchone()[0] == 6


def test_a_rule_stays_quiet_for_its_cooldown_and_new_rules_apply_at_once(transactional_db, topics, pg_url):
    from alerts import matcher

    key = make_key("pro")
    quiet = rule(key, gpu="H100", cooldown_seconds=3600)
    m = matcher.Matcher(pg_url, matcher.producer(), topics["webhooks"])
    assert m.handle([change("a"), change("b")]) == 1  # the second falls in the cooldown
    late = rule(key, gpu="H100", cooldown_seconds=3600)  # created after the matcher loaded its rules
    m.conn.execute("SELECT pg_notify('alert_rules', '')")  # as the API announces it
    assert m.handle([change("c")]) == 1
    m.close()
    sent = read_all(topics["webhooks"], expect=2)
    assert sorted((s["alert_rule_id"], s["payload"]["event"]["offer_id"]) for s in sent) == [(quiet, "a"), (late, "c")]


def test_anomalies_are_located_from_the_offers_table_and_new_offers_count_as_becoming_available(transactional_db, topics,
                                                                                              pg_url):  # fmt: skip
    from alerts import matcher
    from tests.webapp_fixtures import offer_row

    offer_row("o3", provider="runpod", region="EU-RO-1", country="RO", continent="EU").save()
    key = make_key("pro")
    europe = rule(key, anomaly=True, continent="EU")
    rule(key, anomaly=True, country="US")
    new_offers = rule(key, becomes_available=True, providers=["lambda"])
    m = matcher.Matcher(pg_url, matcher.producer(), topics["webhooks"])
    assert m.handle([anomaly("o3"), opened("n", old=None), opened("v", old="available", new="unavailable")]) == 2
    m.close()
    sent = read_all(topics["webhooks"], expect=2)
    assert sorted((s["alert_rule_id"], s["payload"]["event"]["offer_id"]) for s in sent) == [(europe, "o3"), (new_offers, "n")]


def test_the_matcher_reconnects_when_its_database_connection_is_lost(transactional_db, topics, pg_url, pg):
    from alerts import matcher

    h100 = rule(make_key("pro"), gpu="H100")
    m = matcher.Matcher(pg_url, matcher.producer(), topics["webhooks"])
    pg.execute("SELECT pg_terminate_backend(%s)", (m.conn.info.backend_pid,))
    assert m.handle([change("a")]) == 1
    m.close()
    assert [(s["alert_rule_id"], s["payload"]["event"]["offer_id"]) for s in read_all(topics["webhooks"], 1)] == [(h100, "a")]


def test_a_broken_event_is_dead_lettered_and_the_rest_still_match(transactional_db, topics):
    key = make_key("pro")
    h100 = rule(key, gpu="H100")
    dead = kafka_tail(settings.Topics.DEAD_LETTER)
    poison = Producer(settings.kafka_config())
    poison.produce(topics["changes"], value=b'{"type": "price_change"}')
    poison.flush(10)
    produce(topics["changes"], [change("a")])
    run_matcher(topics, 6)
    assert [(s["alert_rule_id"], s["payload"]["event"]["offer_id"]) for s in read_all(topics["webhooks"], 1)] == [(h100, "a")]
    letters = [m for m in dead.consume(100, timeout=5) if not m.error() and dict(m.headers())["source.topic"] == topics["changes"].encode()]
    dead.close()
    assert len(letters) == 1 and b"not a change" in dict(letters[0].headers())["reason"]


# --- delivery with the rule's secret, and the deliveries endpoint --------------------------------
def verifies(secret: str, request: dict) -> bool:
    h = request["headers"]
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request["body"]
    mac = base64.b64encode(hmac.new(base64.b64decode(secret[6:]), signed, hashlib.sha256).digest()).decode()
    return h["webhook-signature"] == f"v1,{mac}"


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.should_exit = True


async def test_a_match_is_delivered_signed_with_its_rules_secret_and_listed_with_its_attempts(api, unlimited_key, receiver,
                                                                                            pg_url, topics):  # fmt: skip
    from alerts import matcher

    await allow("127.0.0.1", "--key", unlimited_key[:12])
    created = (await api.post("/api/v1/alerts", json={"gpu": "H100", "webhook_url": receiver.url})).json()
    receiver.received.clear()
    receiver.statuses[:] = [503]

    def match_and_deliver():
        m = matcher.Matcher(pg_url, matcher.producer(), topics["webhooks"])
        m.handle([change("a")])
        m.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            request = conn.execute("SELECT request FROM alert_matches").fetchone()[0]
            hook = webhooks.Webhook.from_request(request, "unused")
            # as the DAG does: the stack-wide secret is the default, the rule's own one signs
            return webhooks.deliver(conn, hook, "whsec_" + base64.b64encode(b"x" * 32).decode(), backoff=0.01)

    result = await sync_to_async(match_and_deliver)()
    assert result["attempts"] == 2 and len(receiver.received) == 2
    assert all(verifies(created["secret"], r) for r in receiver.received)
    body = json.loads(receiver.received[-1]["body"])
    assert (body["type"], body["data"]["alert"]["rule_id"], body["data"]["event"]["offer_id"]) == ("price_change", created["id"], "a")

    [delivery] = (await api.get(f"/api/v1/alerts/{created['id']}/deliveries")).json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["response_code"], delivery["event_type"]) == ("delivered", 2, 200, "price_change")
    assert delivery["latency_ms"] >= 0 and delivery["error"] == ""


async def test_a_delivery_the_target_refuses_is_listed_as_failing_with_its_last_answer(api, unlimited_key, receiver, pg_url,
                                                                                      topics):  # fmt: skip
    from alerts import matcher

    await allow("127.0.0.1", "--key", unlimited_key[:12])
    created = (await api.post("/api/v1/alerts", json={"gpu": "H100", "webhook_url": receiver.url})).json()
    receiver.statuses[:] = [500, 502]

    m = await sync_to_async(matcher.Matcher)(pg_url, matcher.producer(), topics["webhooks"])
    await sync_to_async(m.handle)([change("a")])
    [queued] = (await api.get(f"/api/v1/alerts/{created['id']}/deliveries")).json()["items"]
    assert (queued["status"], queued["attempts"], queued["response_code"], queued["latency_ms"]) == ("queued", 0, None, None)

    def deliver():
        request = m.conn.execute("SELECT request FROM alert_matches").fetchone()[0]
        with pytest.raises(webhooks.DeliveryFailed):
            webhooks.deliver(m.conn, webhooks.Webhook.from_request(request, "unused"), "whsec_unused", attempts=2, backoff=0.01)
        m.close()

    await sync_to_async(deliver)()
    [delivery] = (await api.get(f"/api/v1/alerts/{created['id']}/deliveries")).json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["response_code"]) == ("failing", 2, 502)


def test_an_allow_listed_receiver_gets_only_its_owners_webhooks_and_shows_the_owner_a_status_and_short_excerpt(
        transactional_db, receiver, pg, live_webapp):  # fmt: skip
    owner, other = make_key("pro"), make_key("pro")
    call_command("webhook_allowlist", "add", "127.0.0.1", "--key", owner[:12], stdout=io.StringIO())
    answer = "refused: " + "internal detail " * 20 + "sk_live_do_not_leak"
    receiver.received.clear()
    receiver.statuses[:], receiver.bodies[:] = [500], [answer.encode()]

    def send(key: str) -> None:  # a rule of `key` aimed at the receiver (another key's: made when it was allowed)
        hook = webhooks.Webhook(f"msg_{key[-8:]}", receiver.url, "price_change", {}, rule(key, webhook_url=receiver.url))
        webhooks.deliver(pg, hook, "whsec_unused", attempts=1)

    with pytest.raises(webhooks.DeliveryFailed, match="HTTP 500"):
        send(owner)
    with pytest.raises(webhooks.WebhookRefused, match="internal address"):
        send(other)
    assert len(receiver.received) == 1  # the other key's webhook never left

    from alerts.models import AlertMatch, AlertRule

    owned = AlertRule.objects.get(key__prefix=owner[:12])
    AlertMatch.objects.create(rule=owned, event_id="e1", event_type="price_change", webhook_id=f"msg_{owner[-8:]}", request={})
    shown = httpx.get(f"{live_webapp}/api/v1/alerts/{owned.id}/deliveries", headers=auth(owner)).json()["items"]
    assert [(d["status"], d["response_code"], d["error"]) for d in shown] == [("failing", 500, answer[: webhooks.EXCERPT_CHARS])]
    assert "sk_live" not in str(pg.execute("SELECT error FROM webhook_delivery").fetchall())


def test_a_deleted_rule_or_a_borrowed_secret_is_refused_at_delivery(transactional_db, pg):
    key = make_key("pro")
    rule_id = rule(key, webhook_url="https://hooks.example.com/mine")
    elsewhere = webhooks.Webhook("msg_x1", "https://attacker.example.com/", "price_change", {}, rule_id)
    with pytest.raises(webhooks.WebhookRefused, match="not the one of alert rule"):
        webhooks.deliver(pg, elsewhere, "whsec_" + base64.b64encode(b"x" * 32).decode())
    pg.execute("DELETE FROM alert_rules WHERE id = %s", (rule_id,))
    gone = webhooks.Webhook("msg_x2", "https://hooks.example.com/mine", "price_change", {}, rule_id)
    with pytest.raises(webhooks.WebhookRefused, match=f"alert rule {rule_id} no longer exists"):
        webhooks.deliver(pg, gone, "whsec_" + base64.b64encode(b"x" * 32).decode())
    logged = pg.execute("SELECT webhook_id, delivered, error FROM webhook_delivery ORDER BY id").fetchall()
    assert [(w, d) for w, d, _ in logged] == [("msg_x1", False), ("msg_x2", False)]


def test_a_significant_price_change_is_neither_matched_again_nor_dead_lettered(transactional_db, topics):
    from gpubroker.schema import SignificantPriceChange

    h100 = rule(make_key("pro"), gpu="H100")
    dead = kafka_tail(settings.Topics.DEAD_LETTER)
    moved = change("s", old="2.50", new="1.90")  # -24%: the change job sends a significant_price_change beside it
    produce(topics["changes"], [moved, SignificantPriceChange(**moved.model_dump(exclude={"type", "event_id"}),
                                                              event_id=str(uuid.uuid4()))])  # fmt: skip
    run_matcher(topics, 6)
    assert [(s["alert_rule_id"], s["payload"]["event"]["event_id"]) for s in read_all(topics["webhooks"], 1)] == [(h100, moved.event_id)]
    letters = [m for m in dead.consume(100, timeout=5) if not m.error() and dict(m.headers())["source.topic"] == topics["changes"].encode()]
    dead.close()
    assert letters == []
