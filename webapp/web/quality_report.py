"""Data quality per provider, as a person reads it (`/dq/`): the last gate result, the failed
expectations with sample values, quarantined batches and why, and the quarantine history.

Sources: `provider_status` (last batch that passed, stale flag and reason) and `quarantine` (every
refused batch, whole, with its failed expectations). Rows are per provider of the vendor table, in
slug order; `history` is the newest `HISTORY` quarantines, newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gpubroker_provider.vendors import VENDORS
from gpubroker_web import db

HISTORY = 10

_REPORT_SQL = """
SELECT v.provider, s.last_good_at, s.last_good_rows, COALESCE(s.stale, false) AS stale, s.stale_reason,
       COALESCE(n.quarantines, 0) AS quarantines, COALESCE(h.history, '[]'::json) AS history
FROM unnest(%(providers)s::text[]) AS v(provider)
LEFT JOIN provider_status s USING (provider)
LEFT JOIN LATERAL (SELECT count(*) AS quarantines FROM quarantine q WHERE q.provider = v.provider) n ON true
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object('at', q.created_at, 'reason', q.reason, 'rows', q.rows,
                                      'failures', q.failures, 'raw_ref', q.raw_ref) ORDER BY q.created_at DESC) AS history
    FROM (SELECT * FROM quarantine q WHERE q.provider = v.provider ORDER BY created_at DESC LIMIT %(history)s) q
) h ON true
ORDER BY v.provider
"""


async def providers() -> list[dict[str, Any]]:
    """One report per provider: {slug, name, gate ("passed" | "quarantined" | None: never gated),
    gate_at, last_good_at, last_good_rows, stale_reason, quarantines (count), history, failures
    (of the latest quarantine when the gate refused the latest batch)}."""
    rows = await db.fetch(_REPORT_SQL, {"providers": sorted(VENDORS), "history": HISTORY})
    return [_report(row) for row in rows]


def _report(row: dict[str, Any]) -> dict[str, Any]:
    history = [{**q, "at": datetime.fromisoformat(q["at"])} for q in row["history"]]
    latest = history[0] if history else None
    if row["stale"] and latest:
        gate, gate_at = "quarantined", latest["at"]
    else:
        gate, gate_at = ("passed", row["last_good_at"]) if row["last_good_at"] else (None, None)
    return {
        "slug": row["provider"], "name": VENDORS[row["provider"]].name, "gate": gate, "gate_at": gate_at,
        "last_good_at": row["last_good_at"], "last_good_rows": row["last_good_rows"],
        "stale_reason": row["stale_reason"] or None, "quarantines": row["quarantines"], "history": history,
        "failures": latest["failures"] if gate == "quarantined" else [],
    }  # fmt: skip
