"""Flink job: offer observations -> price and availability changes.

Reads `offer_observed` events (`gpubroker.price-updates`) and writes to `gpubroker.price-changes`,
keyed `provider:offer_id`:
- `price_change` when an offer's price differs from the last price this job saw for it, with the
  change in percent ((new - old) / old * 100) and its direction;
- `significant_price_change` beside it when the price moved by 5% or more either way
  (|new - old| * 100 >= 5 * old, in exact decimals): the same fields, an id of its own;
- `availability_change` when its availability differs (old_availability null: the offer appeared).
With no state for the offer (first sight, or state expired after --state-ttl) the event's own
old_price / old_availability, the store's authoritative previous values, are the reference. A
repeated event finds its own values in the state and emits nothing. Output event ids derive from
the input's (schema.derived_id), so a replay after recovery repeats the same ids.

Per-offer state is `LAG` over a processing-time window per offer (arrival order is the offer's
Kafka partition order), kept in RocksDB and checkpointed by the cluster (flink/README.md).
"""

from __future__ import annotations

from common import NOW_ISO, arguments, kafka_sink, observations, submit, table_environment, uuid_of
from gpubroker import settings

# The last price and availability this job saw per offer; NULL (no state) falls back to the event's old_*.
# This view and the rule below are plain standard SQL: PostgreSQL evaluates the very same text
# (tests/test_flink_changes.py checks the rule there with Hypothesis).
COMPARED = """
CREATE TEMPORARY VIEW compared AS
SELECT *,
    CASE WHEN last_price IS NULL THEN old_price ELSE last_price END AS reference_price,
    CASE WHEN last_price IS NULL THEN old_availability ELSE last_availability END AS reference_availability
FROM (
    SELECT *,
        LAG(price_per_hour) OVER w AS last_price,
        LAG(availability) OVER w AS last_availability
    FROM observations
    WINDOW w AS (PARTITION BY provider, offer_id ORDER BY proc)
) AS seen
"""

PRICE_CHANGE_COLUMNS = """event_id STRING,
    `type` STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    gpu_form_factor STRING,
    gpu_count INT,
    region STRING,
    country STRING,
    continent STRING,
    old_price DECIMAL(12, 4),
    new_price DECIMAL(12, 4),
    price_per_gpu DECIMAL(12, 4),
    change_percent DOUBLE,
    direction STRING,
    availability STRING,
    interconnect STRING,
    pricing_type STRING,
    commitment_months INT,
    observed_at STRING,
    landed_at STRING,
    detected_at STRING"""

AVAILABILITY_CHANGE_COLUMNS = """event_id STRING,
    `type` STRING,
    provider STRING,
    offer_id STRING,
    gpu STRING,
    region STRING,
    country STRING,
    continent STRING,
    old_availability STRING,
    availability STRING,
    available_count INT,
    price_per_hour DECIMAL(12, 4),
    interconnect STRING,
    pricing_type STRING,
    commitment_months INT,
    observed_at STRING,
    landed_at STRING,
    detected_at STRING"""

SIGNIFICANT_PERCENT = 5  # a significant_price_change: the price moved by at least this much, either way

# The rule, over a row of `compared`: whether the price changed, by how much, which way, significantly;
# whether the availability changed.
PRICE_CHANGED = "reference_price > 0 AND price_per_hour <> reference_price"
CHANGE_PERCENT = "CAST((price_per_hour - reference_price) * 100 / reference_price AS DOUBLE PRECISION)"
DIRECTION = "CASE WHEN price_per_hour > reference_price THEN 'up' ELSE 'down' END"
SIGNIFICANT = f"ABS(price_per_hour - reference_price) * 100 >= {SIGNIFICANT_PERCENT} * reference_price"
AVAILABILITY_CHANGED = "reference_availability IS DISTINCT FROM availability"


def price_changes(kind: str, condition: str = "TRUE") -> str:
    """The insert of `kind` (`price_change`, `significant_price_change`) for the changed prices that meet `condition`."""
    return f"""
INSERT INTO price_changes
SELECT provider || ':' || offer_id, {uuid_of(f"event_id || ':{kind}'")}, '{kind}',
    provider, offer_id, gpu, gpu_form_factor, gpu_count, region, country, continent,
    reference_price, price_per_hour, price_per_gpu, {CHANGE_PERCENT}, {DIRECTION},
    availability, interconnect, pricing_type, commitment_months, observed_at, landed_at, {NOW_ISO}
FROM compared
WHERE {PRICE_CHANGED} AND {condition}
"""


PRICE_CHANGES = price_changes("price_change")
SIGNIFICANT_PRICE_CHANGES = price_changes("significant_price_change", SIGNIFICANT)

AVAILABILITY_CHANGES = f"""
INSERT INTO availability_changes
SELECT provider || ':' || offer_id, {uuid_of("event_id || ':availability_change'")}, 'availability_change',
    provider, offer_id, gpu, region, country, continent,
    reference_availability, availability, available_count, price_per_hour, interconnect, pricing_type,
    commitment_months, observed_at, landed_at, {NOW_ISO}
FROM compared
WHERE {AVAILABILITY_CHANGED}
"""


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__.splitlines()[0], group_id="gpubroker-flink-price-changes")
    parser.add_argument("--changes-topic", default=settings.Topics.PRICE_CHANGES)
    args = parser.parse_args(argv)
    env = table_environment(args, "gpubroker-price-changes")
    tables = [
        *observations(args, "observed_at STRING,\n    landed_at STRING,\n    proc AS PROCTIME()"),
        kafka_sink(args, "price_changes", args.changes_topic, PRICE_CHANGE_COLUMNS),
        kafka_sink(args, "availability_changes", args.changes_topic, AVAILABILITY_CHANGE_COLUMNS),
        COMPARED,
    ]
    submit(env, tables, [PRICE_CHANGES, SIGNIFICANT_PRICE_CHANGES, AVAILABILITY_CHANGES])


if __name__ == "__main__":
    main()
