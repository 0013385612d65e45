"""`gpubroker`: the command line for users and operators.

  gpubroker providers                               the vendor table, with each breaker's state
  gpubroker offers --provider NAME [--live] [--gpu H100]
                                                    fetch and print a table (replay server unless --live)
  gpubroker normalize --provider NAME FILE          one saved response body of the vendor's primary
                                                    listing call -> one JSON offer per line (for vendors
                                                    joining several calls: a sync's staging raw.json)
  gpubroker quarantine list [--provider NAME] [--all]
                                                    batches the data-quality gate refused (pending unless --all)
  gpubroker quarantine approve ID                   land a quarantined batch as it was refused; it becomes
                                                    the provider's baseline (database: GPUBROKER_DATABASE_URL)
  gpubroker sync --provider NAME [--provider NAME ...] [--run-id ID]
                                                    sync providers end to end as gpubroker_data_sync does,
                                                    without Airflow (connections: AIRFLOW_CONN_*); their
                                                    summaries as one JSON object

Bad input (unknown provider, unreadable file, wrong format, a batch that cannot be approved) gets
one line on stderr and exit 2;
a vendor that cannot be reached, exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from gpubroker_provider.vendors import VENDORS, UnknownProvider, Vendor, hook_class, vendor

DEFAULT_REPLAY_URL = "http://127.0.0.1:8765"
BAD_INPUT, UNREACHABLE = 2, 1


class CliError(Exception):
    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def breaker_state(slug: str) -> str:
    try:
        from gpubroker.breaker import Breaker

        snapshot = Breaker(slug).snapshot()
        return f"{snapshot.state.value} ({snapshot.weight:.2f})"
    except Exception:  # Redis not running: the table is still useful without it
        return "-"


def cmd_providers(args: argparse.Namespace, out) -> None:
    rows = [
        {"provider": v.slug, "name": v.name, "source": v.source, "auth": "key" if v.api_key_required else "none",
         "endpoint": v.endpoint, "breaker": breaker_state(v.slug)}  # fmt: skip
        for v in VENDORS.values()
    ]
    print(table(rows, ["provider", "name", "source", "auth", "endpoint", "breaker"]), file=out)


def hook_for(row: Vendor, live: bool):
    cls = hook_class(row.slug)
    if row.source == "list":
        return cls()
    if live:
        return cls(api_key=os.environ.get(f"GPUBROKER_{row.slug.upper()}_API_KEY"))
    replay = os.environ.get("GPUBROKER_REPLAY_URL") or DEFAULT_REPLAY_URL
    return cls(base_url=f"{replay}/{row.slug}", api_key=os.environ.get("GPUBROKER_REPLAY_KEY", "replay-key"))


def cmd_offers(args: argparse.Namespace, out) -> None:
    from gpubroker import gpus
    from gpubroker_provider.hooks.base import PayloadError, VendorError

    row = vendor(args.provider)
    wanted = None
    if args.gpu:
        try:
            wanted = gpus.resolve(args.gpu).model.name
        except gpus.UnknownGpu as error:
            raise CliError(str(error)) from None
    try:
        batch = hook_for(row, args.live).fetch_batch()
    except VendorError as error:
        raise CliError(str(error), UNREACHABLE) from None
    except PayloadError as error:
        raise CliError(str(error), UNREACHABLE) from None
    offers = sorted((o for o in batch.offers if wanted in (None, o.gpu_model)), key=lambda o: o.price_per_hour)
    rows = [
        {"offer_id": o.offer_id, "gpu": f"{o.gpu_count}x {o.gpu_model}", "mem_gb": f"{o.gpu_memory_gb:g}",
         "usd_per_hour": f"{o.price_per_hour:.4f}", "spot": "-" if o.spot_price is None else f"{o.spot_price:.4f}",
         "region": o.region, "country": o.country or "-", "availability": o.availability.value}  # fmt: skip
        for o in offers
    ]
    print(table(rows, ["offer_id", "gpu", "mem_gb", "usd_per_hour", "spot", "region", "country", "availability"]), file=out)
    source = "live API" if args.live and row.source == "api" else "replay server" if row.source == "api" else "static list"
    print(f"\n{len(offers)} offers from {row.name} ({source})", file=sys.stderr)
    if batch.unknown_gpus:
        print(f"GPU names not in the registry: {dict(batch.unknown_gpus)}", file=sys.stderr)


def pages_of(row: Vendor, hook, body) -> list:
    """A saved primary listing body, or a sync's staging raw.json ({"provider", "pages": [...]})."""
    if isinstance(body, dict) and body.get("provider") == row.slug and isinstance(body.get("pages"), list):
        return body["pages"]
    if not hook.primary_only:
        raise CliError(f"{row.name} offers join several API calls: pass a sync's raw.json (its \"pages\"), "
                       f"not one body of {row.endpoint}")  # fmt: skip
    return hook.pages_from_primary(body)


def cmd_normalize(args: argparse.Namespace, out) -> None:
    from gpubroker_provider.hooks.base import PayloadError

    row = vendor(args.provider)
    try:
        body = json.loads(Path(args.file).read_text())
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    except ValueError:
        raise CliError(f"{args.file} is not JSON: expected a saved body of {row.name}'s {row.endpoint}") from None
    hook = hook_class(row.slug)()
    try:
        batch = hook.parse(pages_of(row, hook, body), datetime.now(timezone.utc))
    except PayloadError as error:
        raise CliError(f"{error} (expected a saved body of {row.endpoint})") from None
    for offer in batch.offers:
        print(offer.model_dump_json(), file=out)
    if batch.unknown_gpus:
        print(f"GPU names not in the registry: {dict(batch.unknown_gpus)}", file=sys.stderr)


def cmd_quarantine_list(args: argparse.Namespace, out) -> None:
    from gpubroker import quality, store

    if args.provider:
        vendor(args.provider)  # an unknown slug is bad input
    with store.connect() as conn:
        batches = quality.quarantines(conn, args.provider, pending=not args.all)
    rows = [{"id": b.id, "provider": b.provider, "fetched": f"{b.at:%Y-%m-%d %H:%M:%S}", "rows": b.rows,
             "approved": "-" if b.approved_at is None else f"{b.approved_at:%Y-%m-%d %H:%M:%S}", "reason": b.reason}
            for b in batches]  # fmt: skip
    print(table(rows, ["id", "provider", "fetched", "rows", "approved", "reason"]), file=out)


def cmd_quarantine_approve(args: argparse.Namespace, out) -> None:
    from gpubroker import quality
    from gpubroker_provider import sync

    try:
        approved = sync.approve(args.id)
    except quality.NotApprovable as error:
        raise CliError(str(error)) from None
    print(json.dumps(approved), file=out)
    print(f"landed {approved['landed']} offers of {approved['provider']} (quarantined batch {args.id}); "
          "it is now the provider's baseline", file=sys.stderr)  # fmt: skip


def cmd_sync(args: argparse.Namespace, out) -> None:
    from gpubroker_provider import sync

    providers = [vendor(slug).slug for slug in dict.fromkeys(args.provider)]  # an unknown slug is bad input
    started = datetime.now(timezone.utc)
    try:
        summaries = sync.sync_providers(providers, args.run_id or f"local__{started.isoformat()}", started)
    except (sync.SyncFailed, sync.BatchQuarantined) as failed:
        raise CliError(str(failed), UNREACHABLE) from None
    print(json.dumps(summaries), file=out)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gpubroker", description="GPU offers across vendors, normalised.")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("providers", help="the vendor table").set_defaults(run=cmd_providers)
    offers = commands.add_parser("offers", help="fetch one provider's offers and print a table")
    offers.add_argument("--provider", required=True)
    offers.add_argument("--live", action="store_true", help="call the vendor's API (key: GPUBROKER_<SLUG>_API_KEY)")
    offers.add_argument("--gpu", help="only this GPU model (any alias)")
    offers.set_defaults(run=cmd_offers)
    normalize = commands.add_parser("normalize", help="normalise a saved response body to offers (JSON lines)")
    normalize.add_argument("--provider", required=True)
    normalize.add_argument("file")
    normalize.set_defaults(run=cmd_normalize)
    quarantine = commands.add_parser("quarantine", help="batches the data-quality gate refused").add_subparsers(
        dest="action", required=True
    )
    listing = quarantine.add_parser("list", help="quarantined batches, newest first")
    listing.add_argument("--provider")
    listing.add_argument("--all", action="store_true", help="approved ones too")
    listing.set_defaults(run=cmd_quarantine_list)
    approve = quarantine.add_parser("approve", help="land a quarantined batch (operator override of the gate)")
    approve.add_argument("id", type=int)
    approve.set_defaults(run=cmd_quarantine_approve)
    syncing = commands.add_parser("sync", help="sync providers end to end, as the gpubroker_data_sync DAG does")
    syncing.add_argument("--provider", action="append", required=True, help="a vendor's slug (repeat for several)")
    syncing.add_argument("--run-id", help="names the gate's validations in the Data Docs (default local__<time>)")
    syncing.set_defaults(run=cmd_sync)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # data on stdout; hooks' log lines go to stderr
            args.run(args, stdout)
    except UnknownProvider as error:
        print(f"gpubroker: {error}", file=sys.stderr)
        return BAD_INPUT
    except CliError as error:
        print(f"gpubroker: {error}", file=sys.stderr)
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
