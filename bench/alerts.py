"""Alert matching in memory (webapp/alerts/matcher.py): events per second through parse + match
against many rules, the rules indexed by GPU model, against two baselines measured in the same run:
parsing alone (the floor: every event is parsed anyway) and a scan of every rule per event (what
the index saves). No services needed; what follows a match (one SQL insert, one Kafka message) is
per match, not per event, and not measured here.

Usage: .venv/bin/python bench/alerts.py [--rules 1000] [--events 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))

from alerts.matcher import EVENT, Rule, RuleIndex, facts  # noqa: E402
from gpubroker.gpus import MODELS  # noqa: E402
from gpubroker.schema import PriceChange  # noqa: E402

NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)
PROVIDERS = ["vastai", "lambda", "runpod", "aws", "azure", "gcp", "oci", "coreweave"]


def rules(n: int, gpus: list[str], rng: random.Random) -> list[Rule]:
    return [Rule(id=i, gpu=rng.choice(gpus + [None]), providers=frozenset(rng.sample(PROVIDERS, 2)), region=None,
                 country=None, continent=rng.choice([None, "EU", "NA"]), max_price=Decimal(rng.randint(1, 40)),
                 max_price_per_gpu=None, drop_percent=rng.choice([None, 5.0, 20.0]), anomaly=False,
                 becomes_available=False, webhook_url="https://example.com/") for i in range(n)]  # fmt: skip


def events(n: int, gpus: list[str], rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(n):
        old, new = Decimal(rng.randint(100, 4000)) / 100, Decimal(rng.randint(100, 4000)) / 100
        out.append(PriceChange(
            event_id=str(uuid.uuid4()), provider=rng.choice(PROVIDERS), offer_id="o", gpu=rng.choice(gpus),
            gpu_form_factor=None, gpu_count=1, region="r", country="DE", continent=rng.choice(["EU", "NA"]),
            old_price=old, new_price=new, price_per_gpu=new, change_percent=float((new - old) / old * 100),
            direction="down" if new < old else "up", availability="available", observed_at=NOW, detected_at=NOW,
        ).model_dump_json().encode())  # fmt: skip
    return out


def rate(label: str, payloads: list[bytes], match) -> tuple[float, int]:
    started, matched = time.perf_counter(), 0
    for payload in payloads:
        matched += match(EVENT.validate_json(payload))
    per_second = len(payloads) / (time.perf_counter() - started)
    print(f"  {label:<28} {per_second:>10,.0f} events/s   {matched:>8,} matches")
    return per_second, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(20261203)
    gpus = [m.name for m in MODELS]
    all_rules, payloads = rules(args.rules, gpus, rng), events(args.events, gpus, rng)
    index = RuleIndex(all_rules)
    print(f"{args.events:,} price changes, {args.rules:,} rules over {len(gpus)} GPU models")
    floor, _ = rate("parse only (floor)", payloads, lambda e: 0)
    scan, by_scan = rate("parse + scan every rule", payloads, lambda e: sum(r.matches(f) for f in [facts(e)] for r in all_rules))
    indexed, by_index = rate("parse + GPU index (matcher)", payloads,
                             lambda e: sum(r.matches(f) for f in [facts(e)] for r in index.candidates(e.gpu)))  # fmt: skip
    assert by_scan == by_index, "the index must find exactly what the scan finds"
    print(f"index vs scan: {indexed / scan:.1f}x; matcher at {indexed / floor:.0%} of parsing alone")


if __name__ == "__main__":
    main()
