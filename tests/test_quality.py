"""The data-quality gate (real GX), gate reports, baselines, quarantine and approval (real PostgreSQL, Redis):
every item a sync does not land has its reason, and each validation is named by provider and sync run."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from gpubroker import quality, settings, store
from gpubroker.schema import Offer
from gpubroker_provider import sync
from tests.conftest import REPLAY_KEY, recording
from tests.dq_fixtures import gx_project, lambda_cloud  # noqa: F401 (fixtures)

NOW = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
NO_BASELINE = quality.Baseline(None, "none")
pytestmark = pytest.mark.usefixtures("gx_project")  # validations and Data Docs in a copy of the project


def offer(offer_id="a", **changes) -> Offer:
    fields = dict(
        provider="vastai", offer_id=offer_id, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
        gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal("2.50"), spot_price=Decimal("2.00"), region="Norway",
        observed_at=NOW,
    )  # fmt: skip
    return Offer(**(fields | changes))


def rows(offers: list[Offer]) -> list[tuple]:
    return [store.row(o) for o in offers]


def batch(n=20, prefix="o", **changes) -> list[Offer]:
    return [offer(f"{prefix}{i}", **changes) for i in range(n)]


# What breaks each row-level rule, on an otherwise good H100 offer (band 0.25..25 USD per GPU-hour, 80/94 GB).
BREAKS = {
    "price_above_band": {"price_per_hour": Decimal("90")},
    "price_below_band": {"price_per_hour": Decimal("0.01"), "spot_price": None},
    "memory_not_in_registry": {"gpu_memory_gb": 12},
    "spot_above_on_demand": {"spot_price": Decimal("3.00")},
}


# Pricing terms the schema refuses (so built past it, as a faulty hook or a schema change could hand them
# to the gate), each on one row of a batch whose other rows the rule applies to: reason -> (batch, bad row).
RESERVED = {"pricing_type": "reserved", "commitment_months": 12, "spot_price": None}
TERMS = {
    "pricing_type_unknown": ({}, {"pricing_type": "weekly"}),
    "interconnect_unknown": ({"interconnect": "nvlink"}, {"interconnect": "carrier pigeon"}),
    "commitment_not_reserved": ({}, {"commitment_months": 12}),  # on an on-demand row
    "commitment_missing": (RESERVED, RESERVED | {"commitment_months": None}),
    "commitment_out_of_range": (RESERVED, RESERVED | {"commitment_months": 121}),
}


def unchecked(offer_id: str, **changes) -> Offer:
    """A good offer with `changes` that are not validated."""
    return offer(offer_id).model_copy(update=changes)


def gate(offers: list[Offer], base: quality.Baseline = NO_BASELINE, run_id: str | None = None) -> quality.GateResult:
    return quality.validate(rows(offers), "vastai", base, run_id)


def test_a_clean_batch_lands_whole():
    result = gate(batch())
    assert result.success and result.failures == [] and result.dropped == {} and result.keep.all()


@pytest.mark.parametrize("reason", BREAKS)
def test_a_few_bad_rows_are_dropped_with_their_reason_and_the_rest_lands(reason):
    offers = batch(19) + [offer("bad", **BREAKS[reason])]
    result = gate(offers)
    assert result.success
    assert list(result.keep) == [True] * 19 + [False]
    assert list(result.dropped) == [reason] and result.dropped[reason]["rows"] == 1 and result.dropped[reason]["sample"]
    assert [r[1] for r in result.kept(rows(offers))] == [f"o{i}" for i in range(19)]


@pytest.mark.parametrize("reason", BREAKS)
def test_more_bad_rows_than_mostly_allows_refuse_the_batch(reason):
    result = gate(batch(17) + batch(3, prefix="bad", **BREAKS[reason]))  # 15% > the 10% allowed
    assert not result.success
    [failure] = result.failures
    assert (failure["reason"], failure["level"], failure["unexpected"], failure["mostly"]) == (reason, "row", 3, 0.9)
    assert failure["sample"] and f"{reason}: 3 of 20 rows (allowed: 10%)" in result.reason


def test_one_row_of_another_provider_refuses_the_batch():
    result = gate(batch(19) + [offer("x", provider="runpod")])
    assert [f["reason"] for f in result.failures] == ["foreign_provider"]


def test_a_repeated_offer_id_refuses_the_batch():
    result = gate([offer("same"), offer("same"), offer("other")])
    assert [(f["reason"], f["level"]) for f in result.failures] == [("duplicate_offer_id", "batch")]


def test_a_batch_may_not_shrink_by_more_than_half_against_its_baseline():
    assert gate(batch(5), quality.Baseline(10, "last_good")).success
    shrunk = gate(batch(4), quality.Baseline(10, "last_good"))
    assert [(f["reason"], f["observed"]) for f in shrunk.failures] == [("row_count_drop", 4)]
    assert not gate([], NO_BASELINE).success  # and never be empty


@pytest.mark.parametrize("reason", TERMS)
def test_a_row_with_pricing_terms_the_schema_refuses_is_dropped_with_its_reason(reason):
    good, bad = TERMS[reason]
    result = gate(batch(19, **good) + [unchecked("bad", **bad)])
    assert result.success and list(result.keep) == [True] * 19 + [False]
    assert {r: d["rows"] for r, d in result.dropped.items()} == {reason: 1}


def test_pricing_terms_the_schema_accepts_pass_and_a_rule_s_share_is_of_the_rows_it_applies_to():
    terms = [offer(f"r{i}", **RESERVED | {"commitment_months": m, "interconnect": i})
             for i, m in (("nvlink", 1), ("infiniband", 36), (None, 120))]  # fmt: skip
    assert gate(batch(17) + terms).dropped == {}
    weekly = gate(batch(17) + [unchecked(f"w{i}", pricing_type="weekly") for i in range(3)])  # 15% > the 10% allowed
    assert [(f["reason"], f["unexpected"], f["sample"]) for f in weekly.failures] == [("pricing_type_unknown", 3, ["weekly"] * 3)]
    # the one row stating an interconnect states a wrong one: all the rule applies to
    [failure] = gate(batch(19) + [unchecked("x", interconnect="carrier pigeon")]).failures
    assert (failure["reason"], failure["unexpected"]) == ("interconnect_unknown", 1)


def test_a_row_breaking_two_rules_is_counted_once_under_the_first():
    result = gate(batch(19) + [offer("bad", price_per_hour=Decimal("90"), gpu_memory_gb=12)])
    assert result.success and {r: d["rows"] for r, d in result.dropped.items()} == {"price_above_band": 1}
    assert result.rows_dropped == 1


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from([None, *BREAKS]), min_size=1, max_size=40))
def test_the_gate_drops_exactly_the_bad_rows_and_refuses_exactly_past_mostly(kinds):
    """Against an independent model: each row good or broken one way; the gate keeps the good rows
    and refuses when some rule's failing share (among the rows it applies to) passes 1 - mostly."""
    offers = [offer(f"o{i}", **(BREAKS[k] if k else {})) for i, k in enumerate(kinds)]
    result = gate(offers)
    assert list(result.keep) == [k is None for k in kinds]
    spot_rows = sum(k != "price_below_band" for k in kinds)  # spot is checked where there is a spot price
    applies = {k: spot_rows if k == "spot_above_on_demand" else len(kinds) for k in BREAKS}
    shares = {k: sum(x == k for x in kinds) / applies[k] for k in BREAKS if applies[k]}
    assert result.success == all(share <= 0.1 + 1e-9 for share in shares.values())


def test_the_committed_suite_is_the_rules():
    committed = json.loads((quality.GX_ROOT / "gx" / "expectations" / f"{quality.SUITE}.json").read_text())
    assert [(e["meta"]["reason"], e["meta"]["level"], e["kwargs"].get("mostly", 1.0)) for e in committed["expectations"]] == [
        (r.reason, r.level, 1.0 if r.mostly is None else r.mostly) for r in quality.RULES
    ]  # GX leaves out the default mostly (1.0)
    assert [e["type"] for e in committed["expectations"]] == [r.build().expectation_type for r in quality.RULES]


# --- baseline and reports (PostgreSQL) ---------------------------------------------------------------
def report(provider="vastai", outcome="landed", rows_in=10, at=NOW, **fields) -> quality.GateReport:
    return quality.GateReport(provider=provider, observed_at=at, run_at=at, outcome=outcome, items=rows_in,
                              rows_in=rows_in, rows_landed=0 if outcome == "quarantined" else rows_in,
                              rows_dropped=0, **fields)  # fmt: skip


def test_the_baseline_is_re_established_after_three_quarantines_in_a_row(pg):
    store.land(pg, "vastai", batch(10), NOW)
    quality.record(pg, report(rows_in=10))
    assert quality.baseline(pg, "vastai") == quality.Baseline(10, "last_good")
    for hour, rows_in in enumerate((4, 3), start=1):
        quality.record(pg, report(outcome="quarantined", rows_in=rows_in, at=NOW + timedelta(hours=hour)))
    assert quality.baseline(pg, "vastai") == quality.Baseline(10, "last_good")  # two are not enough
    quality.record(pg, report(outcome="quarantined", rows_in=4, at=NOW + timedelta(hours=3)))
    assert quality.baseline(pg, "vastai") == quality.Baseline(4, "re-established")
    assert gate(batch(4), quality.baseline(pg, "vastai")).success  # the vendor's new size passes now


def test_reports_are_kept_and_read_back_latest_first(pg):
    quality.record(pg, report("vastai", at=NOW, gate_dropped={"price_above_band": {"rows": 1, "sample": [[25, 90]]}},
                              parse_dropped={"missing field 'gpu_name'": 2}, timings={"gate": 0.1}))  # fmt: skip
    quality.record(pg, report("vastai", "quarantined", at=NOW + timedelta(hours=1), failures=[{"reason": "row_count_drop"}]))
    quality.record(pg, report("lambda", at=NOW))
    latest = quality.latest_reports(pg)
    assert [(r.provider, r.outcome, r.success) for r in latest] == [("lambda", "landed", True), ("vastai", "quarantined", False)]
    history = quality.report_history(pg, "vastai")
    assert [r.outcome for r in history] == ["quarantined", "landed"]
    assert history[1].gate_dropped == {"price_above_band": {"rows": 1, "sample": [[25, 90]]}}
    assert history[1].parse_dropped == {"missing field 'gpu_name'": 2} and history[1].timings == {"gate": 0.1}


def test_staged_pages_read_back_as_the_stdlib_decoded_them_nan_and_big_integers_too(tmp_path, monkeypatch):
    """Pages are read with orjson, which refuses NaN and reads integers past 64 bits as floats: those
    pages are read by the stdlib."""
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    big = [2**70 + 1, -(2**64) - 1, 2**63 - 1]
    pages = [{"offers": [{"id": 1, "dph_total": 0.5}]}, {"offers": [{"id": n} for n in big]},
             {"offers": [{"dph_total": float("nan")}]}, [], {}]  # fmt: skip
    header, staged = sync.staged_pages(sync.stage("vastai", NOW, pages))
    back = [page for _, page in staged]
    assert header == {"provider": "vastai", "observed_at": NOW.isoformat()}
    assert back[0] == pages[0] and back[3:] == pages[3:]
    assert [(type(o["id"]), o["id"]) for o in back[1]["offers"]] == [(int, n) for n in big]
    assert back[2]["offers"][0]["dph_total"] != back[2]["offers"][0]["dph_total"]  # NaN


# --- a provider's sync through the gate (replay server, PostgreSQL, Redis, file:// staging) ---------
@pytest.fixture
def vastai(pg, pg_url, replay, isolated_redis, tmp_path, monkeypatch):
    """sync.sync_provider("vastai") against the in-process replay server and the test database."""
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VASTAI", json.dumps(
        {"conn_type": "gpubroker_vastai", "host": replay.vendor_url("vastai"), "password": REPLAY_KEY}))  # fmt: skip
    good = recording("vastai", "bundles.json")

    def serve(priced=lambda row: row["dph_total"]) -> None:
        body = copy.deepcopy(good)
        for row in body["offers"]:
            row["dph_total"] = priced(row)
        replay.put("vastai", "bundles.json", body)

    return serve


def test_an_item_of_an_unknown_gpu_and_a_cpu_only_one_are_in_the_gate_report_with_their_reasons(lambda_cloud, pg):
    summary = sync.sync_provider("lambda", run_id="manual__2026-11-26T12:00:00+00:00")
    [report] = quality.latest_reports(pg)
    # the recording itself lists a Tesla M60, which the registry does not know either
    assert report.parse_dropped == {"unknown GPU 'Tesla M60'": 1, "unknown GPU 'ZX9 PCIe'": 1}
    assert summary["unknown_gpus"] == {"Tesla M60": 1, "ZX9 PCIe": 1}
    assert report.parse_skipped == {"CPU-only instance type": 1}
    assert report.items == summary["items"] and report.rows_landed == summary["landed"] > 0


def test_the_sync_operator_names_the_gate_s_validation_by_its_dag_run(lambda_cloud, pg):
    from gpubroker_provider.operators import SyncProviderOperator

    run_id = "scheduled__2026-11-26T12:05:00+00:00"
    SyncProviderOperator(task_id="sync_provider", provider="lambda").execute({"run_id": run_id})
    [report] = quality.latest_reports(pg)
    [kept] = (quality.RESULTS_DIR / quality.SUITE / run_id).glob("*/offer_batches-lambda.json")
    assert kept.parent.name == f"{report.run_at:%Y%m%dT%H%M%S.%fZ}"


def prices(pg) -> dict[str, Decimal]:
    return dict(pg.execute("SELECT offer_id, price_per_hour FROM offers WHERE provider = 'vastai'").fetchall())


def test_a_sync_drops_a_bad_row_lands_the_rest_and_reports_why(vastai, pg):
    vastai(lambda row: row["dph_total"] * 1000 if row["id"] == 18012345 else row["dph_total"])
    summary = sync.sync_provider("vastai")
    assert summary["gate_dropped"] == 1 and summary["landed"] == summary["offers"] - 1 and "18012345" not in prices(pg)
    assert set(summary["seconds"]) == {"fetch", "normalise", "gate", "land", "cpu"}
    [latest] = quality.latest_reports(pg)
    assert (latest.outcome, latest.rows_in, latest.rows_landed, latest.rows_dropped) == ("landed", summary["offers"], summary["landed"], 1)
    assert latest.gate_dropped["price_above_band"]["rows"] == 1 and latest.items == summary["items"]


@pytest.mark.parametrize("last_page", ["clean", "one-bad-row", "all-bad"])
def test_a_batch_landed_chunk_by_chunk_while_parsed_commits_only_what_the_whole_gate_passes(pg, tmp_path, monkeypatch,
                                                                                         last_page):  # fmt: skip
    """Three responses, each its own chunk (landed while the next is parsed): the gate still judges
    the whole batch, and only what it passes is committed, with one report."""
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    monkeypatch.setattr(sync, "CHUNK_BYTES", 1)
    rows = recording("vastai", "bundles.json")["offers"]
    pages = [{"offers": rows[i::3]} for i in range(3)]
    bad = {"clean": [], "one-bad-row": pages[2]["offers"][:1], "all-bad": pages[2]["offers"]}[last_page]
    for row in bad:
        row["dph_total"] *= 1000
    timings: dict[str, float] = {}
    parsed, gate, landed = sync.normalise_gate_land(pg, "vastai", sync.stage("vastai", NOW, pages),
                                                    quality.baseline(pg, "vastai"), timings)  # fmt: skip
    reports = quality.latest_reports(pg)
    if last_page == "all-bad":
        assert landed is None and not gate.success and prices(pg) == {} and reports == []
        return
    bad_ids = {str(row["id"]) for row in bad}
    assert len(parsed.rows) > len(pages[2]["offers"])
    assert set(timings) == {"normalise", "gate", "land", "cpu"} and timings["cpu"] > 0
    assert set(prices(pg)) == {r[1] for r in parsed.rows} - bad_ids and landed.offers == len(parsed.rows) - len(bad_ids)
    assert [(r.outcome, r.rows_in, r.rows_landed, r.rows_dropped) for r in reports] == [
        ("landed", len(parsed.rows), landed.offers, len(bad_ids))]  # fmt: skip
    assert pg.execute("SELECT count(*) FROM event_outbox").fetchone()[0] == landed.offers


def test_a_refused_batch_is_quarantined_and_an_operator_approval_lands_it(vastai, pg):
    vastai()
    sync.sync_provider("vastai")
    good = prices(pg)
    vastai(lambda row: row["dph_total"] * 1000)  # every row far above its band
    with pytest.raises(sync.BatchQuarantined, match=r"vastai: batch of \d+ offers quarantined \(id \d+\): price_above_band"):
        sync.sync_provider("vastai")
    assert prices(pg) == good  # nothing of it landed; the last good data stays served
    assert pg.execute("SELECT stale FROM provider_status WHERE provider = 'vastai'").fetchone() == (True,)
    [pending] = quality.quarantines(pg, "vastai")
    raw = sync.stored(pending.raw_ref)
    assert pending.raw_ref.startswith("file://") and "/quarantine/vastai/" in pending.raw_ref
    assert json.loads(raw.read_text().splitlines()[1])["offers"][0]["dph_total"] > 300  # the raw payload, as sent
    assert quality.latest_reports(pg)[0].quarantine_id == pending.id

    approved = sync.approve(pending.id)
    assert approved["landed"] == len(good) and prices(pg) == {k: p * 1000 for k, p in good.items()}
    assert quality.baseline(pg, "vastai") == quality.Baseline(len(good), "last_good")
    assert quality.latest_reports(pg)[0].outcome == "approved" and quality.quarantines(pg, "vastai") == []
    with pytest.raises(quality.AlreadyApproved, match="was approved"):
        sync.approve(pending.id)
    vastai()  # a retry of the sync task that approved it: the approval is not repeated, the sync runs
    assert sync.sync_provider("vastai", approve_quarantine=pending.id)["approved"] is None
    assert prices(pg) == good


def test_approving_a_batch_older_than_the_last_landing_is_refused(vastai, pg):
    vastai(lambda row: row["dph_total"] * 1000)
    with pytest.raises(sync.BatchQuarantined):
        sync.sync_provider("vastai")
    [old] = quality.quarantines(pg, "vastai")
    vastai()
    sync.sync_provider("vastai")  # a good batch lands after it
    with pytest.raises(quality.NotApprovable, match="older than its last landing"):
        sync.approve(old.id)
    with pytest.raises(quality.NotApprovable, match="no quarantined batch 999999"):
        sync.approve(999_999)


def test_each_validation_is_kept_under_its_provider_and_the_sync_s_run_id_and_the_docs_name_them(vastai, pg):
    vastai()
    run_id = "scheduled__2026-11-26T12:00:00+00:00"
    summary = sync.sync_provider("vastai", run_id=run_id)
    [report] = quality.latest_reports(pg)
    kept = quality.RESULTS_DIR / quality.SUITE / run_id / f"{report.run_at:%Y%m%dT%H%M%S.%fZ}" / "offer_batches-vastai.json"
    result = json.loads(kept.read_text())  # the gate report's run_at is its validation's run time
    assert result["meta"]["run_id"]["run_name"] == run_id and result["meta"]["active_batch_definition"]["data_asset_name"] == "vastai"
    counted = next(r for r in result["results"] if r["expectation_config"]["meta"]["reason"] == "row_count_drop")
    assert result["success"] and counted["result"]["observed_value"] == summary["offers"]

    index = quality.build_docs().read_text()
    assert run_id in index and "offer_batches-vastai" in index and "__none__" not in index
    page = (quality.DOCS_DIR / "validations" / kept.relative_to(quality.RESULTS_DIR).with_suffix(".html")).read_text()
    assert run_id in page and "vastai" in page  # the validation's own page: its run and its data asset


def test_the_gx_data_docs_are_built_and_served_at_dq_docs(client):
    """GX's Data Docs (the page at /dq/ itself, reading gate_reports, is tested in test_dq_page.py)."""
    from gpubroker_provider.airflow_plugin import GpuBrokerPlugin

    assert not gate(batch(3, price_per_hour=Decimal("999"))).success  # a stored result with a failure
    index = quality.build_docs()
    assert index.is_file()
    page = client.get("/dq/docs/")
    body = b"".join(page.streaming_content) if page.streaming else page.content
    assert page.status_code == 200 and b"offer_batch" in body
    assert client.get("/dq/docs/../../great_expectations.yml").status_code in (400, 404)  # no escaping the docs folder
    assert GpuBrokerPlugin.external_views[0]["href"].endswith("/dq/")


def test_gpubroker_quarantine_lists_and_approves_a_batch(vastai, pg, capsys):
    from gpubroker_provider.cli import main

    vastai(lambda row: row["dph_total"] * 1000)
    with pytest.raises(sync.BatchQuarantined):
        sync.sync_provider("vastai")
    [pending] = quality.quarantines(pg, "vastai")
    capsys.readouterr()
    assert main(["quarantine", "list", "--provider", "vastai"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["ID", "PROVIDER", "FETCHED"] and listed[1].split()[:2] == [str(pending.id), "vastai"]

    assert main(["quarantine", "approve", str(pending.id)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["landed"] == pending.rows == len(prices(pg)) and "baseline" in err
    assert main(["quarantine", "list"]) == 0 and len(capsys.readouterr().out.splitlines()) == 1  # none pending
    assert main(["quarantine", "approve", str(pending.id)]) == 2
    assert "was approved" in capsys.readouterr().err
    assert main(["quarantine", "list", "--provider", "nosuchvendor"]) == 2
