"""Data quality per provider, as a person reads it (`/dq/`): the last gate result, the failed
expectations with sample values, the rows dropped and why, and the quarantine history.

Sources:
- `gate_reports` (one row per gate run; columns in gpubroker.quality's docstring): the latest run's
  outcome (`landed`, `quarantined`, `approved`), rows in / landed, the expectations that refused the
  batch, the rows the gate dropped per reason (`gate_dropped`) and the items the vendor parse could
  not read (`parse_dropped`) or skipped as no GPU offer (`parse_skipped`);
- `provider_status`: the last landed batch, stale flag and reason;
- `quarantine`: every refused batch, whole (id, rows, why, approved or not);
- the built GX Data Docs (web/datadocs.py): each provider's validation pages, named by the sync's run
  id; the latest gate run's own page is the one whose run time is its `run_at`.

Rows are per provider of the vendor table, in slug order; `history` is the newest `HISTORY`
quarantines, newest first. A provider with no gate report yet shows as "not gated yet". What the
gate costs a provider's sync is its `timings`: the gate's seconds against fetch..land.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from gpubroker.vendors import VENDORS
from gpubroker_web import db
from offers import providers as providers_status
from web import datadocs

HISTORY = 10
VALIDATIONS = 10  # validation pages listed per provider, newest first
STAGES = ("fetch", "normalise", "gate", "land")  # a sync's own stages (gate_reports.timings)

_REPORT_SQL = """
SELECT v.provider, s.last_good_at, s.last_good_rows, COALESCE(s.stale, false) AS stale, s.stale_reason,
       g.outcome, g.run_at, g.rows_in, g.rows_landed, g.rows_dropped, g.gate_dropped, g.parse_dropped,
       g.parse_skipped, g.failures, g.baseline_rows, g.baseline_source, g.timings, g.observed_at,
       COALESCE(n.quarantines, 0) AS quarantines, COALESCE(h.history, '[]'::json) AS history
FROM unnest(%(providers)s::text[]) AS v(provider)
LEFT JOIN provider_status s USING (provider)
LEFT JOIN LATERAL (
    SELECT * FROM gate_reports g WHERE g.provider = v.provider ORDER BY run_at DESC, id DESC LIMIT 1
) g ON true
LEFT JOIN LATERAL (SELECT count(*) AS quarantines FROM quarantine q WHERE q.provider = v.provider) n ON true
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('id', q.id, 'at', q.created_at, 'reason', q.reason, 'rows', q.rows,
                                      'approved_at', q.approved_at) ORDER BY q.created_at DESC, q.id DESC) AS history
    FROM (SELECT * FROM quarantine q WHERE q.provider = v.provider ORDER BY created_at DESC, id DESC LIMIT %(history)s) q
) h ON true
ORDER BY v.provider
"""


async def providers() -> list[dict[str, Any]]:
    """One report per provider: {slug, name, gate (latest gate run: outcome, run_at, rows_in,
    rows_landed, rows_dropped, baseline_rows, baseline_source; None: never gated), cost (the gate's
    seconds, the sync's fetch..land seconds, the gate's percent of them; None without timings),
    failures, dropped ([{reason, rows, sample, stage}]: rows the gate dropped, items the parse
    dropped, GPU names the registry does not know among them), skipped ({reason: items} that are no
    GPU offer), validations (its Data Docs pages, newest first: [{run_id, at, path, ...}]), docs_page
    (the latest gate run's page, None until the docs are rebuilt), last_good_at, last_good_rows,
    stale_reason, quarantines (count), history ([{id, at, reason, rows, approved_at}], newest first)}."""
    rows, pages = await asyncio.gather(db.fetch(_REPORT_SQL, {"providers": sorted(VENDORS), "history": HISTORY}),
                                       asyncio.to_thread(datadocs.validation_pages, None))  # fmt: skip
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in pages:
        by_provider[page["provider"]].append(page)
    return [_report(row, by_provider[row["provider"]]) for row in rows]


def _report(row: dict[str, Any], pages: list[dict[str, Any]]) -> dict[str, Any]:
    gated, vendor = row["outcome"] is not None, VENDORS[row["provider"]]
    as_of = row["observed_at"].date() if vendor.source == "list" and gated else None  # a list is observed at its date
    gate_fields = ("outcome", "run_at", "rows_in", "rows_landed", "rows_dropped", "baseline_rows", "baseline_source")
    return {
        "slug": row["provider"], "name": vendor.name, "source": vendor.source, "as_of": as_of,
        "list_stale": providers_status.list_too_old(as_of, datetime.now(timezone.utc)),
        "gate": {k: row[k] for k in gate_fields} if gated else None, "cost": _cost(row["timings"]) if gated else None,
        "validations": pages[:VALIDATIONS], "validation_count": len(pages),
        "docs_page": next((p["path"] for p in pages if gated and p["at"] == row["run_at"]), None),
        "failures": row["failures"] or [] if gated else [],
        "dropped": _dropped(row) if gated else [], "skipped": row["parse_skipped"] or {} if gated else {},
        "last_good_at": row["last_good_at"], "last_good_rows": row["last_good_rows"],
        "stale_reason": row["stale_reason"] or None, "quarantines": row["quarantines"],
        "history": [{**q, "at": _time(q["at"]), "approved_at": _time(q["approved_at"])} for q in row["history"]],
    }  # fmt: skip


def _dropped(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What did not land of the latest batch and why, most rows first: the gate's row-level drops
    ({reason: {rows, sample}}) and the items the vendor parse could not read ({reason: items})."""
    gate = [{"stage": "gate", "reason": r, "rows": d["rows"], "sample": d.get("sample") or []}
            for r, d in (row["gate_dropped"] or {}).items()]  # fmt: skip
    parse = [{"stage": "parse", "reason": r, "rows": n, "sample": []} for r, n in (row["parse_dropped"] or {}).items()]
    return sorted(gate + parse, key=lambda d: -d["rows"])


def _cost(timings: dict[str, float] | None) -> dict[str, float] | None:
    """The gate's seconds against the sync's own stages (fetch..land): {gate, sync, percent}."""
    if not timings or "gate" not in timings:
        return None
    sync = sum(timings.get(stage, 0.0) for stage in STAGES)
    return {"gate": timings["gate"], "sync": sync, "percent": round(100 * timings["gate"] / sync) if sync else 100}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
