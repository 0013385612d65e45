"""The steps of one provider sync, as the `gpubroker_data_sync` DAG runs them.

fetch -> normalise -> gate (Great Expectations) -> land or quarantine -> publish. Steps hand each other small references to files in the
staging directory (never offer lists through XCom); the raw payload is kept beside the offers.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import redis

from gpubroker import cache, events, health, quality, settings, store, telemetry, webhooks
from gpubroker.breaker import Breaker, CircuitOpen
from gpubroker.schema import Offer
from gpubroker_provider.vendors import VENDORS, vendor

QUARANTINE_SAMPLE = 5
log = logging.getLogger(__name__)
telemetry.configure("gpubroker-pipeline")  # vendor calls (httpx), landings (psycopg), Redis: only if OTEL_* is set


class BatchQuarantined(RuntimeError):
    """The data-quality gate refused a batch: it was quarantined, nothing of it landed."""


def _run_dir(provider: str, observed_at: datetime) -> Path:
    path = settings.STAGING_DIR / provider / observed_at.strftime("%Y%m%dT%H%M%S%fZ")
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch(provider: str) -> str:
    """Fetch the vendor's listing; returns the path of the raw payload file."""
    observed_at = datetime.now(timezone.utc)
    pages = vendor(provider).hook_class()().fetch_raw()
    raw = _run_dir(provider, observed_at) / "raw.json"
    raw.write_text(json.dumps({"provider": provider, "observed_at": observed_at.isoformat(), "pages": pages}))
    return str(raw)


def normalise(raw_ref: str) -> dict:
    """Normalise a raw payload to offers (JSON lines beside it); returns the batch summary."""
    raw_path = Path(raw_ref)
    raw = json.loads(raw_path.read_text())
    observed_at = datetime.fromisoformat(raw["observed_at"])
    batch = vendor(raw["provider"]).hook_class()().parse(raw["pages"], observed_at)
    offers_path = raw_path.with_name("offers.jsonl")
    offers_path.write_text("".join(o.model_dump_json() + "\n" for o in batch.offers))
    return {
        "provider": raw["provider"],
        "offers_ref": str(offers_path),
        "observed_at": raw["observed_at"],
        "offers": len(batch.offers),
        "unknown_gpus": dict(batch.unknown_gpus),
        "memory_mismatches": dict(batch.memory_mismatches),
        "items": batch.items,  # listing items read; of them, by reason:
        "dropped": dict(batch.dropped),  # could not be parsed (bad data)
        "skipped": dict(batch.skipped),  # not GPU offers by design (CPU plans, storage SKUs, ...)
    }


def fetch_offers(provider: str) -> dict:
    """Fetch (under the provider's circuit breaker) and normalise; returns the batch summary."""
    with Breaker(provider).guard():
        raw_ref = fetch(provider)
    return normalise(raw_ref)


def probe(provider: str) -> dict:
    """One cheap call to the provider, recorded in its breaker: {provider, ok, latency, state, weight}."""
    breaker = Breaker(provider)
    hook = vendor(provider).hook_class()()
    started, error = time.monotonic(), None
    try:
        with breaker.guard():
            hook.probe()
    except CircuitOpen as refused:
        error = str(refused)
    except Exception as failure:  # any failure is the provider's health, reported not raised
        error = f"{type(failure).__name__}: {failure}"
    snapshot = breaker.snapshot()
    return {"provider": provider, "ok": error is None, "error": error, "state": snapshot.state.value,
            "latency": round(time.monotonic() - started, 3), "weight": snapshot.weight}  # fmt: skip


def check_health(providers: list[str], workers: int = 8) -> dict:
    """Probe providers concurrently; record statuses; announce changes. Returns {changed, statuses}."""
    from concurrent.futures import ThreadPoolExecutor

    at = datetime.now(timezone.utc)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probes = list(pool.map(probe, providers))
    with store.connect() as conn:
        changed = health.record(conn, probes, at)
    return {"changed": changed, "statuses": {p["provider"]: health.classify(p["ok"], p["latency"], p["weight"])
                                             for p in probes}}  # fmt: skip


def gate_and_land(summary: dict) -> dict:
    """Validate the batch (GX gate); land it in one transaction, or quarantine it whole."""
    provider = summary["provider"]
    offers = [Offer.model_validate_json(line) for line in Path(summary["offers_ref"]).read_text().splitlines()]
    observed_at = datetime.fromisoformat(summary["observed_at"])
    with store.connect() as conn:
        gate = quality.validate(offers, store.last_good_rows(conn, provider), sorted(VENDORS))
        if not gate.success:
            store.quarantine(conn, _quarantined(summary, offers, gate, observed_at))
            raise BatchQuarantined(f"{provider}: batch of {len(offers)} offers quarantined: {gate.reason}")
        result = store.land(conn, provider, offers, observed_at)
    _show_new_data()
    return {"provider": provider, "offers": result.offers, "new": result.new,
            "changed": result.changed, "vanished": result.vanished}  # fmt: skip


def _quarantined(summary: dict, offers: list[Offer], gate: quality.GateResult, at: datetime) -> store.Quarantined:
    """Move the batch's files (raw payload and offers) into the quarantine folder."""
    source = Path(summary["offers_ref"]).parent
    target = settings.STAGING_DIR / "quarantine" / summary["provider"] / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return store.Quarantined(
        provider=summary["provider"], reason=gate.reason, failures=gate.failures,
        sample_rows=[o.model_dump(mode="json") for o in offers[:QUARANTINE_SAMPLE]], rows=len(offers),
        raw_ref=str(target / "raw.json"), offers_ref=str(target / "offers.jsonl"), at=at,
    )  # fmt: skip


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
