"""Every service behind a credential (the running stack's Kafka and Redis).

- Kafka (SASL/SCRAM, ACLs) and Redis (ACL users) refuse a client without a password, or with a wrong one.
- Each Kafka principal may read, write and join exactly what `gpubroker.access` grants it: only the
  alert matcher and the API may ask for a webhook, only the pipeline may publish prices; a write it
  has no right to is refused by the broker, and nothing lands.
- Each Redis component user may not run admin commands; the bridge's reaches only the feed's keys.
- (marker `stack`) Each service of the stack runs as its own principal and Redis user, none as the
  admin and none with another's password, and listens on loopback only.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import redis
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AclOperation, AdminClient, ResourceType

from gpubroker import access, settings
from gpubroker.settings import Groups, Topics
from tests.conftest import ISOLATED_REDIS, ROOT, STATE, kafka_tail, stack_secrets

COMPONENTS = [p for p in access.PRINCIPALS if p != access.ADMIN]


def as_principal(name: str, password: str | None = None) -> dict:
    """Client settings of Kafka principal `name` (its password from the stack's secrets.env)."""
    password = password or stack_secrets()[f"KAFKA_PASSWORD_{name.upper()}"]
    return settings.kafka_config() | {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                                      "sasl.username": name, "sasl.password": password}  # fmt: skip


def anonymous() -> dict:
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "socket.timeout.ms": 5000}


def end_offsets(topic: str) -> list[int]:
    consumer = kafka_tail(topic)  # the admin's
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)]
    finally:
        consumer.close()


def delivery_error(config: dict, topic: str) -> KafkaError | None:
    """Produce one message to `topic` (no idempotence: the plain write right is what is asked);
    the delivery's error, None when the broker took it."""
    errors: list = []
    producer = Producer(config | {"enable.idempotence": False, "message.timeout.ms": 5000})
    producer.produce(topic, key=b"auth-test", value=b'{"type": "auth-test"}', on_delivery=lambda e, _m: errors.append(e))
    producer.flush(15)
    assert len(errors) == 1
    return errors[0]


# --- refused without credentials ------------------------------------------------------------------


def test_kafka_refuses_a_client_without_credentials_and_nothing_it_sends_lands():
    with pytest.raises(KafkaException) as refused:
        AdminClient(anonymous()).list_topics(timeout=5)
    assert refused.value.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN)
    before = end_offsets(Topics.WEBHOOKS)
    error = delivery_error(anonymous(), Topics.WEBHOOKS)  # anyone reaching Kafka asking for a signed webhook
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT
    assert end_offsets(Topics.WEBHOOKS) == before
    assert Topics.WEBHOOKS in AdminClient(settings.kafka_config()).list_topics(timeout=10).topics  # the admin is let in


def test_kafka_refuses_a_principal_with_a_wrong_password():
    errors: list[KafkaError] = []
    wrong = Producer(as_principal("matcher", password="not-" + uuid.uuid4().hex) | {"error_cb": errors.append})
    with pytest.raises(KafkaException):
        wrong.list_topics(timeout=5)
    wrong.poll(1)  # (serves the error callback)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def redis_address() -> tuple[str, int]:
    parts = urlsplit(settings.REDIS_URL)
    return parts.hostname, parts.port or 6379


def test_redis_refuses_a_client_without_a_password_or_with_a_wrong_one():
    host, port = redis_address()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=port, socket_timeout=5).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=port, username="webapp", password="not-" + uuid.uuid4().hex, socket_timeout=5).ping()
    assert redis.Redis.from_url(settings.REDIS_URL).ping()  # the admin is let in


# --- each principal exactly its rights ------------------------------------------------------------


def authorized(principal: str, topics: list[str]) -> dict[str, set[AclOperation]]:
    """What the broker says `principal` may do on each topic (nothing where it may not even see it)."""
    admin = AdminClient(as_principal(principal))
    found = {}
    for topic, future in admin.describe_topics(TopicCollection(topics), include_authorized_operations=True).items():
        try:
            found[topic] = set(future.result(15).authorized_operations or ())
        except KafkaException as error:
            assert error.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
            found[topic] = set()
    return found


def test_each_component_may_read_what_it_consumes_in_its_own_group():
    from alerts import matcher
    from feed import bridge, protocol

    def reads(principal: str) -> set[str]:
        return {r.name for r in access.RIGHTS[principal] if (r.resource, r.operation) == (ResourceType.TOPIC, AclOperation.READ)}

    assert set(protocol.TOPICS) <= reads("bridge") and set(matcher.TOPICS) <= reads("matcher")
    assert (bridge.GROUP_ID, matcher.GROUP_ID) == (Groups.FEED_BRIDGE, Groups.ALERT_MATCHER)
    flink_groups = re.findall(r'group_id="([^"]+)"', "".join(p.read_text() for p in (ROOT / "flink").glob("*.py")))
    assert flink_groups and all(g.startswith(Groups.FLINK_PREFIX) for g in flink_groups)
    assert all(any(r.operation == AclOperation.WRITE and r.name == topic for rights in access.RIGHTS.values() for r in rights)
               for topic in Topics.ALL)  # every topic has a writer: a topic added without one fails here  # fmt: skip


@pytest.mark.parametrize("principal", COMPONENTS)
def test_each_principal_may_read_and_write_exactly_the_topics_its_row_grants(principal):
    granted = {(r.name, r.operation) for r in access.RIGHTS[principal] if r.resource == ResourceType.TOPIC}
    held = {(topic, op) for topic, ops in authorized(principal, list(Topics.ALL)).items()
            for op in ops & {AclOperation.READ, AclOperation.WRITE}}  # fmt: skip
    assert held == granted


def test_only_the_matcher_and_the_api_may_write_webhook_requests_and_only_the_pipeline_prices():
    def writers(topic: str) -> set[str]:
        return {p for p in access.PRINCIPALS if AclOperation.WRITE in authorized(p, [topic])[topic]}

    assert writers(Topics.WEBHOOKS) == {"admin", "matcher", "api"}
    assert writers(Topics.PRICE_UPDATES) == {"admin", "pipeline"}
    before = end_offsets(Topics.WEBHOOKS)
    for principal in set(COMPONENTS) - {"matcher", "api"}:  # the broker itself refuses their writes
        error = delivery_error(as_principal(principal), Topics.WEBHOOKS)
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, principal
    assert end_offsets(Topics.WEBHOOKS) == before


def test_each_principal_may_join_only_its_own_consumer_group():
    own = {"bridge": Groups.FEED_BRIDGE, "matcher": Groups.ALERT_MATCHER, "triggerer": Groups.WEBHOOK_WATCHER,
           "flink": Groups.FLINK_PREFIX + "price-changes"}  # fmt: skip
    for principal in COMPONENTS:
        admin = AdminClient(as_principal(principal))
        for holder, group in own.items():
            future = admin.describe_consumer_groups([group], include_authorized_operations=True)[group]
            if holder == principal:
                assert AclOperation.READ in set(future.result(15).authorized_operations or ()), (principal, group)
            else:
                with pytest.raises(KafkaException) as refused:
                    future.result(15)
                assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED, (principal, group)


def test_redis_component_users_run_no_admin_commands_and_the_bridge_reaches_only_the_feed():
    host, port = redis_address()
    secrets = stack_secrets()

    def user(name: str) -> redis.Redis:
        return redis.Redis(host=host, port=port, username=name, password=secrets[f"REDIS_PASSWORD_{name.upper()}"],
                           db=int(urlsplit(ISOLATED_REDIS).path.strip("/")), socket_timeout=5)  # fmt: skip

    for name in ("webapp", "bridge", "pipeline"):
        client = user(name)
        assert client.ping()
        for command in (("FLUSHALL",), ("CONFIG", "GET", "maxmemory"), ("KEYS", "*"), ("ACL", "LIST")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
    key = f"gpubroker:feed:seen:auth-test-{uuid.uuid4().hex}"
    bridge = user("bridge")
    assert bridge.set(key, 1, ex=60) and bridge.delete(key) == 1  # its own keys
    with pytest.raises(redis.exceptions.NoPermissionError):
        bridge.get("gpubroker:health")  # another component's


# --- the running stack's services -----------------------------------------------------------------

# What each service of the stack is to Kafka and to Redis (astro/local/stack.sh `as_principal`); the
# others (PostgreSQL, Redis, Kafka, the replay server, Airflow's API server and DAG processor, Flink's
# JVMs) have neither.
SERVICE_PRINCIPALS = {"webapp": ("api", "webapp"), "feed-bridge": ("bridge", "bridge"), "alert-matcher": ("matcher", None),
                      "outbox-relay": ("pipeline", None), "airflow-scheduler": ("pipeline", "pipeline"),
                      "airflow-triggerer": ("triggerer", None)}  # fmt: skip


def stack_processes() -> dict[str, psutil.Process]:
    found = {}
    for pid_file in sorted((STATE / "run").glob("*.pid")):
        try:
            found[pid_file.stem] = psutil.Process(int(pid_file.read_text().split()[0]))
        except (ValueError, psutil.NoSuchProcess):
            continue
    return found


def environment(process: psutil.Process) -> dict[str, str]:
    raw = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").split("=", 1) for entry in raw if b"=" in entry)


@pytest.mark.stack
def test_each_service_runs_as_its_own_principal_none_as_the_admin_or_with_another_s_password():
    processes = stack_processes()
    assert set(SERVICE_PRINCIPALS) <= set(processes), sorted(processes)
    secrets = stack_secrets()
    passwords = {name: value for name, value in secrets.items() if name.startswith(("KAFKA_PASSWORD_", "REDIS_PASSWORD_"))}
    assert len(passwords) >= 11
    for service, process in processes.items():
        env = environment(process)
        kafka, redis_user = SERVICE_PRINCIPALS.get(service, (None, None))
        assert env.get("GPUBROKER_KAFKA_USER") == kafka, service
        if kafka:
            assert env["GPUBROKER_KAFKA_PASSWORD"] == secrets[f"KAFKA_PASSWORD_{kafka.upper()}"], service
        url = urlsplit(env.get("GPUBROKER_REDIS_URL", ""))
        assert url.username == redis_user, service
        if redis_user:
            assert url.password == secrets[f"REDIS_PASSWORD_{redis_user.upper()}"], service
        own = {secrets.get(f"KAFKA_PASSWORD_{(kafka or '').upper()}"),
               secrets.get(f"REDIS_PASSWORD_{(redis_user or '').upper()}")}
        others = [name for name, value in passwords.items() if value not in own and any(value in v for v in env.values())]
        assert not others, f"{service} holds {others}"
    watcher = json.loads(environment(processes["airflow-triggerer"])["AIRFLOW_CONN_GPUBROKER_KAFKA"])["extra"]
    assert (watcher["sasl.username"], watcher["group.id"]) == ("triggerer", Groups.WEBHOOK_WATCHER)


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.mark.stack
def test_every_service_of_the_stack_listens_on_loopback_only():
    listening = []
    for service, process in stack_processes().items():
        for member in [process, *process.children(recursive=True)]:
            try:
                sockets = member.net_connections(kind="inet")
            except psutil.NoSuchProcess:
                continue
            listening += [(service, s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN]
    assert {"postgres", "redis", "kafka", "webapp"} <= {service for service, _, _ in listening}
    assert [entry for entry in listening if entry[1] not in LOOPBACK] == []
