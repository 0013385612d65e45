"""Flink job: provider calls and landings -> a health score per provider, every minute, in event time.

Reads `provider_call` events (`gpubroker.provider-calls`: each health-check probe's and each sync
fetch's outcome and latency) and the landings (`offer_observed` events on `gpubroker.price-updates`,
timed by their `landed_at`, the landing's commit). Writes `health_score` events to
`gpubroker.health-scores` (keyed by provider) and the latest score per provider to the table
`provider_health_scores` (JDBC upsert on `provider`).

For each provider and each minute in which it had a call or a landing, the score of the trailing
`WINDOW_MINUTES` (15) minutes of event time ending with that minute (window_end a whole minute):

    score = 0                                               when none of the window's calls succeeded
            max(0.1, success x latency x freshness)         otherwise, to 4 decimal places
    success   = successful calls / calls                    (probes and sync fetches)
    latency   = 0.5 when the window's successful probes average over 2 s, 0.75 over 1 s, else 1
                (a sync's fetch reads whole listings, many pages: its duration is no call's latency)
    freshness = 1 while the provider's last landing is at most 2 sync cadences old (the vendor
                table's `cadence`: 5 min, 1 h or 1 day), falling linearly to 0 at 6 cadences; 1 when
                the job has seen no landing of the provider (a new job: it is judged on its calls)

The score is monotone: another failure or a slower probe never raises it. Windows with no call give
no score. Watermarks trail the latest event by `--max-delay` (later events are dropped); a source
partition with nothing new for `--idle-timeout` stops holding the watermark back, so the hourly
landings do not stall the minutely scores. The last landing is per-provider state (kept while the
provider is probed; dropped after `--state-ttl` without any event). A call re-sent by the outbox
(same event_id) is counted once.

Event ids: `schema.health_score_id(provider, window_end)`, so a replay after recovery repeats them and
rewrites the same row.
"""

from __future__ import annotations

from common import (arguments, jdbc_sink, kafka_sink, kafka_source, observations, sql_string, submit,
                    table_environment, uuid_of)  # fmt: skip
from gpubroker import settings
from gpubroker.vendors import VENDORS

WINDOW_MINUTES = 15
FLOOR = 0.1  # a provider that answered at all scores at least this
SLOW_MS, VERY_SLOW_MS = 1000, 2000  # mean successful probe latency: x0.75 above SLOW_MS, x0.5 above VERY_SLOW_MS
FRESH_CADENCES, STALE_CADENCES = 2, 6  # landing age in sync cadences: fresh up to 2, worthless from 6


def score_sql(calls: str, ok_calls: str, ok_probes: str, ok_probe_ms: str, age: str, cadence: str) -> str:
    """SQL of the score, DECIMAL(5, 4), from the window's counts (`ok_probe_ms`: the sum of the
    successful probes' latencies), the age of the last landing in seconds (NULL: none seen) and the
    provider's cadence in seconds. Plain standard SQL (CASE, GREATEST, CAST), so PostgreSQL evaluates
    the very same text (tests/test_flink_health_scores.py checks its properties there)."""
    success = f"CAST({ok_calls} AS DOUBLE PRECISION) / {calls}"
    latency = f"CASE WHEN {ok_probe_ms} > {VERY_SLOW_MS} * {ok_probes} THEN 0.5 " \
              f"WHEN {ok_probe_ms} > {SLOW_MS} * {ok_probes} THEN 0.75 ELSE 1 END"  # fmt: skip
    freshness = f"CASE WHEN {age} IS NULL OR {age} <= {FRESH_CADENCES} * {cadence} THEN 1 " \
                f"ELSE GREATEST(0, CAST({STALE_CADENCES} * {cadence} - {age} AS DOUBLE PRECISION) " \
                f"/ ({STALE_CADENCES - FRESH_CADENCES} * {cadence})) END"  # fmt: skip
    return f"CAST(CASE WHEN {ok_calls} = 0 THEN 0 ELSE GREATEST({FLOOR}, {success} * ({latency}) * ({freshness})) END" \
           " AS DECIMAL(5, 4))"  # fmt: skip


def cadence_sql(provider: str) -> str:
    """SQL of the provider's sync cadence in seconds, from the vendor table (an unknown one: hourly)."""
    cases = " ".join(f"WHEN {sql_string(v.slug)} THEN {v.cadence}" for v in VENDORS.values())
    return f"CASE {provider} {cases} ELSE 3600 END"


CALL_COLUMNS = """`type` STRING,
    event_id STRING,
    provider STRING,
    kind STRING,
    ok BOOLEAN,
    latency_ms BIGINT,
    `at` TIMESTAMP_LTZ(3),
    proc AS PROCTIME()"""

SCORE_COLUMNS = """event_id STRING,
    `type` STRING,
    provider STRING,
    score DECIMAL(5, 4),
    calls BIGINT,
    failures BIGINT,
    latency_ms BIGINT,
    last_landed_at TIMESTAMP_LTZ(3),
    window_start TIMESTAMP_LTZ(3),
    window_end TIMESTAMP_LTZ(3),
    detected_at TIMESTAMP_LTZ(3)"""

# Each call once (the first of a re-sent event_id), then one row per call or landing.
SIGNALS = """
CREATE TEMPORARY VIEW signals AS
SELECT provider, event_time, 1 AS calls, CASE WHEN ok THEN 1 ELSE 0 END AS ok_calls,
    CASE WHEN ok AND kind = 'probe' THEN 1 ELSE 0 END AS ok_probes,
    CASE WHEN ok AND kind = 'probe' THEN latency_ms ELSE CAST(0 AS BIGINT) END AS ok_probe_ms,
    CAST(NULL AS TIMESTAMP_LTZ(3)) AS landed_at
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc) AS nth
    FROM calls WHERE `type` = 'provider_call' AND provider IS NOT NULL AND ok IS NOT NULL AND latency_ms >= 0
) WHERE nth = 1
UNION ALL
SELECT provider, landing_time, 0, 0, 0, CAST(0 AS BIGINT), landed_at FROM observations WHERE landed_at IS NOT NULL
"""

# Per provider and minute: the sums, and the minute's newest landing.
MINUTES = """
CREATE TEMPORARY VIEW minutes AS
SELECT provider, window_end, window_time, SUM(calls) AS calls, SUM(ok_calls) AS ok_calls,
    SUM(ok_probes) AS ok_probes, SUM(ok_probe_ms) AS ok_probe_ms, MAX(landed_at) AS landed_at
FROM TABLE(TUMBLE(TABLE signals, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY provider, window_start, window_end, window_time
"""

# The trailing window's sums (minutes whose window_time lies within WINDOW_MINUTES - 1 minutes before
# this one's), then the newest landing of all the provider's minutes so far.
SCORED = f"""
CREATE TEMPORARY VIEW scored AS
SELECT *, MAX(landed_at) OVER (PARTITION BY provider ORDER BY window_time
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_landed_at
FROM (
    SELECT provider, window_end, window_time, landed_at,
        SUM(calls) OVER w AS calls, SUM(ok_calls) OVER w AS ok_calls,
        SUM(ok_probes) OVER w AS ok_probes, SUM(ok_probe_ms) OVER w AS ok_probe_ms
    FROM minutes
    WINDOW w AS (PARTITION BY provider ORDER BY window_time
                 RANGE BETWEEN INTERVAL '{WINDOW_MINUTES - 1}' MINUTE PRECEDING AND CURRENT ROW)
)
"""

SCORES = f"""
CREATE TEMPORARY VIEW scores AS
SELECT provider AS message_key,
    {uuid_of("provider || '@' || DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss''Z''') || ':health_score'")} AS event_id,
    'health_score' AS `type`, provider,
    {score_sql("calls", "ok_calls", "ok_probes", "ok_probe_ms", "age", "cadence")} AS score,
    calls, calls - ok_calls AS failures,
    CASE WHEN ok_probes > 0 THEN CAST(ROUND(CAST(ok_probe_ms AS DOUBLE) / ok_probes, 0) AS BIGINT) END AS latency_ms,
    last_landed_at,
    CAST(window_end - INTERVAL '{WINDOW_MINUTES}' MINUTE AS TIMESTAMP_LTZ(3)) AS window_start,
    CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end
FROM (
    SELECT *, TIMESTAMPDIFF(SECOND, last_landed_at, CAST(window_end AS TIMESTAMP_LTZ(3))) AS age,
        {cadence_sql("provider")} AS cadence
    FROM scored
)
WHERE calls > 0
"""


def event_time(name: str, column: str, max_delay: str) -> str:
    """DDL of the event-time column `name` (`column`; the epoch when missing, so a row without it is
    late and dropped) with its watermark `max_delay` behind."""
    return f"{name} AS COALESCE({column}, TO_TIMESTAMP_LTZ(0, 3)),\n    WATERMARK FOR {name} AS {name} - INTERVAL {max_delay}"


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0], group_id="gpubroker-flink-health-scores")
    parser.add_argument("--calls-topic", default=settings.Topics.PROVIDER_CALLS)
    parser.add_argument("--scores-topic", default=settings.Topics.HEALTH_SCORES)
    parser.add_argument("--max-delay", default="'5' MINUTE", help="how late an event may arrive (SQL interval)")
    parser.add_argument("--idle-timeout", default="1 min",
                        help="a partition with nothing new this long stops holding the watermark (Flink duration)")  # fmt: skip
    args = parser.parse_args(argv)
    env = table_environment(args, "gpubroker-health-scores")
    env.get_config().set("table.exec.source.idle-timeout", args.idle_timeout)
    # the JDBC sink takes no TIMESTAMP_LTZ: UTC wall-clock TIMESTAMPs (session and TaskManagers in UTC)
    table_columns = SCORE_COLUMNS.replace("`type` STRING,\n    ", "").replace("TIMESTAMP_LTZ", "TIMESTAMP")
    tables = [
        kafka_source(args, "calls", args.calls_topic, f"{CALL_COLUMNS},\n    {event_time('event_time', '`at`', args.max_delay)}"),
        *observations(args, "observed_at STRING,\n    landed_at TIMESTAMP_LTZ(3),\n"
                            f"    {event_time('landing_time', 'landed_at', args.max_delay)}"),
        kafka_sink(args, "scores_topic", args.scores_topic, SCORE_COLUMNS),
        jdbc_sink("scores_table", "provider_health_scores", table_columns, "provider", settings.DATABASE_URL),
        SIGNALS,
        MINUTES,
        SCORED,
        SCORES,
    ]  # fmt: skip
    table_fields = "event_id, provider, score, calls, failures, latency_ms, CAST(last_landed_at AS TIMESTAMP(3)), " \
                   "CAST(window_start AS TIMESTAMP(3)), CAST(window_end AS TIMESTAMP(3))"  # fmt: skip
    inserts = [
        # detected_at: processing time, set here (Flink cannot re-parse CURRENT_TIMESTAMP inside a view)
        "INSERT INTO scores_topic SELECT *, CURRENT_TIMESTAMP FROM scores",
        f"INSERT INTO scores_table SELECT {table_fields}, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)) FROM scores",
    ]
    submit(env, tables, inserts)


if __name__ == "__main__":
    main()
