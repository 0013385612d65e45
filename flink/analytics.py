"""Flink job: offer observations -> price anomalies and 1-minute aggregates, in event time.

Reads `offer_observed` events (`gpubroker.price-updates`); time is each event's `observed_at`, with
watermarks `--max-delay` behind the latest seen (events later than that are dropped from windows).
Offers observed as unavailable (vanished) take no part in the statistics.

- `gpubroker.anomalies` and table `anomalies` (type `anomaly`, keyed `provider:offer_id`):
  - `zscore`: the price per GPU is more than 3 sample standard deviations from the mean of its GPU
    model and form factor over the trailing `--zscore-window` of event time (the current row
    excluded; at least 10 samples and a spread of at least $0.0001). Rows with the same event time
    see each other, so the result does not depend on arrival order.
  - `drop`: the price fell more than 30% below the offer's previous price (the event's old_price,
    the store's authoritative value): stateless, emitted at once.
- `gpubroker.aggregations` and table `gpu_price_aggregates` (type `price_aggregate`, keyed
  `gpu:dimension:value`): 1-minute tumbling windows per GPU model x provider and per GPU model x
  continent: min/avg/max price per GPU, distinct offers, and offers available or limited.

Event ids derive from the input's (schema.derived_id); PostgreSQL rows are upserted on their key
(JDBC sink, flushed at least every checkpoint), so a replay after recovery rewrites the same rows.
"""

from __future__ import annotations

from common import arguments, jdbc_sink, kafka_sink, observations, submit, table_environment, uuid_of
from gpubroker import settings

ANOMALY_COLUMNS = """event_id STRING,
    `type` STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    gpu_form_factor STRING,
    region STRING,
    price_per_hour DECIMAL(12, 4),
    price_per_gpu DECIMAL(12, 4),
    mean DOUBLE,
    stddev DOUBLE,
    z DOUBLE,
    reason STRING,
    old_price DECIMAL(12, 4),
    observed_at TIMESTAMP_LTZ(3),
    detected_at TIMESTAMP_LTZ(3)"""

AGGREGATE_COLUMNS = """`type` STRING,
    gpu STRING,
    dimension STRING,
    `value` STRING,
    window_start TIMESTAMP_LTZ(3),
    window_end TIMESTAMP_LTZ(3),
    min_price_per_gpu DECIMAL(12, 4),
    avg_price_per_gpu DECIMAL(12, 4),
    max_price_per_gpu DECIMAL(12, 4),
    offers BIGINT,
    available BIGINT"""

ZSCORE_MIN_SAMPLES = 10
ZSCORE_LIMIT = 3
MIN_SPREAD = 0.0001  # USD: below a hundredth of a cent the window has no spread
DROP_RATIO = "0.7"  # a drop of more than 30%

RENTABLE = "CREATE TEMPORARY VIEW rentable AS SELECT * FROM observations WHERE availability <> 'unavailable'"


def zscore_view(window: str) -> str:
    """Per row, the count, mean and sample stddev of the other rows of its GPU model and form factor in
    the trailing window: the window sums include the current row (Flink OVER windows end there), so
    it is subtracted out."""
    return f"""
CREATE TEMPORARY VIEW scored AS
SELECT *,
    CASE WHEN n >= {ZSCORE_MIN_SAMPLES} AND stddev >= {MIN_SPREAD} THEN (x - mean) / stddev END AS z
FROM (
    SELECT *,
        CASE WHEN n >= {ZSCORE_MIN_SAMPLES} THEN mean END AS window_mean,
        CASE WHEN n >= 2 THEN SQRT(GREATEST((others_sq - n * mean * mean) / (n - 1), 0)) END AS stddev
    FROM (
        SELECT *, (others_sum / n) AS mean
        FROM (
            SELECT *, n_all - 1 AS n, sum_all - x AS others_sum, sq_all - x * x AS others_sq
            FROM (
                SELECT *,
                    COUNT(*) OVER w AS n_all,
                    SUM(x) OVER w AS sum_all,
                    SUM(x * x) OVER w AS sq_all
                FROM (SELECT *, CAST(price_per_gpu AS DOUBLE) AS x FROM rentable)
                WINDOW w AS (PARTITION BY gpu, gpu_form_factor ORDER BY event_time
                             RANGE BETWEEN INTERVAL {window} PRECEDING AND CURRENT ROW)
            )
            WHERE n_all > 1
        )
    )
)
"""


ANOMALIES = f"""
CREATE TEMPORARY VIEW found AS
SELECT provider || ':' || offer_id AS message_key, {uuid_of("event_id || ':anomaly:zscore'")} AS event_id,
    'anomaly' AS `type`, provider, offer_id, gpu, gpu_form_factor, region, price_per_hour, price_per_gpu,
    window_mean AS mean, stddev, z, 'zscore' AS reason, old_price, observed_at
FROM scored WHERE ABS(z) > {ZSCORE_LIMIT}
UNION ALL
SELECT provider || ':' || offer_id, {uuid_of("event_id || ':anomaly:drop'")},
    'anomaly', provider, offer_id, gpu, gpu_form_factor, region, price_per_hour, price_per_gpu,
    CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), 'drop', old_price, observed_at
FROM observations WHERE old_price > 0 AND price_per_hour < old_price * {DROP_RATIO}
"""


def aggregate(dimension: str, value_sql: str) -> str:
    offer = "provider || ':' || offer_id"
    return f"""
SELECT gpu || ':{dimension}:' || {value_sql} AS message_key, 'price_aggregate' AS `type`, gpu,
    '{dimension}' AS dimension, {value_sql} AS `value`,
    CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start, CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
    MIN(price_per_gpu) AS min_price_per_gpu, CAST(AVG(price_per_gpu) AS DECIMAL(12, 4)) AS avg_price_per_gpu,
    MAX(price_per_gpu) AS max_price_per_gpu, COUNT(DISTINCT {offer}) AS offers,
    COUNT(DISTINCT CASE WHEN availability IN ('available', 'limited') THEN {offer} END) AS available
FROM TABLE(TUMBLE(TABLE rentable, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, gpu, {value_sql}"""


AGGREGATES = f"""
CREATE TEMPORARY VIEW aggregated AS
{aggregate("provider", "provider")}
UNION ALL
{aggregate("continent", "COALESCE(continent, '??')")}
"""


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0], group_id="gpubroker-flink-analytics")
    parser.add_argument("--anomalies-topic", default=settings.Topics.ANOMALIES)
    parser.add_argument("--aggregations-topic", default=settings.Topics.AGGREGATIONS)
    parser.add_argument("--max-delay", default="'5' MINUTE", help="how late an event may arrive (SQL interval)")
    parser.add_argument("--zscore-window", default="'1' HOUR", help="trailing event-time window (SQL interval)")
    args = parser.parse_args(argv)
    env = table_environment(args, "gpubroker-analytics")
    # the JDBC sink takes no TIMESTAMP_LTZ: UTC wall-clock TIMESTAMPs (session and TaskManagers in UTC)
    anomaly_sink_columns = ANOMALY_COLUMNS.replace("`type` STRING,\n    ", "").replace("TIMESTAMP_LTZ", "TIMESTAMP")
    aggregate_sink_columns = AGGREGATE_COLUMNS.replace("`type` STRING,\n    ", "").replace("TIMESTAMP_LTZ", "TIMESTAMP")
    tables = [
        *observations(args, "observed_at TIMESTAMP_LTZ(3),\n"
                            "    event_time AS COALESCE(observed_at, TO_TIMESTAMP_LTZ(0, 3)),\n"
                            f"    WATERMARK FOR event_time AS event_time - INTERVAL {args.max_delay}"),
        kafka_sink(args, "anomalies_topic", args.anomalies_topic, ANOMALY_COLUMNS),
        kafka_sink(args, "aggregations_topic", args.aggregations_topic, AGGREGATE_COLUMNS),
        # PostgreSQL from GPUBROKER_DATABASE_URL (environment, never the command line: it holds a password)
        jdbc_sink("anomalies_table", "anomalies", anomaly_sink_columns, "event_id", settings.DATABASE_URL),
        jdbc_sink("aggregates_table", "gpu_price_aggregates", aggregate_sink_columns,
                  "gpu, dimension, `value`, window_start", settings.DATABASE_URL),
        RENTABLE,
        zscore_view(args.zscore_window),
        ANOMALIES,
        AGGREGATES,
    ]  # fmt: skip
    anomaly_fields = "event_id, provider, offer_id, gpu, gpu_form_factor, region, price_per_hour, price_per_gpu, " \
                     "mean, stddev, z, reason, old_price, CAST(observed_at AS TIMESTAMP(3))"  # fmt: skip
    inserts = [
        # detected_at: processing time, set here (Flink cannot re-parse CURRENT_TIMESTAMP inside a view)
        "INSERT INTO anomalies_topic SELECT *, CURRENT_TIMESTAMP FROM found",
        f"INSERT INTO anomalies_table SELECT {anomaly_fields}, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)) FROM found",
        "INSERT INTO aggregations_topic SELECT * FROM aggregated",
        "INSERT INTO aggregates_table SELECT gpu, dimension, `value`, CAST(window_start AS TIMESTAMP(3)),"
        " CAST(window_end AS TIMESTAMP(3)), min_price_per_gpu,"
        " avg_price_per_gpu, max_price_per_gpu, offers, available FROM aggregated",
    ]
    submit(env, tables, inserts)


if __name__ == "__main__":
    main()
