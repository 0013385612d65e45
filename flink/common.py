"""What the GPUBroker Flink jobs share: their arguments, the table environment and the source table.

Every job reads `offer_observed` events (gpubroker.schema.OfferObserved, JSON) from Kafka. Topics,
bootstrap servers and the consumer group default to `gpubroker.settings` and can be overridden on
the command line, so tests and benchmarks run their own job instances on their own topics:

    flink run -d -py flink/price_changes.py -pyclientexec .venv-flink/bin/python \
        --source-topic T --group-id G --name N ...

Run under `flink run` the job is submitted to the session cluster (flink/cluster.py) and returns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))  # gpubroker.settings: standard library only

from gpubroker import settings  # noqa: E402

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment

FLINK_LIB = Path(os.environ.get("GPUBROKER_FLINK_LIB", ROOT / ".stack" / "flink" / "lib"))
# detected_at: when the job emitted a result (processing time), ISO-8601 UTC like observed_at
NOW_ISO = "DATE_FORMAT(CURRENT_TIMESTAMP, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')"


def arguments(description: str, group_id: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--name", help="pipeline name shown in the Flink UI (the job's identity for submission)")
    parser.add_argument("--bootstrap", default=settings.KAFKA_BOOTSTRAP)
    parser.add_argument("--source-topic", default=settings.Topics.PRICE_UPDATES)
    parser.add_argument("--group-id", default=group_id, help="Kafka consumer group (offsets committed on checkpoints)")
    parser.add_argument("--state-ttl", default=settings.FLINK_STATE_TTL,
                        help="keep an offer's state this long after its last observation (Flink duration)")  # fmt: skip
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink configuration option for this job only (repeatable)")  # fmt: skip
    return parser


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def uuid_of(text_sql: str) -> str:
    """SQL for the UUID spelled by MD5(text): gpubroker.schema.event_uuid in Flink SQL."""
    h = f"MD5({text_sql})"
    parts = [f"SUBSTR({h}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    return f"CONCAT_WS('-', {', '.join(parts)})"


def table_environment(args: argparse.Namespace, name: str) -> TableEnvironment:
    # imported here: PyFlink lives in .venv-flink, and the tests read the jobs' SQL without it
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    jars = sorted(FLINK_LIB.glob("*.jar"))
    if not any(j.name.startswith("flink-sql-connector-kafka-") for j in jars):
        sys.exit(f"Flink Kafka connector jar not found in {FLINK_LIB}: run `make up` (mvn resolves it)")
    config.set("pipeline.jars", ";".join(j.as_uri() for j in jars))
    config.set("pipeline.name", args.name or name)
    config.set("parallelism.default", str(args.parallelism))
    config.set("table.local-time-zone", "UTC")
    config.set("table.exec.state.ttl", args.state_ttl)
    config.set("pipeline.object-reuse", "true")  # SQL operators do not keep records: chained operators need no copies
    for option in args.set:
        key, _, value = option.partition("=")
        config.set(key.strip(), value.strip())
    return env


# the Kafka client inside the connector jar is shaded: its login modules live under this package
SHADED_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka"


def kafka_options(args: argparse.Namespace, topic: str) -> str:
    """A Kafka table's options: the topic, and the cluster as this process's principal
    (`settings.kafka_config`, from the environment: the credentials never reach a command line)."""
    config = settings.kafka_config() | {"bootstrap.servers": args.bootstrap}
    options = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": config["bootstrap.servers"]}
    if "sasl.username" in config:
        login = f"{SHADED_KAFKA}.common.security.scram.ScramLoginModule required"
        user, password = (config[k].replace("\\", "\\\\").replace('"', '\\"') for k in ("sasl.username", "sasl.password"))
        options |= {"properties.security.protocol": config["security.protocol"],
                    "properties.sasl.mechanism": config["sasl.mechanism"],
                    "properties.sasl.jaas.config": f'{login} username="{user}" password="{password}";'}  # fmt: skip
    return ",\n    ".join(f"{sql_string(key)} = {sql_string(value)}" for key, value in options.items())


def kafka_source(args: argparse.Namespace, table: str, topic: str, columns: str) -> str:
    """DDL of a JSON Kafka source (malformed messages are skipped), read from the group's committed
    offsets (the earliest for a new group)."""
    return f"""
CREATE TEMPORARY TABLE {table} (
    {columns}
) WITH (
    {kafka_options(args, topic)},
    'properties.group.id' = {sql_string(args.group_id)},
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = 'earliest',
    'format' = 'json',
    'json.ignore-parse-errors' = 'true',
    'json.timestamp-format.standard' = 'ISO-8601'
)"""


def observations(args: argparse.Namespace, time_columns: str) -> list[str]:
    """DDL of `observations`: the `offer_observed` events (other messages on the topic are skipped);
    `time_columns` declare observed_at and landed_at as the job reads them, and any watermark."""
    return [kafka_source(args, "events", args.source_topic, f"""`type` STRING,
    event_id STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    gpu_form_factor STRING,
    gpu_count INT,
    region STRING,
    country STRING,
    continent STRING,
    price_per_hour DECIMAL(12, 4),
    price_per_gpu DECIMAL(12, 4),
    spot_price DECIMAL(12, 4),
    availability STRING,
    available_count INT,
    old_price DECIMAL(12, 4),
    old_availability STRING,
    interconnect STRING,
    pricing_type STRING,
    commitment_months INT,
    {time_columns}"""),
        "CREATE TEMPORARY VIEW observations AS SELECT * FROM events WHERE `type` = 'offer_observed' AND price_per_hour > 0"]


def kafka_sink(args: argparse.Namespace, table: str, topic: str, columns: str) -> str:
    """DDL of a JSON Kafka sink keyed by its `message_key` column (not part of the value)."""
    return f"""
CREATE TEMPORARY TABLE {table} (
    message_key STRING,
    {columns}
) WITH (
    {kafka_options(args, topic)},
    'key.format' = 'raw',
    'key.fields' = 'message_key',
    'value.format' = 'json',
    'value.fields-include' = 'EXCEPT_KEY',
    'value.json.timestamp-format.standard' = 'ISO-8601',
    'sink.delivery-guarantee' = 'at-least-once',
    'properties.linger.ms' = '10',
    'properties.batch.size' = '262144'
)"""


def jdbc_sink(table: str, pg_table: str, columns: str, key: str, url: str) -> str:
    """DDL of an upserting PostgreSQL sink (flushed every second and on every checkpoint); `url` is
    settings.DATABASE_URL (from the environment, never the command line: it holds a password)."""
    parts = urlsplit(url)
    jdbc = f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}?stringtype=unspecified"
    return f"""
CREATE TEMPORARY TABLE {table} (
    {columns},
    PRIMARY KEY ({key}) NOT ENFORCED
) WITH (
    'connector' = 'jdbc',
    'url' = {sql_string(jdbc)},
    'table-name' = {sql_string(pg_table)},
    'username' = {sql_string(unquote(parts.username or ""))},
    'password' = {sql_string(unquote(parts.password or ""))},
    'sink.buffer-flush.interval' = '1 s',
    'sink.max-retries' = '5'
)"""


def submit(env: TableEnvironment, statements: list[str], inserts: list[str]) -> None:
    """Create the tables and views, then run the inserts as one job; print its id."""
    for statement in statements:
        env.execute_sql(statement)
    job = env.create_statement_set()
    for insert in inserts:
        job.add_insert_sql(insert)
    client = job.execute().get_job_client()
    print(f"submitted job {client.get_job_id() if client else '?'}", flush=True)
