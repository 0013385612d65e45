"""The data-quality gate: a Great Expectations suite every provider batch passes before it lands.

The suite (`great_expectations/gx/expectations/offer_batch.json`) is generated from `RULES` by
`python -m gpubroker.quality` and committed; a test keeps the two in step. GX is used directly (the
GX Airflow provider pins a structlog that conflicts with Airflow 3.3) and imported only when a gate
runs: the Airflow workers import it once, before they fork task processes (gpubroker_provider/preload.py).

**Row-level** expectations drop the rows that fail them (counted under the rule's reason) and the rest
of the batch lands, unless the failing share passes the rule's `mostly`: then the batch is refused.
A row failing several rules is counted once, under the first in this table.

| reason | a row fails when | mostly |
| --- | --- | --- |
| `price_below_band` | price per GPU-hour < the registry's band low for its GPU model (`GpuModel.price_band`) | 0.9 |
| `price_above_band` | price per GPU-hour > the band high | 0.9 |
| `memory_not_in_registry` | GPU memory is none of the registry's sizes for the model | 0.9 |
| `spot_above_on_demand` | spot price > on-demand price (rows with a spot price) | 0.9 |
| `pricing_type_unknown` | `pricing_type` is none of `PricingType` (on_demand, spot, reserved) | 0.9 |
| `interconnect_unknown` | `interconnect` is none of `Interconnect` (null, not stated by the vendor, passes) | 0.9 |
| `commitment_not_reserved` | `commitment_months` is given on a row that is not `reserved` | 0.9 |
| `commitment_missing` | a `reserved` row has no `commitment_months` | 0.9 |
| `commitment_out_of_range` | `commitment_months` is outside the schema's bounds (1..120) | 0.9 |
| `foreign_provider` | the row belongs to another provider than the batch | 1.0 |

A rule's share is of the rows it applies to (GX's `mostly`): the rows with a value in its column
(`interconnect_unknown`: the rows that state one; `spot_above_on_demand`: those with a spot price), and
for `commitment_not_reserved` / `commitment_missing` the rows of the pricing types it names.

**Batch-level** expectations refuse the batch: `duplicate_offer_id` (offer_id unique) and
`row_count_drop` (at least half the baseline's rows, and at least one). A refused batch is
quarantined: nothing of it lands, the provider's last good data stays served (and is marked stale).
What the Offer schema already guarantees (required fields, price > 0, gpu_count 1..16, a region) is
not checked again: every row reaching the gate is a validated `Offer`. The pricing terms are, though,
so that the suite (and its Data Docs) states what a landed row's `pricing_type`, `interconnect` and
`commitment_months` may be.

**Validations** are named for the Data Docs: each provider's batch is a GX data asset of its own
(asset `<provider>`, batch `offer_batches-<provider>`, in an in-memory pandas data source), and each
validation's run name is the sync's run id (the Airflow DAG run's; `local__<time>` outside Airflow),
its run time the gate's `run_at`. Results are kept in the project's validation store under
`validations/offer_batch/<run id>/<run time>/offer_batches-<provider>.json`, and the built Data
Docs mirror that path (webapp/web/datadocs.py reads it back for `/dq/`).

**Baseline** (what `row_count_drop` compares with): the rows of the provider's last landed batch
(`provider_status.last_good_rows`). After `RESET_AFTER` consecutive quarantines it is re-established
from the latest quarantined batch, so a vendor whose listing really shrank is gated against its new
size instead of being locked out. An operator approving a quarantined batch (`gpubroker quarantine
approve ID`, or the sync's `approve_quarantine` param) lands it, which resets the baseline at once.

**Gate reports**: one row of `gate_reports` (PostgreSQL; migration in webapp/offers) per gate run,
and per approval. Read them with `latest_reports(conn)` / `report_history(conn, provider)`, or from
async code with `LATEST_SQL` / `HISTORY_SQL` and `GateReport.from_row`.

| column | type | meaning |
| --- | --- | --- |
| `id` | bigint | |
| `provider` | varchar(32) | provider slug |
| `run_at` | timestamptz | when the gate ran (its validation's run time in the Data Docs) |
| `observed_at` | timestamptz | when the batch was fetched |
| `outcome` | varchar(16) | `landed`, `quarantined` or `approved` (an operator landed a quarantined batch) |
| `success` | boolean | outcome is not `quarantined` |
| `items` | int | listing items the vendor parse read |
| `rows_in` | int | offers that reached the gate |
| `rows_landed` | int | offers landed (0 when quarantined) |
| `rows_dropped` | int | rows the gate dropped (would have dropped, when quarantined) |
| `parse_dropped` | jsonb | vendor parse: `{reason: items}` that could not be parsed, and `"unknown GPU 'X'": n` for each GPU name the registry does not know (n: times met; its items produced no offer) |
| `parse_skipped` | jsonb | vendor parse: `{reason: items}` that are not GPU offers (CPU plans, storage, ...) |
| `gate_dropped` | jsonb | gate: `{reason: {"rows": n, "sample": [values]}}` (reasons above) |
| `failures` | jsonb | expectations that refused the batch: `[{reason, level, expectation, columns, mostly, unexpected, observed, sample}]` |
| `baseline_rows` | int, null | the baseline `row_count_drop` used (null: none yet) |
| `baseline_source` | varchar(16) | `last_good`, `re-established`, `none`; `approved` on an approval's report |
| `quarantine_id` | bigint, null | the `quarantine` row of a refused or approved batch |
| `timings` | jsonb | seconds per stage of the sync: `{fetch, normalise, gate, land}` (land: after the gate; the landing overlaps normalise), and `cpu`: the sync process's CPU seconds over them; `gate` against the four is the gate's cost, on `/dq/` and in bench/sync.py |
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gpubroker import gpus, settings, store
from gpubroker.schema import OFFER_FIELDS, Interconnect, Offer, PricingType

GX_ROOT = settings.GX_ROOT
SUITE = "offer_batch"
DATASOURCE = "offer_batches"  # in memory: one data asset per provider, named by its slug
MAX_DROP = 0.5  # a batch may shrink by at most half against its baseline
RESET_AFTER = 3  # consecutive quarantines after which the baseline is re-established
SAMPLE_ROWS = 5
KEEP_RESULTS = timedelta(days=7)  # GX validation results older than this are not kept for the Data Docs
# The suite runs for counts and a few sample values (what the Data Docs show); an expectation that
# found failing rows runs again alone for every failing row's index (to drop them): see validate().
COUNTS = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_ROWS}
ROWS = {"result_format": "COMPLETE", "partial_unexpected_count": SAMPLE_ROWS, "return_unexpected_index_query": False}


@dataclass(frozen=True)
class Rule:
    """One expectation of the suite: row-level with its `mostly`, or batch-level (`mostly` None)."""

    reason: str
    expectation: str  # GX expectation class
    kwargs: dict[str, Any]
    mostly: float | None = None

    @property
    def level(self) -> str:
        return "batch" if self.mostly is None else "row"

    def build(self):
        import great_expectations as gx

        mostly = {} if self.mostly is None else {"mostly": self.mostly}
        meta = {"reason": self.reason, "level": self.level}
        return getattr(gx.expectations, self.expectation)(**self.kwargs, **mostly, meta=meta)


def _bounds(offer_field: str) -> dict[str, int]:
    """A numeric Offer field's bounds as the schema states them, as GX's min_value/max_value."""
    limits = {k: getattr(m, k) for m in Offer.model_fields[offer_field].metadata for k in ("ge", "le") if hasattr(m, k)}
    return {"min_value": limits["ge"], "max_value": limits["le"]}


_PAIR = "ExpectColumnPairValuesAToBeGreaterThanB"
_RESERVED = {"type": "comparison", "column": {"name": "pricing_type"}, "operator": "==", "parameter": PricingType.RESERVED.value}
_NOT_RESERVED = _RESERVED | {"operator": "!="}
RULES: tuple[Rule, ...] = (
    # band columns (per GPU-hour, from the registry): see frame()
    Rule("price_below_band", _PAIR, {"column_A": "price_per_gpu_hour", "column_B": "band_low", "or_equal": True}, 0.9),
    Rule("price_above_band", _PAIR, {"column_A": "band_high", "column_B": "price_per_gpu_hour", "or_equal": True}, 0.9),
    Rule("memory_not_in_registry", "ExpectColumnValuesToBeInSet", {"column": "memory_matches_registry", "value_set": [True]}, 0.9),
    Rule("spot_above_on_demand", _PAIR, {"column_A": "price_per_hour", "column_B": "spot_price", "or_equal": True,
                                         "ignore_row_if": "either_value_is_missing"}, 0.9),  # fmt: skip
    Rule("pricing_type_unknown", "ExpectColumnValuesToBeInSet", {"column": "pricing_type", "value_set": [p.value for p in PricingType]}, 0.9),
    Rule("interconnect_unknown", "ExpectColumnValuesToBeInSet", {"column": "interconnect", "value_set": [i.value for i in Interconnect]}, 0.9),
    Rule("commitment_not_reserved", "ExpectColumnValuesToBeNull", {"column": "commitment_months", "row_condition": _NOT_RESERVED}, 0.9),
    Rule("commitment_missing", "ExpectColumnValuesToNotBeNull", {"column": "commitment_months", "row_condition": _RESERVED}, 0.9),
    Rule("commitment_out_of_range", "ExpectColumnValuesToBeBetween", {"column": "commitment_months", **_bounds("commitment_months")}, 0.9),
    Rule("foreign_provider", "ExpectColumnValuesToBeInSet", {"column": "provider", "value_set": {"$PARAMETER": "provider"}}, 1.0),
    Rule("duplicate_offer_id", "ExpectColumnValuesToBeUnique", {"column": "offer_id"}),
    Rule("row_count_drop", "ExpectTableRowCountToBeBetween", {"min_value": {"$PARAMETER": "min_rows"}}),
)
ROW_RULES = tuple(r for r in RULES if r.level == "row")


# --- GX project ---------------------------------------------------------------------------------
def context():
    """The GX file context in great_expectations/ (its config turns progress bars off)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx.get_context(mode="file", project_root_dir=str(GX_ROOT))


def write_suite() -> Path:
    """(Re)generate the committed suite from RULES."""
    import great_expectations as gx

    context().suites.add_or_update(gx.ExpectationSuite(name=SUITE, expectations=[r.build() for r in RULES]))
    return GX_ROOT / "gx" / "expectations" / f"{SUITE}.json"


@cache
def _project():
    """The file context, once per process: the suite and the validation store the gate writes to."""
    return context()


@cache
def _suite():
    return _project().suites.get(SUITE)


@cache
def _expectation(reason: str):
    """The suite's expectation for one reason of RULES."""
    return next(e for e in _suite().expectations if e.meta["reason"] == reason)


@cache
def _source():
    """The pandas data source the batches belong to, held in memory (an ephemeral context): declaring
    an asset per provider in the project instead would have every new vendor rewrite its config."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (DataContextConfig, InMemoryStoreBackendDefaults,
                                                            ProgressBarsConfig)  # fmt: skip

    memory = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                               progress_bars=ProgressBarsConfig(globally=False), analytics_enabled=False)  # fmt: skip
    return gx.get_context(mode="ephemeral", project_config=memory).data_sources.add_pandas(DATASOURCE)


@cache
def _batch_definition(provider: str):
    """The provider's data asset, named by its slug, validated a whole DataFrame at a time."""
    return _source().add_dataframe_asset(provider).add_batch_definition_whole_dataframe("whole")


def warm() -> None:
    """Import GX, load the suite and make the data source now (bench/ingest.py: as a task has them
    after its first gate)."""
    _suite()
    _source()


# --- the gate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    rows: int | None  # what the batch's row count is compared with; None: no landed batch yet
    source: str  # "last_good", "re-established" (after RESET_AFTER quarantines) or "none"

    @property
    def min_rows(self) -> int:
        """A batch may shrink by at most half against its baseline (and never be empty)."""
        return max(1, math.ceil((self.rows or 0) * (1 - MAX_DROP)))


def baseline(conn: psycopg.Connection, provider: str) -> Baseline:
    """The provider's last landed batch size, or the latest quarantined one after RESET_AFTER quarantines in a row."""
    recent = conn.execute(
        "SELECT outcome, rows_in FROM gate_reports WHERE provider = %s ORDER BY run_at DESC, id DESC LIMIT %s",
        (provider, RESET_AFTER),
    ).fetchall()
    if len(recent) == RESET_AFTER and all(outcome == "quarantined" for outcome, _ in recent):
        return Baseline(recent[0][1], "re-established")
    rows = store.last_good_rows(conn, provider)
    return Baseline(rows, "none" if rows is None else "last_good")


@dataclass
class GateResult:
    success: bool
    keep: Any  # numpy bool array: per row of the batch, whether it lands
    dropped: dict[str, dict[str, Any]] = field(default_factory=dict)  # reason -> {"rows", "sample"}
    failures: list[dict[str, Any]] = field(default_factory=list)  # expectations that refused the batch
    run_id: str = ""  # the validation's run name in the Data Docs: the sync's run id
    run_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))  # ... and its run time

    @property
    def rows(self) -> int:
        return len(self.keep)

    @property
    def rows_dropped(self) -> int:
        return sum(d["rows"] for d in self.dropped.values())

    @property
    def reason(self) -> str:
        def one(f: dict) -> str:
            what = f"observed {f['observed']}" if f["unexpected"] is None else f"{f['unexpected']} of {self.rows} rows"
            allowed = f" (allowed: {1 - f['mostly']:.0%})" if f["mostly"] not in (None, 1.0) else ""
            return f"{f['reason']}: {what}{allowed}"

        return "; ".join(one(f) for f in self.failures)

    def kept(self, rows: Sequence[tuple]) -> list[tuple]:
        """The rows that land."""
        return [row for row, keep in zip(rows, self.keep) if keep]


def frame(rows: Sequence[tuple]):
    """The batch as GX sees it: offer columns (rows are `store.row`s) plus per-GPU price, the
    registry's band for the GPU model and whether its memory is one of the model's sizes."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(OFFER_FIELDS))
    for price in ("price_per_hour", "spot_price"):
        df[price] = df[price].astype("float64")
    df["price_per_gpu_hour"] = df["price_per_hour"] / df["gpu_count"].clip(lower=1)
    models = {m: gpus.BY_NAME.get(m) for m in df["gpu_model"].unique()}
    df["band_low"] = df["gpu_model"].map({m: g.price_band[0] if g else 0.0 for m, g in models.items()}).astype("float64")
    df["band_high"] = df["gpu_model"].map({m: g.price_band[1] if g else 0.0 for m, g in models.items()}).astype("float64")
    sizes = {pair: models[pair[0]] is not None and models[pair[0]].memory_matches(pair[1])
             for pair in set(zip(df["gpu_model"], df["gpu_memory_gb"]))}  # fmt: skip
    df["memory_matches_registry"] = [sizes[pair] for pair in zip(df["gpu_model"], df["gpu_memory_gb"])]
    return df


def validate(rows: Sequence[tuple], provider: str, base: Baseline, run_id: str | None = None) -> GateResult:
    """Run the suite over one provider's batch (`store.row`s): which rows land, and whether it may land.
    The validation is kept for the Data Docs, named by the provider and `run_id` (the sync's run id).

    GX's cost is mostly per expectation and per metric it computes, little per row (the suite over 30
    or 1,000 rows: 0.1-0.2 s of CPU), so the suite runs once for counts and samples (COUNTS) and only
    an expectation that found failing rows runs again, alone, for their indices (ROWS): a clean batch,
    the usual one, is not asked for lists it would not use (~40% less CPU than one COMPLETE run)."""
    import numpy as np

    run_at = datetime.now(timezone.utc)
    run_id = (run_id or f"local__{run_at.isoformat()}").replace("/", "_")  # a folder of the validation store
    batch = _batch_definition(provider).get_batch(batch_parameters={"dataframe": frame(rows)})
    parameters = {"min_rows": base.min_rows, "provider": [provider]}
    result = batch.validate(_suite(), expectation_parameters=parameters, result_format=COUNTS)
    _store_for_docs(result, provider, run_id, run_at)
    by_reason = {r.expectation_config.meta["reason"]: r for r in result.results}
    keep, dropped = np.ones(len(rows), dtype=bool), {}
    for rule in ROW_RULES:
        found = by_reason[rule.reason].result
        if not found.get("unexpected_count"):
            continue
        failing = batch.validate(_expectation(rule.reason), expectation_parameters=parameters, result_format=ROWS).result
        before = int(keep.sum())
        keep[np.asarray(failing["unexpected_index_list"], dtype=int)] = False
        if newly := before - int(keep.sum()):
            dropped[rule.reason] = {"rows": newly, "sample": _plain(found.get("partial_unexpected_list") or [])}
    failures = [_failure(rule, by_reason[rule.reason]) for rule in RULES if not by_reason[rule.reason].success]
    return GateResult(success=not failures, keep=keep, dropped=dropped, failures=failures, run_id=run_id, run_at=run_at)


def _store_for_docs(result, provider: str, run_id: str, run_at: datetime) -> None:
    """Store a validation result for the Data Docs, as GX's ValidationDefinition.run would (its run
    under the sync's run id), at validations/<suite>/<run id>/<run time>/offer_batches-<provider>."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                            ValidationResultIdentifier)  # fmt: skip

    run = RunIdentifier(run_name=run_id, run_time=run_at)
    result.meta.update(run_id=run, validation_time=run_at, provider=provider)
    _project().validation_results_store.set(ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE), run_id=run, batch_identifier=result.batch_id
    ), result)  # fmt: skip


def _plain(value: Any) -> Any:
    """numpy scalars and tuples of them -> JSON-friendly Python values."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _failure(rule: Rule, r) -> dict[str, Any]:
    kwargs = r.expectation_config.kwargs
    return {
        "reason": rule.reason,
        "level": rule.level,
        "expectation": r.expectation_config.type,
        "columns": [c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c],
        "mostly": rule.mostly,
        "unexpected": r.result.get("unexpected_count"),
        "observed": _plain(r.result.get("observed_value")),
        "sample": _plain((r.result.get("partial_unexpected_list") or [])[:SAMPLE_ROWS]),
    }


# --- gate reports -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateReport:
    """One row of `gate_reports` (see the module docstring for each column)."""

    provider: str
    observed_at: datetime
    outcome: str  # "landed", "quarantined", "approved"
    items: int
    rows_in: int
    rows_landed: int
    rows_dropped: int
    parse_dropped: dict[str, int] = field(default_factory=dict)
    parse_skipped: dict[str, int] = field(default_factory=dict)
    gate_dropped: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    baseline_rows: int | None = None
    baseline_source: str = "none"
    quarantine_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    run_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    id: int | None = None

    @property
    def success(self) -> bool:
        return self.outcome != "quarantined"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GateReport:
        return cls(**{k: v for k, v in row.items() if k != "success"})


_JSON = ("parse_dropped", "parse_skipped", "gate_dropped", "failures", "timings")
_COLUMNS = [f for f in GateReport.__dataclass_fields__ if f != "id"]
_INSERT = "INSERT INTO gate_reports ({}, success) VALUES ({}, %(success)s) RETURNING id".format(
    ", ".join(_COLUMNS), ", ".join(f"%({c})s" for c in _COLUMNS)
)
LATEST_SQL = "SELECT DISTINCT ON (provider) * FROM gate_reports ORDER BY provider, run_at DESC, id DESC"
HISTORY_SQL = "SELECT * FROM gate_reports WHERE provider = %(provider)s ORDER BY run_at DESC, id DESC LIMIT %(limit)s"


def record(conn: psycopg.Connection, report: GateReport) -> int:
    """Keep one gate run's report; returns its id."""
    values = {k: Jsonb(v) if k in _JSON else v for k, v in asdict(report).items()} | {"success": report.success}
    return conn.execute(_INSERT, values).fetchone()[0]


def latest_reports(conn: psycopg.Connection) -> list[GateReport]:
    """Each provider's latest gate report, in slug order (providers never gated are absent)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [GateReport.from_row(r) for r in cur.execute(LATEST_SQL)]


def report_history(conn: psycopg.Connection, provider: str, limit: int = 50) -> list[GateReport]:
    """A provider's gate reports, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [GateReport.from_row(r) for r in cur.execute(HISTORY_SQL, {"provider": provider, "limit": limit})]


# --- quarantined batches -----------------------------------------------------------------------
class NotApprovable(ValueError):
    """A quarantine id that cannot be approved: unknown, already approved, or superseded by a newer landing."""


class AlreadyApproved(NotApprovable):
    """The quarantined batch was approved already (e.g. by an earlier try of the same sync task)."""


@dataclass(frozen=True)
class QuarantinedBatch:
    """One row of the `quarantine` table (a batch the gate refused; `store.quarantine` writes it)."""

    id: int
    provider: str
    at: datetime  # when the batch was fetched
    reason: str
    rows: int
    raw_ref: str  # staging URLs (gpubroker_provider/sync.py)
    offers_ref: str
    approved_at: datetime | None


_QUARANTINE = "SELECT id, provider, created_at AS at, reason, rows, raw_ref, offers_ref, approved_at FROM quarantine"


def quarantines(conn: psycopg.Connection, provider: str | None = None, pending: bool = True,
                limit: int = 50) -> list[QuarantinedBatch]:  # fmt: skip
    """Quarantined batches, newest first: only those not approved yet unless `pending` is False."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_QUARANTINE} WHERE (%(provider)s::text IS NULL OR provider = %(provider)s)"
            " AND (NOT %(pending)s OR approved_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            {"provider": provider, "pending": pending, "limit": limit},
        )
        return [QuarantinedBatch(**r) for r in rows]


def approvable(conn: psycopg.Connection, quarantine_id: int, lock: bool = False) -> QuarantinedBatch:
    """The quarantined batch an operator may approve; NotApprovable says why not. `lock` (inside a
    transaction): hold it and the provider's status until commit, so no landing can slip in between."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"{_QUARANTINE} WHERE id = %s{' FOR UPDATE' if lock else ''}", (quarantine_id,)).fetchone()
        if row is None:
            raise NotApprovable(f"no quarantined batch {quarantine_id} (see `gpubroker quarantine list`)")
        batch = QuarantinedBatch(**row)
        if batch.approved_at is not None:
            raise AlreadyApproved(f"quarantined batch {quarantine_id} ({batch.provider}) was approved at {batch.approved_at:%Y-%m-%d %H:%M} UTC")
        status = cur.execute(f"SELECT last_good_at FROM provider_status WHERE provider = %s{' FOR UPDATE' if lock else ''}",
                             (batch.provider,)).fetchone()  # fmt: skip
    if status and status["last_good_at"] and status["last_good_at"] > batch.at:
        raise NotApprovable(
            f"quarantined batch {quarantine_id} ({batch.provider}, fetched {batch.at:%Y-%m-%d %H:%M} UTC) is older than "
            f"its last landing ({status['last_good_at']:%Y-%m-%d %H:%M} UTC): approving it would overwrite newer prices"
        )
    return batch


def lock_for_approval(conn: psycopg.Connection, quarantine_id: int) -> QuarantinedBatch:
    return approvable(conn, quarantine_id, lock=True)


def mark_approved(conn: psycopg.Connection, quarantine_id: int) -> None:
    conn.execute("UPDATE quarantine SET approved_at = now() WHERE id = %s", (quarantine_id,))


# --- Data Docs ----------------------------------------------------------------------------------
DOCS_DIR = GX_ROOT / "gx" / "uncommitted" / "data_docs" / "local_site"
RESULTS_DIR = GX_ROOT / "gx" / "uncommitted" / "validations"


def build_docs(keep: timedelta = KEEP_RESULTS) -> Path:
    """Rebuild GX Data Docs from the validation results of the last `keep`; returns the index page.
    Older results are deleted first: the docs (and their build time) stay bounded."""
    cutoff = datetime.now().timestamp() - keep.total_seconds()
    for old in [*RESULTS_DIR.rglob("*.json"), *(DOCS_DIR / "validations").rglob("*.html")]:
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    context().build_data_docs()
    return DOCS_DIR / "index.html"


if __name__ == "__main__":
    print(f"wrote {write_suite()}")
