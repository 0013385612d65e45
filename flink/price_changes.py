"""Flink job: price updates -> detected price changes.

Reads `gpubroker.price-updates` (JSON `price_update` events from the sync) and writes to
`gpubroker.price-changes` every update whose price differs from the previous price seen for the
same offer (the event's own `old_price` for the first one), with the change in percent and its
direction, keyed by `provider:offer_id`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "include"))  # gpubroker.settings: standard library only

from pyflink.table import EnvironmentSettings, TableEnvironment  # noqa: E402

from gpubroker import settings  # noqa: E402

FLINK_LIB = Path(os.environ.get("GPUBROKER_FLINK_LIB", ROOT / ".stack" / "flink" / "lib"))
GROUP_ID = "gpubroker-flink-price-changes"

SOURCE = f"""
CREATE TABLE price_updates (
    event_id STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    region STRING,
    old_price DECIMAL(12, 4),
    new_price DECIMAL(12, 4),
    `timestamp` STRING,
    proc AS PROCTIME()
) WITH (
    'connector' = 'kafka',
    'topic' = '{settings.Topics.PRICE_UPDATES}',
    'properties.bootstrap.servers' = '{settings.KAFKA_BOOTSTRAP}',
    'properties.group.id' = '{GROUP_ID}',
    'scan.startup.mode' = 'group-offsets',
    'properties.auto.offset.reset' = 'earliest',
    'format' = 'json',
    'json.ignore-parse-errors' = 'true'
)
"""

SINK = f"""
CREATE TABLE price_changes (
    offer_key STRING,
    event_id STRING,
    `type` STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    region STRING,
    old_price DECIMAL(12, 4),
    new_price DECIMAL(12, 4),
    change_percent DOUBLE,
    direction STRING,
    `timestamp` STRING,
    detected_at STRING
) WITH (
    'connector' = 'kafka',
    'topic' = '{settings.Topics.PRICE_CHANGES}',
    'properties.bootstrap.servers' = '{settings.KAFKA_BOOTSTRAP}',
    'key.format' = 'raw',
    'key.fields' = 'offer_key',
    'value.format' = 'json',
    'value.fields-include' = 'EXCEPT_KEY',
    'sink.delivery-guarantee' = 'at-least-once'
)
"""

# LAG must be computed in a subquery: Flink rejects it inside WHERE.
DETECT = """
INSERT INTO price_changes
SELECT
    provider || ':' || offer_id,
    event_id,
    'price_change',
    provider,
    offer_id,
    gpu,
    region,
    reference,
    new_price,
    CAST((new_price - reference) * 100 / reference AS DOUBLE),
    CASE WHEN new_price > reference THEN 'up' ELSE 'down' END,
    `timestamp`,
    DATE_FORMAT(CURRENT_TIMESTAMP, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM (
    SELECT *, COALESCE(LAG(new_price) OVER (PARTITION BY provider, offer_id ORDER BY proc), old_price) AS reference
    FROM price_updates
)
WHERE reference IS NOT NULL AND reference > 0 AND new_price <> reference
"""


def table_environment() -> TableEnvironment:
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    jars = sorted(FLINK_LIB.glob("*.jar"))
    if not any(j.name.startswith("flink-sql-connector-kafka-") for j in jars):
        sys.exit(f"Flink Kafka connector jar not found in {FLINK_LIB}: run `make up` (mvn resolves it)")
    config.set("pipeline.jars", ";".join(j.as_uri() for j in jars))
    config.set("python.executable", sys.executable)
    config.set("table.local-time-zone", "UTC")
    config.set("pipeline.name", "gpubroker-price-changes")
    config.set("execution.checkpointing.interval", "10 s")
    config.set("parallelism.default", "1")
    return env


def main() -> None:
    env = table_environment()
    env.execute_sql(SOURCE)
    env.execute_sql(SINK)
    result = env.execute_sql(DETECT)
    client = result.get_job_client()
    print(f"price-changes job running: {client.get_job_id() if client else '?'}", flush=True)
    result.wait()


if __name__ == "__main__":
    main()
