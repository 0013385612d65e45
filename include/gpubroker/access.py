"""Who may do what on Kafka: each component's principal and its rights, in one table.

Every component authenticates with SASL/SCRAM-SHA-512 as its own principal (`settings.kafka_config`);
the nodes refuse anyone else (astro/local/kafka/server.properties: StandardAuthorizer, no ACL means no
access). `admin` is a super user (topics, the tests, an operator's shell); every other principal gets
exactly its row:

| principal | reads (its consumer group) | writes |
| --- | --- | --- |
| pipeline (Airflow tasks, outbox relay) | - | price-updates, provider-events, provider-calls |
| flink (the jobs) | price-updates, provider-calls (`gpubroker-flink-*`) | price-changes, anomalies, aggregations, health-scores |
| bridge (feed bridge) | price-changes, anomalies, provider-events, health-scores (`gpubroker-feed-bridge`) | dead-letter |
| matcher (alert matcher) | price-changes, anomalies (`gpubroker-alert-matcher`) | webhooks, dead-letter |
| api (webapp) | - | webhooks |
| triggerer (Airflow's webhook AssetWatcher) | webhooks (`gpubroker-webhook-watcher`) | - |

So only the alert matcher and the API can ask for a webhook, and only the pipeline can publish
prices. A right to write one topic lets a principal's idempotent producer start (Kafka 2.8+, KIP-679):
nobody gets the cluster-wide IdempotentWrite.

`python -m gpubroker.access [--brokers N]` (the local stack's `up`, the compose file's airflow-init)
makes it so, idempotently: it waits for N brokers, sets each principal's SCRAM credential from
KAFKA_PASSWORD_<PRINCIPAL>, creates the table's ACLs and deletes any other ACL of these principals.
It connects as the nodes' own user `broker` over PLAIN (password KAFKA_PASSWORD_BROKER): the one
identity that exists before any SCRAM credential does.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import NamedTuple

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from gpubroker import settings
from gpubroker.settings import Groups, Topics

__all__ = ["ADMIN", "PRINCIPALS", "RIGHTS", "Right", "apply", "bindings"]

ADMIN = "admin"  # a super user (server.properties `super.users`), as is the nodes' own `broker`
SCRAM_ITERATIONS = 8192


class Right(NamedTuple):
    resource: ResourceType
    name: str
    operation: AclOperation
    pattern: ResourcePatternType = ResourcePatternType.LITERAL


def reads(topic: str) -> Right:
    return Right(ResourceType.TOPIC, topic, AclOperation.READ)


def writes(topic: str) -> Right:
    return Right(ResourceType.TOPIC, topic, AclOperation.WRITE)


def group(name: str, pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> Right:
    """Join the consumer group `name` and commit its offsets."""
    return Right(ResourceType.GROUP, name, AclOperation.READ, pattern)


RIGHTS: dict[str, tuple[Right, ...]] = {
    "pipeline": (writes(Topics.PRICE_UPDATES), writes(Topics.PROVIDER_EVENTS), writes(Topics.PROVIDER_CALLS)),
    "flink": (reads(Topics.PRICE_UPDATES), reads(Topics.PROVIDER_CALLS),
              group(Groups.FLINK_PREFIX, ResourcePatternType.PREFIXED), writes(Topics.PRICE_CHANGES),
              writes(Topics.ANOMALIES), writes(Topics.AGGREGATIONS), writes(Topics.HEALTH_SCORES)),
    "bridge": (reads(Topics.PRICE_CHANGES), reads(Topics.ANOMALIES), reads(Topics.PROVIDER_EVENTS),
               reads(Topics.HEALTH_SCORES), group(Groups.FEED_BRIDGE), writes(Topics.DEAD_LETTER)),
    "matcher": (reads(Topics.PRICE_CHANGES), reads(Topics.ANOMALIES), group(Groups.ALERT_MATCHER),
                writes(Topics.WEBHOOKS), writes(Topics.DEAD_LETTER)),
    "api": (writes(Topics.WEBHOOKS),),
    "triggerer": (reads(Topics.WEBHOOKS), group(Groups.WEBHOOK_WATCHER)),
}  # fmt: skip
PRINCIPALS = (ADMIN, *RIGHTS)


def bindings(principal: str) -> set[AclBinding]:
    """The ACLs that grant `principal` its rights (from any host)."""
    return {AclBinding(r.resource, r.name, r.pattern, f"User:{principal}", "*", r.operation, AclPermissionType.ALLOW)
            for r in RIGHTS.get(principal, ())}  # fmt: skip


def apply(admin: AdminClient, passwords: Mapping[str, str], timeout: float = 30.0) -> None:
    """Give every principal its password (SCRAM-SHA-512) and exactly its rights."""
    credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(p, credential, passwords[p].encode()) for p in PRINCIPALS]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout)
    wanted = set().union(*(bindings(p) for p in PRINCIPALS))
    held = set()
    for principal in PRINCIPALS:
        everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{principal}", None,
                                      AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        held |= set(admin.describe_acls(everything, request_timeout=timeout).result(timeout))
    stale = [AclBindingFilter(*_fields(b)) for b in held - wanted]
    for future in admin.delete_acls(stale).values() if stale else ():
        future.result(timeout)
    for future in admin.create_acls(list(wanted - held)).values() if wanted - held else ():
        future.result(timeout)


def _fields(binding: AclBinding) -> tuple:
    return (binding.restype, binding.name, binding.resource_pattern_type, binding.principal, binding.host,
            binding.operation, binding.permission_type)  # fmt: skip


def wait_for_brokers(admin: AdminClient, count: int, timeout: float = 120.0) -> None:
    """Until `count` brokers are in the cluster's metadata (they register a moment after listening)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if len(admin.list_topics(timeout=5).brokers) >= count:
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} Kafka brokers registered after {timeout:.0f} s")
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", type=int, default=1, help="wait until this many brokers are registered")
    args = parser.parse_args()
    passwords = {p: os.environ[f"KAFKA_PASSWORD_{p.upper()}"] for p in ("broker", *PRINCIPALS)}
    admin = AdminClient(settings.kafka_config() | {
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": "broker", "sasl.password": passwords["broker"],
    })  # fmt: skip
    wait_for_brokers(admin, args.brokers)
    apply(admin, passwords)
    print(f"Kafka principals and ACLs in place: {', '.join(PRINCIPALS)}")


if __name__ == "__main__":
    main()
