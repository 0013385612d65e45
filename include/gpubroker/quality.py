"""The data-quality gate: a Great Expectations suite every provider batch must pass before it lands.

The suite (`great_expectations/gx/expectations/offer_batch.json`) is generated from the GPU registry
and the vendor table by `python -m gpubroker.quality`, and committed; a test keeps it in step.
GX is used directly (the GX Airflow provider pins a structlog that conflicts with Airflow 3.3).

Rules: required fields present; price > 0 and inside the registry's band for the GPU model (per
GPU-hour, `GpuModel.price_band`); gpu_count 1..16; GPU memory consistent with the registry; known provider; a region;
unique offer_id; at most a 50% drop in rows against the provider's last good batch; no spot price
above on-demand.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from gpubroker import gpus
from gpubroker.schema import OFFER_FIELDS, Offer

GX_ROOT = Path(os.environ.get("GPUBROKER_GX_ROOT", Path(__file__).resolve().parents[2] / "great_expectations"))
SUITE = "offer_batch"
VALIDATION = "offer_batch_gate"
REQUIRED = ("provider", "offer_id", "instance_type", "gpu_model", "gpu_vendor", "gpu_count", "gpu_memory_gb",
            "price_per_hour", "region", "availability", "observed_at")  # fmt: skip
MAX_DROP = 0.5
SAMPLE_ROWS = 5


def _expectations() -> list:
    import great_expectations as gx

    e = gx.expectations
    rules: list = [e.ExpectColumnValuesToNotBeNull(column=c) for c in REQUIRED]
    rules += [
        e.ExpectColumnValuesToBeBetween(column="price_per_hour", min_value=0, strict_min=True),
        e.ExpectColumnValuesToBeBetween(column="gpu_count", min_value=1, max_value=16),
        e.ExpectColumnValuesToBeInSet(column="memory_matches_registry", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="provider", value_set={"$PARAMETER": "known_providers"}),
        e.ExpectColumnValueLengthsToBeBetween(column="region", min_value=1),
        e.ExpectColumnValuesToBeUnique(column="offer_id"),
        e.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "min_rows"}),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="price_per_hour", column_B="spot_price", or_equal=True, ignore_row_if="either_value_is_missing"
        ),
        # the registry's plausible band for the row's GPU model, per GPU-hour (band columns: see frame())
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="price_per_gpu_hour", column_B="band_low", or_equal=True),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="band_high", column_B="price_per_gpu_hour", or_equal=True),
    ]
    return rules


def context():
    """The GX file context in great_expectations/ (its config turns progress bars off)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx.get_context(mode="file", project_root_dir=str(GX_ROOT))


def write_suite() -> Path:
    """(Re)generate the committed suite and validation definition from the registry."""
    import great_expectations as gx

    ctx = context()
    suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=SUITE, expectations=_expectations()))
    batch = _batch_definition(ctx)
    ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=VALIDATION, data=batch, suite=suite))
    return GX_ROOT / "gx" / "expectations" / f"{SUITE}.json"


def _batch_definition(ctx):
    source = ctx.data_sources.add_or_update_pandas("offer_batches")
    asset = next((a for a in source.assets if a.name == "batch"), None) or source.add_dataframe_asset("batch")
    return next((b for b in asset.batch_definitions if b.name == "whole"), None) or (
        asset.add_batch_definition_whole_dataframe("whole")
    )


@cache
def _validation():
    return context().validation_definitions.get(VALIDATION)


def frame(offers: list[Offer]):
    """The batch as GX sees it: the offer fields plus derived per-GPU price and memory check."""
    import pandas as pd

    rows = [o.model_dump() for o in offers]
    df = pd.DataFrame(rows, columns=list(OFFER_FIELDS))
    for price in ("price_per_hour", "spot_price"):
        df[price] = df[price].astype("float64")
    df["price_per_gpu_hour"] = df["price_per_hour"] / df["gpu_count"].clip(lower=1)
    bands = [gpus.BY_NAME[o.gpu_model].price_band if o.gpu_model in gpus.BY_NAME else (0.0, 0.0) for o in offers]
    df["band_low"] = [low for low, _ in bands]
    df["band_high"] = [high for _, high in bands]
    df["memory_matches_registry"] = [
        o.gpu_model in gpus.BY_NAME and gpus.BY_NAME[o.gpu_model].memory_matches(o.gpu_memory_gb) for o in offers
    ]
    return df


@dataclass
class GateResult:
    success: bool
    failures: list[dict[str, Any]] = field(default_factory=list)  # one per failed expectation

    @property
    def reason(self) -> str:
        def one(f: dict) -> str:
            what = f"{f['unexpected']} rows" if f["unexpected"] is not None else f"observed {f['observed']}"
            return f"{f['expectation']}({', '.join(f['columns'])}): {what}"

        return "; ".join(one(f) for f in self.failures)


def min_rows(last_good_rows: int | None) -> int:
    """A batch may shrink by at most half against the last good one (and never be empty)."""
    return max(1, math.ceil((last_good_rows or 0) * (1 - MAX_DROP)))


def validate(offers: list[Offer], last_good_rows: int | None, known_providers: list[str]) -> GateResult:
    result = _validation().run(
        batch_parameters={"dataframe": frame(offers)},
        expectation_parameters={"min_rows": min_rows(last_good_rows), "known_providers": known_providers},
    )
    failures = [_failure(r) for r in result.results if not r.success]
    return GateResult(result.success, failures)


def _plain(value: Any) -> Any:
    """numpy scalars and tuples of them -> JSON-friendly Python values."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _failure(r) -> dict[str, Any]:
    kwargs = r.expectation_config.kwargs
    columns = [c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c]
    return {
        "expectation": r.expectation_config.type,
        "columns": columns,
        "unexpected": r.result.get("unexpected_count"),
        "observed": _plain(r.result.get("observed_value")),
        "sample": _plain((r.result.get("partial_unexpected_list") or [])[:SAMPLE_ROWS]),
    }


DOCS_DIR = GX_ROOT / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_docs() -> Path:
    """Rebuild GX Data Docs from every stored validation result; returns the index page."""
    context().build_data_docs()
    return DOCS_DIR / "index.html"


if __name__ == "__main__":
    print(f"wrote {write_suite()}")
