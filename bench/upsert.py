"""Bulk COPY upsert (gpubroker.store.land) vs a per-row Django ORM upsert, same offers, same database.

Writes offers of a provider slug `bench` (removed afterwards) into the local stack's `offers` table.
Usage: .venv/bin/python bench/upsert.py [--offers 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")

import django  # noqa: E402

django.setup()

from gpubroker import store  # noqa: E402
from gpubroker.schema import Offer  # noqa: E402
from offers.models import Offer as OfferRow  # noqa: E402

PROVIDER = "bench"


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
    for table in ("offers", "price_history"):
        conn.execute(f"DELETE FROM {table} WHERE provider = %s", (PROVIDER,))
    conn.execute("DELETE FROM provider_status WHERE provider = %s", (PROVIDER,))
    conn.execute("DELETE FROM event_outbox WHERE key LIKE %s", (f"{PROVIDER}:%",))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    copy_times, orm_times = [], []
    with store.connect() as conn:
        try:
            for r in range(args.rounds):  # each round: first landing (inserts), then a price change (updates)
                for phase in (0, 1):
                    offers = batch(args.offers, 2 * r + phase)
                    copy_times.append(timed(lambda: store.land(conn, PROVIDER, offers, offers[0].observed_at)))
                clean(conn)
                for phase in (0, 1):
                    offers = batch(args.offers, 2 * r + phase)
                    orm_times.append(timed(lambda: orm_land(offers)))
                clean(conn)
        finally:
            clean(conn)
    copy_s, orm_s = statistics.median(copy_times), statistics.median(orm_times)
    print(f"{args.offers} offers, median of {len(copy_times)} landings each")
    print(f"  COPY + INSERT ... ON CONFLICT (store.land, incl. history + events): {copy_s * 1000:8.1f} ms")
    print(f"  Django ORM update_or_create per offer (no history, no events):      {orm_s * 1000:8.1f} ms")
    print(f"  ratio: bulk upsert is {orm_s / copy_s:.1f}x faster")


if __name__ == "__main__":
    main()
