"""Ingest at scale: 100,000 synthetic Vast.ai bundles through the sync's own steps, vs a per-row ORM
baseline in the same run.

Pipeline (gpubroker_provider.sync, as a provider's sync task runs it): stage the bundles pages
(`stage`, file:// ObjectStoragePath, written as they are generated) -> `normalise_gate_land`: the
Vast.ai hook's parse in 8 MiB chunks, straight to COPY rows, each chunk landed (`store.Landing`: COPY
into a temp table, one upsert, price history, one outbox event per offer) while the next is parsed ->
`quality.validate` (the GX gate) over the whole batch -> commit.
Baseline: the same staged pages parsed by the same hook, then one Django ORM `update_or_create` and
one `EventOutbox` insert per offer (no gate), on the first `--baseline` bundles, its rate
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
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "webapp"))
DATABASE = "gpubroker_bench_ingest"

from gpubroker import settings  # noqa: E402

STACK_DATABASE_URL = settings.DATABASE_URL
settings.DATABASE_URL = os.environ["GPUBROKER_DATABASE_URL"] = STACK_DATABASE_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")

import django  # noqa: E402
import psycopg  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from gpubroker import quality, store  # noqa: E402
from gpubroker_provider import sync  # noqa: E402
from gpubroker_provider.hooks.vastai import SEARCH_LIMIT  # noqa: E402
from offers.models import EventOutbox, Offer as OfferRow  # noqa: E402

PROVIDER = "vastai"
RECORDING = ROOT / "plugins/gpubroker_provider/replay/recordings/vastai/bundles.json"


def offer_rows() -> list[dict]:
    """The recorded bundles that are GPU offers the registry knows (each synthetic bundle then lands)."""
    hook, now = sync.vendor(PROVIDER).hook_class()(), datetime.now(timezone.utc)
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


def scratch_database() -> None:
    with psycopg.connect(STACK_DATABASE_URL, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            admin.execute(f"CREATE DATABASE {DATABASE}")
    call_command("migrate", verbosity=0)


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


def orm_baseline(raw, limit: int) -> tuple[int, float]:
    """Parse the same staged pages with the same hook; one ORM upsert + one outbox row per offer."""
    started = time.perf_counter()
    header, lines = sync.staged_pages(raw)
    hook = sync.vendor(PROVIDER).hook_class()()
    observed_at = datetime.fromisoformat(header["observed_at"])
    done = 0
    for _, page in lines:
        for offer in hook.parse([page], observed_at).offers:
            fields = offer.model_dump(exclude={"provider", "offer_id"})
            OfferRow.objects.update_or_create(
                provider=offer.provider, offer_id=offer.offer_id, defaults=fields | {"last_seen": observed_at},
                create_defaults=fields | {"first_seen": observed_at, "last_seen": observed_at},
            )  # fmt: skip
            EventOutbox.objects.create(event_id=offer_event_id(offer), topic=settings.Topics.PRICE_UPDATES,
                                       key=f"{offer.provider}:{offer.offer_id}", payload=offer.model_dump(mode="json"))  # fmt: skip
            done += 1
            if done == limit:
                return done, time.perf_counter() - started
    return done, time.perf_counter() - started


def offer_event_id(offer):
    import uuid

    return uuid.uuid5(uuid.NAMESPACE_URL, f"{offer.provider}/{offer.offer_id}/{offer.observed_at.isoformat()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=3000, help="bundles the per-row baseline lands (rate extrapolated)")
    args = parser.parse_args()
    scratch_database()
    quality.warm()  # GX imported and the suite loaded, as an Airflow worker has them (preload.py)
    with tempfile.TemporaryDirectory() as staging:
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
        offers = steps.pop("offers")
        print(f"pipeline: {offers:,} offers in {total:.1f} s ({offers / total:,.0f}/s): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
              + f"; peak RSS {peak_rss_mib():.0f} MiB (was {rss_before:.0f} before it)")  # fmt: skip

        empty()
        done, baseline_s = orm_baseline(raw, args.baseline)
        rate = done / baseline_s
        print(f"per-row ORM baseline: {done:,} offers in {baseline_s:.1f} s ({rate:,.0f}/s) -> {offers:,} would take "
              f"{offers / rate:.0f} s")  # fmt: skip
        empty()
    speedup = (offers / rate) / total
    print(f"\n{offers:,} offers parse -> normalise -> gate -> land -> outbox in {total:.1f} s (target <= 15 s: "
          f"{'met' if total <= 15 else 'NOT met'}), {speedup:.0f}x the per-row ORM baseline (target >= 20x: "
          f"{'met' if speedup >= 20 else 'NOT met'}); peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
