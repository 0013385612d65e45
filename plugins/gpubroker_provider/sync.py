"""The pipeline's steps, as the DAGs run them. A provider's sync is one task, end to end:

    fetch (circuit breaker; vendor key from Vault first) -> stage the raw payload -> normalise
    -> gate (Great Expectations) -> land (COPY, upsert, history, outbox) or quarantine -> gate report

`sync_provider` returns a small summary (counts, where the key came from, seconds per stage); the
offers never travel through XCom.

**Staging** (`settings.STAGING_URL`, an Airflow `ObjectStoragePath`: file:// locally, s3:// or gs://
through the Airflow connection `settings.STAGING_CONN_ID` in deployment). A sync writes
`<provider>/<observed_at>/raw.jsonl`: a header line `{"provider", "observed_at"}`, then each vendor
response as the vendor sent it, one per line. A refused batch moves to
`quarantine/<provider>/<observed_at>/`, with its offers (`offers.jsonl`, one JSON offer per line);
the `quarantine` table names both by URL, and approving it lands those offers, from whichever worker
or machine approves. No step hands another a local path.

**Normalising** reads the staged responses in chunks of up to `CHUNK_BYTES` and parses each chunk
with the vendor's hook (`VendorHook.parse`), turning its offers into COPY rows at once: a listing of
any size is never held whole as Python objects, and any listing up to `CHUNK_BYTES` (every vendor
today) is parsed in one call, exactly as the hook parses it. Hooks that join several listings (their
own `normalise`) always get every response in one call. An offer_id a later chunk repeats is
dropped as within one parse ("offer_id listed twice").

**Landing** (`normalise_gate_land`) starts before the gate: each chunk's rows are upserted by
`store.Landing` in a thread of their own while the next chunk is parsed, so PostgreSQL and Python
work at once on a large listing (100,000 offers: 15.5-18.0 s -> 11.2-11.5 s on 2 cores, bench/ingest.py). All of it is one
transaction, committed with the gate report only when the gate (which judges the whole batch, as
ever) passes every row; a refused batch is rolled back and quarantined, and one passed without some
rows is rolled back and its kept rows landed alone. The stage timings then read: normalise (with the
landing of all but the last chunk), gate, land (what the landing took after the gate).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
import redis
from airflow.sdk import ObjectStoragePath

from gpubroker import cache, daily, events, health, quality, settings, store, telemetry, webhooks
from gpubroker.breaker import Breaker, CircuitOpen
from gpubroker.schema import OFFER_FIELDS, Offer
from gpubroker_provider.hooks.base import Batch, VendorHook
from gpubroker_provider.hooks.vault import VendorKey, vault_health, vendor_api_key
from gpubroker_provider.vendors import hook_class, vendor

CHUNK_BYTES = 8 * 2**20  # staged responses parsed per call (bounds memory, not results)
QUARANTINE_SAMPLE = 5
REPEATED = "offer_id listed twice"
log = logging.getLogger(__name__)
telemetry.configure("gpubroker-pipeline")  # vendor calls (httpx), landings (psycopg), Redis: only if OTEL_* is set


class BatchQuarantined(RuntimeError):
    """The data-quality gate refused a batch: it was quarantined, nothing of it landed."""


# --- staging ------------------------------------------------------------------------------------
def staging(*parts: str) -> ObjectStoragePath:
    """A path in the staging store (settings.STAGING_URL, through settings.STAGING_CONN_ID)."""
    return ObjectStoragePath("/".join((settings.STAGING_URL, *parts)), conn_id=settings.STAGING_CONN_ID)


def stored(url: str) -> ObjectStoragePath:
    """A staged file named by its URL (as the quarantine table keeps it)."""
    return ObjectStoragePath(url, conn_id=settings.STAGING_CONN_ID)


def stage(provider: str, observed_at: datetime, pages: list, fetched_at: datetime | None = None) -> ObjectStoragePath:
    """Write a raw payload as raw.jsonl (header line, then one response per line); returns its path.
    The folder is named by when it was fetched (a dated list is observed at its date every day)."""
    run = staging(provider, (fetched_at or observed_at).strftime("%Y%m%dT%H%M%S%fZ"))
    run.mkdir(parents=True, exist_ok=True)
    raw = run / "raw.jsonl"
    with raw.open("w") as out:
        out.write(json.dumps({"provider": provider, "observed_at": observed_at.isoformat()}) + "\n")
        for page in pages:
            out.write(json.dumps(page) + "\n")
    return raw


def staged_pages(raw: ObjectStoragePath) -> tuple[dict, Iterator[tuple[int, object]]]:
    """The header of a staged raw.jsonl, and its responses as (bytes, decoded) in order, read lazily."""
    handle = raw.open("rb")
    header = json.loads(handle.readline())

    def pages() -> Iterator[tuple[int, object]]:
        with handle:
            for line in handle:
                yield len(line), _decoded(line)

    return header, pages()


# 19 digits in a row: maybe an integer past 64 bits, which orjson would read as a float. Found by
# mapping every digit to 0 (bytes.translate and `in`: 30x faster than a regular expression here).
_DIGITS_TO_ZERO, _LONG_NUMBER = bytes.maketrans(b"123456789", b"000000000"), b"0" * 19


def _decoded(line: bytes) -> object:
    """orjson: a third of the stdlib's time on big listings. A response is staged as the stdlib decoded
    it, so what orjson reads otherwise goes to the stdlib: NaN (orjson refuses it) and long digit runs."""
    if _LONG_NUMBER in line.translate(_DIGITS_TO_ZERO):
        return json.loads(line)
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


# --- the steps of one provider's sync -----------------------------------------------------------
def vendor_hook(provider: str) -> tuple[VendorHook, str]:
    """The provider's hook with its key (Vault first, else its Airflow connection), and where the key came from."""
    row = vendor(provider)
    key = vendor_api_key(provider) if row.api_key_required else VendorKey(source="none")
    return hook_class(row.slug)(api_key=key.api_key), key.source


def fetch(provider: str) -> tuple[ObjectStoragePath, str]:
    """Fetch the vendor's listing and stage it; returns the staged raw payload and the key's source."""
    fetched_at = datetime.now(timezone.utc)
    hook, source = vendor_hook(provider)
    pages = hook.fetch_raw()
    return stage(provider, hook.observed_at(pages, fetched_at), pages, fetched_at), source


@dataclass
class Parsed:
    """A normalised batch: its offers as COPY rows (`store.row`), and what the vendor parse counted.
    Nothing is lost without a reason: each vendor GPU name the registry does not know is also a drop
    reason, "unknown GPU 'X'", counted each time the parse met it (its item or offer produced none)."""

    provider: str
    observed_at: datetime
    rows: list[tuple] = field(default_factory=list)
    items: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    unknown_gpus: Counter[str] = field(default_factory=Counter)
    memory_mismatches: Counter[str] = field(default_factory=Counter)
    _ids: set[str] = field(default_factory=set, repr=False)

    def add(self, batch: Batch) -> list[tuple]:
        """Take in one parse's offers and counts; returns the rows it added."""
        rows = []
        for offer in batch.offers:
            if offer.offer_id in self._ids:
                self.dropped[REPEATED] += 1
            else:
                self._ids.add(offer.offer_id)
                rows.append(store.row(offer))
        self.rows.extend(rows)
        self.items += batch.items
        for mine, theirs in ((self.dropped, batch.dropped), (self.skipped, batch.skipped),
                             (self.unknown_gpus, batch.unknown_gpus), (self.memory_mismatches, batch.memory_mismatches)):  # fmt: skip
            mine.update(theirs)
        self.dropped.update({unknown_gpu(name): n for name, n in batch.unknown_gpus.items()})
        return rows


def unknown_gpu(name: str) -> str:
    """The drop reason of a vendor GPU name the registry does not know (memory the registry denies is
    the gate's `memory_not_in_registry`)."""
    return f"unknown GPU {name!r}"


def normalise(raw: ObjectStoragePath, rows_to: Callable[[list[tuple]], object] = lambda rows: None) -> Parsed:
    """Parse a staged raw payload chunk by chunk (see the module docstring) into COPY rows, each
    chunk's rows also handed to `rows_to` as soon as they are parsed."""
    header, pages = staged_pages(raw)
    hook = hook_class(header["provider"])()
    parsed = Parsed(header["provider"], datetime.fromisoformat(header["observed_at"]))
    whole = type(hook).normalise is not VendorHook.normalise  # joins listings: every response at once
    chunk, size = [], 0
    for length, page in pages:
        if chunk and not whole and size + length > CHUNK_BYTES:
            rows_to(parsed.add(hook.parse(chunk, parsed.observed_at)))
            chunk, size = [], 0
        chunk.append(page)
        size += length
    rows_to(parsed.add(hook.parse(chunk, parsed.observed_at)))
    return parsed


def normalise_gate_land(conn, provider: str, raw: ObjectStoragePath, base: quality.Baseline, timings: dict[str, float],
                        run_id: str | None = None) -> tuple[Parsed, quality.GateResult, store.LandResult | None]:  # fmt: skip
    """normalise -> gate -> land, each chunk landing while the next one is parsed (store.Landing), in
    one transaction that commits, with the batch's gate report, only when the gate passes every row.
    A refused batch lands nothing (LandResult None: the caller quarantines it); one the gate passes
    without some of its rows is rolled back and its kept rows landed alone. `timings["land"]`: what
    the landing took after the gate. `run_id` names the gate's validation in the Data Docs."""
    with store.landing(conn, provider) as landing:
        with _timed(timings, "normalise"):
            parsed = normalise(raw, landing.add)
        with _timed(timings, "gate"):
            gate = quality.validate(parsed.rows, provider, base, run_id)
        if gate.success and not gate.rows_dropped:
            with _timed(timings, "land"):
                landed = landing.finish(parsed.observed_at)
            quality.record(conn, _report(parsed, gate, base, "landed", landed.offers, timings))
            return parsed, gate, landed
        landing.cancel()
    if not gate.success:
        return parsed, gate, None
    with conn.transaction():
        with _timed(timings, "land"):
            landed = store.land_rows(conn, provider, gate.kept(parsed.rows), parsed.observed_at)
        quality.record(conn, _report(parsed, gate, base, "landed", landed.offers, timings))
    return parsed, gate, landed


@contextmanager
def _timed(timings: dict[str, float], stage_name: str) -> Iterator[None]:
    """A stage's wall seconds under its name; its CPU seconds (this process, every thread) added to
    `cpu` (bench/sync.py: what the providers' own stages need of the machine, together)."""
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        timings[stage_name] = round(time.perf_counter() - started, 3)
        timings["cpu"] = round(timings.get("cpu", 0.0) + time.process_time() - cpu, 3)


def sync_provider(provider: str, approve_quarantine: int | None = None, run_id: str | None = None) -> dict:
    """One provider end to end; returns its summary. A refused batch is kept (quarantine table, files,
    gate report) and then raises BatchQuarantined. `approve_quarantine`: a quarantined batch of this
    provider to land first (`approve`). `run_id`: the sync's (Airflow's DAG run id), which names the
    gate's validation in the Data Docs (`local__<time>` when None)."""
    approved = _approve_once(approve_quarantine) if approve_quarantine else None
    timings: dict[str, float] = {}
    with health.sync_call(provider), _timed(timings, "fetch"), Breaker(provider).guard():
        raw, key_source = fetch(provider)
    with store.connect() as conn:
        base = quality.baseline(conn, provider)
        parsed, gate, landed = normalise_gate_land(conn, provider, raw, base, timings, run_id)
        if landed is None:
            quarantine_id = _quarantine(conn, raw, parsed, gate, base, timings)
            raise BatchQuarantined(f"{provider}: batch of {gate.rows} offers quarantined (id {quarantine_id}): {gate.reason}")
    _show_new_data()
    return {"provider": provider, "observed_at": parsed.observed_at.isoformat(), "credentials": key_source,
            "items": parsed.items, "offers": gate.rows, "landed": landed.offers, "new": landed.new,
            "changed": landed.changed, "vanished": landed.vanished, "gate_dropped": gate.rows_dropped,
            "parse_dropped": dict(parsed.dropped), "skipped": dict(parsed.skipped),
            "unknown_gpus": dict(parsed.unknown_gpus), "baseline": base.rows, "approved": approved,
            "seconds": timings}  # fmt: skip


def _report(parsed: Parsed, gate: quality.GateResult, base: quality.Baseline, outcome: str, landed: int,
            timings: dict[str, float], quarantine_id: int | None = None) -> quality.GateReport:  # fmt: skip
    return quality.GateReport(
        provider=parsed.provider, observed_at=parsed.observed_at, outcome=outcome, items=parsed.items,
        rows_in=gate.rows, rows_landed=landed, rows_dropped=gate.rows_dropped,
        parse_dropped=dict(parsed.dropped), parse_skipped=dict(parsed.skipped), gate_dropped=gate.dropped,
        failures=gate.failures, baseline_rows=base.rows, baseline_source=base.source,
        quarantine_id=quarantine_id, timings=dict(timings), run_at=gate.run_at,
    )  # fmt: skip


def _quarantine(conn, raw: ObjectStoragePath, parsed: Parsed, gate: quality.GateResult, base: quality.Baseline,
                timings: dict[str, float]) -> int:  # fmt: skip
    """Move the staged payload to quarantine/, keep its offers beside it, record why; returns the id."""
    target = staging("quarantine", parsed.provider, raw.parent.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw.parent.move(target, recursive=True)
    offers = target / "offers.jsonl"
    with offers.open("w") as out:
        for row in parsed.rows:
            out.write(Offer.model_validate(dict(zip(OFFER_FIELDS, row))).model_dump_json() + "\n")
    sample = [Offer.model_validate(dict(zip(OFFER_FIELDS, r))).model_dump(mode="json") for r in parsed.rows[:QUARANTINE_SAMPLE]]
    with conn.transaction():
        quarantine_id = store.quarantine(conn, store.Quarantined(
            provider=parsed.provider, reason=gate.reason, failures=gate.failures, sample_rows=sample,
            rows=gate.rows, raw_ref=str(target / "raw.jsonl"), offers_ref=str(offers), at=parsed.observed_at,
        ))  # fmt: skip
        quality.record(conn, _report(parsed, gate, base, "quarantined", 0, timings, quarantine_id))
    return quarantine_id


# --- operators' approval of a quarantined batch ---------------------------------------------------
def approve(quarantine_id: int) -> dict:
    """Land a quarantined batch as it was refused (every offer; the operator overrides the gate),
    which makes it the provider's baseline. Refused (quality.NotApprovable) when unknown, already
    approved, or older than the provider's last landing (it would overwrite newer prices)."""
    with store.connect() as conn, conn.transaction():
        batch = quality.lock_for_approval(conn, quarantine_id)
        with stored(batch.offers_ref).open("r") as lines:
            landed = store.land_rows(conn, batch.provider, (store.row(Offer.model_validate_json(line)) for line in lines), batch.at)
        quality.mark_approved(conn, quarantine_id)
        quality.record(conn, quality.GateReport(
            provider=batch.provider, observed_at=batch.at, outcome="approved", items=batch.rows, rows_in=batch.rows,
            rows_landed=landed.offers, rows_dropped=0, baseline_rows=landed.offers, baseline_source="approved",
            quarantine_id=quarantine_id,
        ))  # fmt: skip
    _show_new_data()
    return {"quarantine_id": quarantine_id, "provider": batch.provider, "observed_at": batch.at.isoformat(),
            "landed": landed.offers, "new": landed.new, "changed": landed.changed}  # fmt: skip


def _approve_once(quarantine_id: int) -> dict | None:
    """`approve`, except that a batch approved already (an earlier try of this task did) is not an error."""
    try:
        return approve(quarantine_id)
    except quality.AlreadyApproved as done:
        log.warning("%s: syncing as usual", done)
        return None


GROUPS = 8  # task instances of a manual sync of every vendor: the vendor_api pool's slots, one wave


class SyncFailed(RuntimeError):
    """Some providers of a group could not be synced (the others were): retried, they are synced again."""


def plan(providers: list[str], approve_quarantine: int | None = None) -> list[dict]:
    """The manual sync's task arguments: the providers in at most GROUPS groups of about equal cost
    (each provider's recent sync time, the longest first, onto the least loaded group), so a sync of
    every vendor is one wave of task processes, not one process (and its start-up) per vendor. The
    approved batch's provider is synced (after the approval) too."""
    wanted = dict.fromkeys(providers)
    with store.connect() as conn:
        if approve_quarantine:
            wanted[quality.approvable(conn, approve_quarantine).provider] = approve_quarantine
        cost = recent_seconds(conn, list(wanted))
    groups: list[list[str]] = [[] for _ in range(min(GROUPS, len(wanted)))]
    load = [0.0] * len(groups)
    for provider in sorted(wanted, key=lambda p: (-cost.get(p, 1.0), p)):
        least = load.index(min(load))
        groups[least].append(provider)
        load[least] += cost.get(provider, 1.0)
    return [{"providers": group, "approvals": {p: wanted[p] for p in group if wanted[p]}} for group in groups]


def recent_seconds(conn, providers: list[str]) -> dict[str, float]:
    """Each provider's median fetch..land seconds over its last 5 gate reports."""
    rows = conn.execute(
        """SELECT provider, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM (
               SELECT provider, COALESCE((timings->>'fetch')::float, 0) + COALESCE((timings->>'normalise')::float, 0)
                   + COALESCE((timings->>'gate')::float, 0) + COALESCE((timings->>'land')::float, 0) AS seconds,
                   row_number() OVER (PARTITION BY provider ORDER BY run_at DESC) AS recent
               FROM gate_reports WHERE provider = ANY(%s)) r
           WHERE recent <= 5 GROUP BY provider""",
        (providers,),
    ).fetchall()
    return {provider: seconds for provider, seconds in rows}


def sync_providers(providers: list[str], run_id: str, since: datetime, approvals: dict[str, int] | None = None) -> dict:
    """Sync a group's providers one after another; {provider: summary}. Providers that a try of this run
    already settled (landed, or quarantined) are not synced again; the others all are, whatever one of
    them does, and SyncFailed then names each that failed (BatchQuarantined when each was quarantined)."""
    approvals = approvals or {}
    with store.connect() as conn:
        settled = settled_since(conn, providers, since)
    summaries, failures, quarantined = {}, [], []
    for provider in (p for p in providers if p not in settled):
        try:
            summaries[provider] = sync_provider(provider, approvals.get(provider), run_id=run_id)
        except BatchQuarantined as refused:
            quarantined.append(str(refused))
        except Exception as failure:  # one provider's failure is reported, never another's: at the end
            log.warning("%s: sync failed: %s", provider, failure)
            failures.append(f"{provider}: {type(failure).__name__}: {failure}")
    if failures:
        raise SyncFailed("; ".join(failures + quarantined))
    if quarantined:
        raise BatchQuarantined("; ".join(quarantined))
    return summaries


def settled_since(conn, providers: list[str], since: datetime) -> set[str]:
    """Providers with a gate report (landed, approved or quarantined) since `since`."""
    rows = conn.execute("SELECT DISTINCT provider FROM gate_reports WHERE provider = ANY(%s) AND run_at >= %s",
                        (providers, since)).fetchall()  # fmt: skip
    return {provider for (provider,) in rows}


# --- health, publishing, cache, reports, webhooks -------------------------------------------------
def probe(provider: str) -> dict:
    """One cheap call to the provider, recorded in its breaker: {provider, ok, latency, state, weight}."""
    breaker = Breaker(provider)
    started, error = time.monotonic(), None
    try:
        with breaker.guard():
            vendor_hook(provider)[0].probe()
    except CircuitOpen as refused:
        error = str(refused)
    except Exception as failure:  # any failure is the provider's health, reported not raised
        error = f"{type(failure).__name__}: {failure}"
    snapshot = breaker.snapshot()
    return {"provider": provider, "ok": error is None, "error": error, "state": snapshot.state.value,
            "latency": round(time.monotonic() - started, 3), "weight": snapshot.weight}  # fmt: skip


def check_health(providers: list[str], workers: int = 8) -> dict:
    """Probe providers (and Vault) concurrently; record statuses; announce changes. Returns {changed, statuses, vault}."""
    at = datetime.now(timezone.utc)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        vault = pool.submit(vault_health)
        probes = list(pool.map(probe, providers))
    with store.connect() as conn:
        changed = health.record(conn, probes, at)
    health.record_vault(vault.result())
    return {"changed": changed, "vault": vault.result()["status"],
            "statuses": {p["provider"]: health.classify(p["ok"], p["latency"], p["weight"]) for p in probes}}  # fmt: skip


def publish() -> int:
    """Publish every pending outbox event to Kafka; returns how many Kafka acknowledged."""
    with store.connect() as conn:
        return events.publish_pending(conn)


def _show_new_data() -> None:
    """A landing retires the webapp's cached answers at once (a new data version)."""
    try:
        cache.bump_version()
    except redis.RedisError as error:  # the answers then age out with their TTL (<= 60 s)
        log.warning("could not bump the cache version: %s", error)


def refresh_cache() -> dict[str, int]:
    """Ask the webapp for the hot answers so its shared cache holds them; path -> HTTP status."""
    with store.connect() as conn:
        return cache.warm(conn)


def quarantines_since(since: datetime) -> int:
    with store.connect() as conn:
        return store.quarantines_since(conn, since)


def build_dq_report() -> str:
    """Rebuild the data-quality report (GX Data Docs, served by the webapp at /dq/)."""
    return str(quality.build_docs())


def deliver_webhooks(requests: list[dict], default_id: str) -> list[dict]:
    """Deliver each request (validated first); the first failure is raised after the others were tried."""
    from airflow.sdk.log import mask_secret

    if not settings.WEBHOOK_SECRET:
        raise webhooks.WebhookRefused("GPUBROKER_WEBHOOK_SECRET is not set: webhooks cannot be signed")
    mask_secret(settings.WEBHOOK_SECRET)
    hooks = [webhooks.Webhook.from_request(r, f"{default_id}-{i}" if i else default_id) for i, r in enumerate(requests)]
    results, failures = [], []
    with store.connect() as conn:
        for hook in hooks:
            try:
                results.append(webhooks.deliver(conn, hook, settings.WEBHOOK_SECRET))
            except (webhooks.DeliveryFailed, webhooks.WebhookRefused) as error:
                failures.append(str(error))
    if failures:
        raise webhooks.DeliveryFailed("; ".join(failures))
    return results


def daily_report(day: str | None, run_after: datetime) -> dict:
    """Write the daily analytics report (gpubroker.daily) of `day` (YYYY-MM-DD), by default of the UTC
    day before the run's `run_after`; replaces any earlier report of that day."""
    report_day = daily.parse_day(day) if day else daily.day_before(run_after)
    with store.connect() as conn:
        written = daily.build(conn, report_day)
    _show_new_data()
    return written.as_dict()
