"""Landing a batch: bulk COPY upsert (gpubroker.store.land) vs two Django ORM baselines, same offers, same database.

Each round lands a batch of new offers, then the same offers with every price changed, three ways:
- `store.land`: COPY into a temporary stage, one INSERT ... ON CONFLICT, price history and one outbox
  event per offer, in one transaction;
- the same work with the ORM as a competent Django developer writes it (`orm_baseline.bulk_land`:
  `bulk_create(update_conflicts=True)`, `bulk_create` of history and outbox, one
  `transaction.atomic()`), which must leave the same table contents (checked every round);
- one `update_or_create` per offer (each in its own transaction; no history, no events: less work).

Writes offers of a provider `bench` into a scratch database (`gpubroker_bench_upsert` on the stack's
PostgreSQL, created and migrated on first use), emptied after each landing pair.
Usage: .venv/bin/python bench/upsert.py [--offers 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))

import scratch  # noqa: E402

scratch.use("gpubroker_bench_upsert")

import orm_baseline  # noqa: E402
from gpubroker import store  # noqa: E402
from gpubroker.schema import Offer  # noqa: E402
from offers.models import Offer as OfferRow  # noqa: E402

PROVIDER = "bench"
COPY = "COPY + INSERT ... ON CONFLICT (store.land, history + events)"
BULK = "ORM bulk_create(update_conflicts), history + events, one transaction"
PER_ROW = "ORM update_or_create per offer (no history, no events)"


def batch(n: int, round_: int) -> list[Offer]:
    at = datetime(2026, 11, 26, tzinfo=timezone.utc) + timedelta(hours=round_)
    return [
        Offer(provider=PROVIDER, offer_id=f"b{i}", instance_type="8x H100", gpu_model="H100", gpu_vendor="NVIDIA",
              gpu_count=8, gpu_memory_gb=80, price_per_hour=Decimal("20") + Decimal(i % 97 + round_) / 100,
              region="Norway", observed_at=at)  # fmt: skip
        for i in range(n)
    ]


def orm_land(offers: list[Offer]) -> None:
    for offer in offers:
        fields = offer.model_dump(exclude={"provider", "offer_id"})
        OfferRow.objects.update_or_create(
            provider=offer.provider, offer_id=offer.offer_id,
            defaults=fields | {"last_seen": offer.observed_at},
            create_defaults=fields | {"first_seen": offer.observed_at, "last_seen": offer.observed_at},
        )  # fmt: skip


def clean(conn) -> None:
    conn.execute("TRUNCATE offers, price_history, event_outbox, provider_status")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {COPY: [], BULK: [], PER_ROW: []}
    with store.connect() as conn:
        clean(conn)
        try:
            for r in range(args.rounds):  # each round: first landing (inserts), then a price change (updates)
                batches = [batch(args.offers, 2 * r + phase) for phase in (0, 1)]
                for offers in batches:
                    times[COPY].append(timed(lambda: store.land(conn, PROVIDER, offers, offers[0].observed_at)))
                orm_baseline.snapshot(conn)
                clean(conn)
                for offers in batches:
                    times[BULK].append(timed(lambda: orm_baseline.bulk_land(PROVIDER, offers, offers[0].observed_at)))
                orm_baseline.same_tables(conn, f"round {r + 1}: ORM bulk_create")
                clean(conn)
                for offers in batches:
                    times[PER_ROW].append(timed(lambda: orm_land(offers)))
                clean(conn)
        finally:
            clean(conn)
    copy_s, bulk_s, per_row_s = (statistics.median(t) for t in times.values())
    print(f"{args.offers} offers, median (min-max) of {len(times[COPY])} landings each (half new offers, half price changes)")
    for name, t in times.items():
        print(f"  {name + ':':70} {statistics.median(t) * 1000:8.1f} ms ({min(t) * 1000:.0f}-{max(t) * 1000:.0f})")
    print(f"  ratio: store.land is {bulk_s / copy_s:.1f}x the bulk_create baseline, {per_row_s / copy_s:.1f}x the per-row one")


if __name__ == "__main__":
    main()
