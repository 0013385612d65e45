"""Ingest at scale: 100,000 synthetic Vast.ai bundles through the sync's own steps, vs two Django ORM
baselines in the same run.

Pipeline (gpubroker_provider.sync, as a provider's sync task runs it): stage the bundles pages
(`stage`, file:// ObjectStoragePath, written as they are generated) -> `normalise_gate_land`: the
Vast.ai hook's parse in 8 MiB chunks, straight to COPY rows, each chunk landed (`store.Landing`: COPY
into a temp table, one upsert, price history, one outbox event per offer) while the next is parsed ->
`quality.validate` (the GX gate) over the whole batch -> commit.
Baselines, on the same staged pages parsed by the same hook page by page:
- ORM bulk, as a competent Django developer writes it: every page parsed, the same GX gate over the
  batch, then `orm_baseline.bulk_land` (`bulk_create(update_conflicts=True)` of the offers, `bulk_create`
  of price history and of one outbox event per offer, all in one `transaction.atomic()`), over all
  the bundles; it must leave the same table contents as the pipeline (checked);
- ORM per row: one `update_or_create` and one `EventOutbox` insert per offer, each in its own
  transaction (no gate, no history: less work), on the first `--baseline` bundles, its rate
  extrapolated to all of them.

The bundles are the replay server's recorded Vast.ai offers (those that are GPU offers), repeated with new ids and prices
shifted inside the GPU's band, in pages of 1,000 (the search limit). Everything lands in a scratch
database (`gpubroker_bench_ingest`, created and migrated on first use, emptied before each step),
never in the stack's. GX is loaded before timing starts, as the Airflow workers preload it. Peak RSS: the process's maximum resident set (ru_maxrss), sampled after
each step.

Usage: .venv/bin/python bench/ingest.py [--bundles 100000] [--baseline 3000]
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "webapp"))

import scratch  # noqa: E402

scratch.use("gpubroker_bench_ingest")

import orm_baseline  # noqa: E402
from gpubroker import quality, settings, store  # noqa: E402
from gpubroker.schema import observation_id  # noqa: E402
from gpubroker_provider import sync  # noqa: E402
from gpubroker_provider.hooks.vastai import SEARCH_LIMIT  # noqa: E402
from offers.models import EventOutbox, Offer as OfferRow  # noqa: E402

PROVIDER = "vastai"
RECORDING = ROOT / "plugins/gpubroker_provider/replay/recordings/vastai/bundles.json"


def offer_rows() -> list[dict]:
    """The recorded bundles that are GPU offers the registry knows (each synthetic bundle then lands)."""
    hook, now = sync.hook_class(PROVIDER)(), datetime.now(timezone.utc)
    return [row for row in json.loads(RECORDING.read_text())["offers"] if hook.parse([{"offers": [row]}], now).offers]


RECORDED = offer_rows()


def pages(bundles: int):
    """Pages of synthetic bundles in the search answer's format ({"offers": [...]}), made as they are written."""
    for start in range(0, bundles, SEARCH_LIMIT):
        rows = []
        for i in range(start, min(start + SEARCH_LIMIT, bundles)):
            row = copy.copy(RECORDED[i % len(RECORDED)])
            row["id"] = row["ask_contract_id"] = 10_000_000 + i
            row["dph_total"] = round(row["dph_total"] * (0.8 + (i % 41) / 100), 4)  # 0.8x .. 1.2x
            row["min_bid"] = round(row["dph_total"] * 0.6, 4)
            rows.append(row)
        yield {"offers": rows}


def empty() -> None:
    with store.connect() as conn:
        conn.execute("TRUNCATE offers, price_history, event_outbox, provider_status, gate_reports")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pipeline(raw) -> dict[str, float]:
    """The sync's steps over a staged payload (`sync.normalise_gate_land`, the landing overlapping the
    parse); seconds per step, "land" being what the landing took after the gate."""
    seconds: dict[str, float] = {}
    with store.connect() as conn:
        parsed, gate, landed = sync.normalise_gate_land(conn, PROVIDER, raw, quality.Baseline(None, "none"), seconds)
        assert landed is not None, gate.reason
        (queued,) = conn.execute("SELECT count(*) FROM event_outbox").fetchone()
    assert landed.offers == len(parsed.rows) == queued, (landed, len(parsed.rows), queued)
    seconds["offers"] = landed.offers
    return seconds


def staged_offers(raw):
    """The staged pages parsed page by page with the same hook: the baselines' `Offer`s, as they come."""
    header, lines = sync.staged_pages(raw)
    hook = sync.hook_class(PROVIDER)()
    observed_at = datetime.fromisoformat(header["observed_at"])
    for _, page in lines:
        yield from hook.parse([page], observed_at).offers


def bulk_baseline(raw) -> tuple[int, dict[str, float]]:
    """Parse, the same gate over the batch, then the ORM bulk landing (one transaction); seconds per step."""
    seconds, started = {}, time.perf_counter()
    offers = list(staged_offers(raw))
    seconds["parse"] = time.perf_counter() - started
    gate = quality.validate([store.row(o) for o in offers], PROVIDER, quality.Baseline(None, "none"))
    assert gate.success and not gate.rows_dropped, gate.reason
    seconds["gate"] = time.perf_counter() - started - seconds["parse"]
    landed = orm_baseline.bulk_land(PROVIDER, offers, offers[0].observed_at)
    seconds["land"] = time.perf_counter() - started - seconds["parse"] - seconds["gate"]
    return landed, seconds


def per_row_baseline(raw, limit: int) -> tuple[int, float]:
    """One ORM upsert + one outbox row per offer, on the first `limit` offers."""
    started = time.perf_counter()
    done = 0
    for offer in staged_offers(raw):
        fields = offer.model_dump(exclude={"provider", "offer_id"})
        OfferRow.objects.update_or_create(
            provider=offer.provider, offer_id=offer.offer_id, defaults=fields | {"last_seen": offer.observed_at},
            create_defaults=fields | {"first_seen": offer.observed_at, "last_seen": offer.observed_at},
        )  # fmt: skip
        EventOutbox.objects.create(event_id=observation_id(offer.provider, offer.offer_id, offer.observed_at),
                                   topic=settings.Topics.PRICE_UPDATES, key=f"{offer.provider}:{offer.offer_id}",
                                   payload=offer.model_dump(mode="json"))  # fmt: skip
        done += 1
        if done == limit:
            break
    return done, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=3000, help="bundles the per-row baseline lands (rate extrapolated)")
    args = parser.parse_args()
    quality.warm()  # GX imported and the suite loaded, as an Airflow worker has them (preload.py)
    with tempfile.TemporaryDirectory() as staging, store.connect() as conn:
        settings.STAGING_URL = Path(staging).as_uri()
        observed_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        raw = sync.stage(PROVIDER, observed_at, pages(args.bundles))
        stage_s = time.perf_counter() - started
        print(f"staged {args.bundles:,} synthetic Vast.ai bundles ({raw.stat().st_size / 2**20:.0f} MiB) in {stage_s:.1f} s;"
              f" peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip

        empty()
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        steps = pipeline(raw)
        total = time.perf_counter() - started
        offers, rss = steps.pop("offers"), peak_rss_mib()
        print(f"pipeline: {offers:,} offers in {total:.1f} s ({offers / total:,.0f}/s): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
              + f"; peak RSS {rss:.0f} MiB (was {rss_before:.0f} before it)")  # fmt: skip
        orm_baseline.snapshot(conn)

        empty()
        landed, steps = bulk_baseline(raw)
        bulk_s = sum(steps.values())
        assert landed == offers, (landed, offers)
        print(f"ORM bulk baseline (bulk_create in one transaction): {landed:,} offers in {bulk_s:.1f} s"
              f" ({landed / bulk_s:,.0f}/s): " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))  # fmt: skip
        orm_baseline.same_tables(conn, "ORM bulk baseline")

        empty()
        done, per_row_s = per_row_baseline(raw, args.baseline)
        rate = done / per_row_s
        print(f"per-row ORM baseline: {done:,} offers in {per_row_s:.1f} s ({rate:,.0f}/s) -> {offers:,} would take "
              f"{offers / rate:.0f} s")  # fmt: skip
        empty()
    per_row_x = (offers / rate) / total
    print(f"\n{offers:,} offers parse -> normalise -> gate -> land -> outbox in {total:.1f} s (target <= 15 s: "
          f"{'met' if total <= 15 else 'NOT met'}); {bulk_s / total:.1f}x the ORM bulk_create baseline, "
          f"{per_row_x:.0f}x the per-row ORM baseline (target >= 20x: {'met' if per_row_x >= 20 else 'NOT met'});"
          f" peak RSS {rss:.0f} MiB (the pipeline's)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
