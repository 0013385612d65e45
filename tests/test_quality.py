"""The Great Expectations gate, and what a refused batch does (real GX, real PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gpubroker import quality, settings
from gpubroker.schema import Offer
from gpubroker_provider import sync
from gpubroker_provider.vendors import VENDORS

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
KNOWN = sorted(VENDORS)


def offer(offer_id="a", **changes) -> Offer:
    fields = dict(
        provider="vastai", offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal("2.50"), region="Norway", observed_at=NOW,
    )  # fmt: skip
    return Offer(**(fields | changes))


def batch(n=4, **changes):
    return [offer(f"o{i}", **changes) for i in range(n)]


def failed(result: quality.GateResult) -> set[str]:
    return {f"{f['expectation']}:{','.join(f['columns'])}" for f in result.failures}


def test_a_clean_batch_passes():
    result = quality.validate(batch(), last_good_rows=5, known_providers=KNOWN)
    assert result.success and result.failures == []


@pytest.mark.parametrize(
    ("offers", "rule"),
    [
        (batch(price_per_hour=Decimal("90")), "expect_column_pair_values_a_to_be_greater_than_b:band_high,price_per_gpu_hour"),
        (batch(price_per_hour=Decimal("0.01")), "expect_column_pair_values_a_to_be_greater_than_b:price_per_gpu_hour,band_low"),
        (batch(gpu_memory_gb=12), "expect_column_values_to_be_in_set:memory_matches_registry"),
        (batch(provider="nosuchcloud"), "expect_column_values_to_be_in_set:provider"),
        (batch(spot_price=Decimal("3.00")), "expect_column_pair_values_a_to_be_greater_than_b:price_per_hour,spot_price"),
        ([offer("same"), offer("same")], "expect_column_values_to_be_unique:offer_id"),
    ],
    ids=["price-above-band", "price-below-band", "memory", "provider", "spot-above-on-demand", "duplicate-id"],
)
def test_each_rule_refuses_its_bad_batch(offers, rule):
    result = quality.validate(offers, last_good_rows=None, known_providers=KNOWN)
    assert not result.success
    assert rule in failed(result)


def test_a_batch_may_not_collapse_by_more_than_half():
    assert quality.validate(batch(5), last_good_rows=10, known_providers=KNOWN).success
    shrunk = quality.validate(batch(4), last_good_rows=10, known_providers=KNOWN)
    assert failed(shrunk) == {"expect_table_row_count_to_be_between:"}
    assert "observed 4" in shrunk.reason


def test_the_committed_suite_matches_the_registry():
    committed = json.loads((quality.GX_ROOT / "gx" / "expectations" / f"{quality.SUITE}.json").read_text())
    types = [e["type"] for e in committed["expectations"]]
    assert types == [e.expectation_type for e in quality._expectations()]


def write_batch(provider: str, offers: list[Offer], tmp_path) -> dict:
    run = tmp_path / provider / "20261126T120000Z"
    run.mkdir(parents=True)
    (run / "raw.json").write_text(json.dumps({"provider": provider, "pages": [{"recorded": True}]}))
    (run / "offers.jsonl").write_text("".join(o.model_dump_json() + "\n" for o in offers))
    return {"provider": provider, "offers_ref": str(run / "offers.jsonl"), "observed_at": NOW.isoformat()}


def test_a_refused_batch_is_quarantined_and_the_last_good_data_stays_served(pg, pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "STAGING_DIR", tmp_path)
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    good = sync.gate_and_land(write_batch("vastai", batch(4), tmp_path))
    assert good["offers"] == 4

    bad = write_batch("vastai", batch(4, price_per_hour=Decimal("900")), tmp_path / "later")
    with pytest.raises(sync.BatchQuarantined, match="vastai: batch of 4 offers quarantined: .*band_high"):
        sync.gate_and_land(bad)

    prices = {r[0] for r in pg.execute("SELECT price_per_hour FROM offers WHERE provider = 'vastai'")}
    assert prices == {Decimal("2.5000")}  # nothing of the bad batch landed
    stale, reason = pg.execute("SELECT stale, stale_reason FROM provider_status WHERE provider = 'vastai'").fetchone()
    assert stale and "band_high" in reason
    provider, rows, raw_ref, failures = pg.execute("SELECT provider, rows, raw_ref, failures FROM quarantine").fetchone()
    assert (provider, rows) == ("vastai", 4) and failures[0]["sample"]
    assert json.loads(open(raw_ref).read())["pages"] == [{"recorded": True}]  # the raw payload is kept
    [(topic, key, payload)] = pg.execute("SELECT topic, key, payload FROM event_outbox").fetchall()
    assert (topic, key, payload["type"], payload["status"]) == (settings.Topics.PROVIDER_EVENTS, "vastai", "quarantine", "stale")

    sync.gate_and_land(write_batch("vastai", batch(4), tmp_path / "again"))  # a good batch clears the flag
    assert pg.execute("SELECT stale FROM provider_status WHERE provider = 'vastai'").fetchone() == (False,)


def test_the_dq_report_shows_a_refused_batch_and_is_served_at_dq(client, tmp_path, monkeypatch):
    from gpubroker_provider.airflow_plugin import GpuBrokerPlugin

    refused = quality.validate(batch(3, price_per_hour=Decimal("999")), last_good_rows=None, known_providers=KNOWN)
    assert not refused.success
    index = quality.build_docs()
    assert index.is_file()
    page = client.get("/dq/docs/")  # the Data Docs; /dq/ is the per-provider summary (tests/test_dq_page.py)
    assert page.status_code == 200 and b"offer_batch" in page.content
    assert client.get("/dq/docs/../../great_expectations.yml").status_code in (400, 404)  # no escaping the docs folder
    assert GpuBrokerPlugin.external_views[0]["href"].endswith("/dq/")
