"""Data quality for people: `/dq/` (per provider: last gate result, failed expectations, quarantine
history, links into the Data Docs) and the GX Data Docs at `/dq/docs/`, which must render in headless
Chromium with no request leaving the machine (their CDN files are vendored: web/datadocs.py).
Screenshots: .stack/test-artifacts/dq*.png."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest

import great_expectations
from gpubroker import quality
from gpubroker_provider.vendors import VENDORS
from tests.browser import CONTRAST_FAILURES, Watched, chromium, shot
from tests.webapp_fixtures import NOW
from web import datadocs

GX_VIEWS = Path(great_expectations.__file__).parent / "render" / "view"
# What a page loads (not what it links to): script/img src, stylesheet href, CSS url().
LOADED = re.compile(r"""(?:<script[^>]*\bsrc|<link[^>]*\bhref|<img[^>]*\bsrc)=["'](https?://[^"']+)|url\(['"]?(https?://[^'")]+)""")
FAILURE = {"reason": "duplicate_offer_id", "level": "batch", "expectation": "expect_column_values_to_be_unique",
           "columns": ["offer_id"], "mostly": None, "unexpected": 3, "observed": None, "sample": ["h100-a", "h100-a"]}  # fmt: skip
DROPPED = {"price_above_band": {"rows": 2, "sample": [999.0, 1250.5]}}


def gx_sources() -> dict[Path, str]:
    files = [*GX_VIEWS.glob("templates/*.j2"), *GX_VIEWS.glob("static/styles/*.css")]
    return {f: f.read_text() for f in files}


def test_every_file_the_data_docs_load_from_the_internet_has_a_vendored_copy():
    loaded = {m.group(1) or m.group(2) for text in gx_sources().values() for m in LOADED.finditer(text)}
    assert loaded, "no CDN URL found in GX's templates: the pattern no longer matches them"
    # the S3 logo is built in the template from a folder + a name; everything else is a literal URL
    rewritten = {u for u in loaded if datadocs.external_urls(f'"{u}"')}
    assert loaded - rewritten == set(), "GX loads URLs that web/datadocs.py does not serve locally"
    assert [p for p in datadocs.vendored_files() if not p.is_file()] == []  # run `npm run vendor`


def test_the_vendored_copies_match_the_integrity_hashes_gx_pins():
    pinned = [(m.group(1), m.group(2)) for text in gx_sources().values()
              for m in re.finditer(r'src="([^"]+)" integrity="(sha384-[^"]+)"', text)]  # fmt: skip
    assert len(pinned) >= 2
    for url, integrity in pinned:
        copy = datadocs.VENDOR_DIR / datadocs.rewrite(f'"{url}"', "", "").strip('"')
        assert "sha384-" + base64.b64encode(hashlib.sha384(copy.read_bytes()).digest()).decode() == integrity, url


def test_rewriting_leaves_no_cdn_url_and_drops_the_tracking_query():
    page = ('<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&amp;dataContextId=x">'
            '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script><a href="https://greatexpectations.io">GX</a>')  # fmt: skip
    out = datadocs.rewrite(page, "/v/", "/s/")
    assert out == ('<img src="/s/static/images/logo-long.png"><script src="/v/vega-lite/build/vega-lite.min.js"></script>'
                   '<a href="https://greatexpectations.io">GX</a>')  # fmt: skip
    assert datadocs.external_urls(out) == set()


@pytest.fixture
def quarantined(transactional_db):
    """vastai: landed at NOW (2 rows dropped, 1 item unparsable), then two batches quarantined (the
    older approved, the latest refusal still stale); lambda: landed; the others never gated."""
    from offers.models import GateReport, ProviderStatus, Quarantine

    ProviderStatus.objects.create(provider="vastai", last_good_at=NOW, last_good_rows=10, stale=True,
                                  stale_reason="duplicate_offer_id: 3 of 12 rows")  # fmt: skip
    ProviderStatus.objects.create(provider="lambda", last_good_at=NOW, last_good_rows=12, stale=False)

    def gate(provider, hours, outcome, landed, **fields):
        GateReport.objects.create(provider=provider, run_at=NOW + timedelta(hours=hours), observed_at=NOW + timedelta(hours=hours),
                                  outcome=outcome, success=outcome != "quarantined", items=13, rows_in=12, rows_landed=landed,
                                  baseline_rows=10, baseline_source="last_good", **fields)  # fmt: skip

    gate("vastai", 0, "landed", 10, rows_dropped=2, gate_dropped=DROPPED, parse_dropped={"no_price": 1})
    gate("lambda", 0, "landed", 12, rows_dropped=0, parse_skipped={"cpu_plan": 3})
    for hours, rows, reason, approved in ((1, 4, "older refusal", NOW + timedelta(hours=1, minutes=30)),
                                          (2, 12, "duplicate_offer_id: 3 of 12 rows", None)):  # fmt: skip
        q = Quarantine.objects.create(provider="vastai", reason=reason, failures=[FAILURE], sample_rows=[], rows=rows,
                                      raw_ref="/q/raw.json", offers_ref="/q/offers.jsonl", approved_at=approved)  # fmt: skip
        Quarantine.objects.filter(pk=q.pk).update(created_at=NOW + timedelta(hours=hours))
        gate("vastai", hours, "quarantined", 0, rows_dropped=0, failures=[FAILURE], quarantine_id=q.pk)


def row_of(html: str, slug: str) -> str:
    start = html.index(f'id="dq-{slug}"')
    return html[start:html.index("</tr>", start)]


# The async views are asked through Django's AsyncClient, on the test's own event loop: the sync client
# would run them through async_to_sync, which can post to a loop an earlier test left behind and wait forever.
async def test_dq_page_shows_each_provider_s_gate_failures_dropped_rows_and_quarantine_history(async_client, quarantined):
    page = await async_client.get("/dq/")
    assert page.status_code == 200
    html = page.content.decode()
    vastai = row_of(html, "vastai")
    assert 'data-gate="quarantined"' in vastai and "2026-11-26 14:00 UTC" in vastai  # the latest gate: the second refusal
    assert "0 of 12 rows landed; baseline 10" in vastai
    assert "<code>duplicate_offer_id</code> on offer_id: 3 rows" in vastai and "e.g. h100-a, h100-a" in vastai
    assert "none" in vastai  # the refused batch dropped no row: it was refused whole
    assert '<a href="#history-vastai">2</a>' in vastai and "10 rows" in vastai and "stale" in vastai

    lam = row_of(html, "lambda")
    assert 'data-gate="landed"' in lam and "2026-11-26 12:00 UTC" in lam and "12 of 12 rows landed" in lam
    assert "skipped, no GPU offer: cpu_plan 3" in lam

    history = html[html.index('id="history-vastai"'):]
    assert history.index("14:00:00") < history.index("13:00:00")  # newest first
    assert "2026-11-26 13:30 UTC" in history  # the older one was approved
    assert html.count('<tr id="dq-') == len(VENDORS)  # every provider, never gated ones too
    assert html.count("not gated yet") == len(VENDORS) - 2


async def test_dq_page_shows_the_rows_a_landed_batch_dropped_and_why(async_client, quarantined):
    from offers.models import GateReport

    await GateReport.objects.filter(provider="vastai", outcome="quarantined").adelete()  # the landed run is the latest again
    vastai = row_of((await async_client.get("/dq/")).content.decode(), "vastai")
    assert 'data-gate="landed"' in vastai and "10 of 12 rows landed" in vastai
    dropped = vastai[vastai.index("<code>price_above_band</code>"):]
    assert dropped.startswith("<code>price_above_band</code> <span class=\"sub\">(gate)</span>: 2 rows")
    assert "e.g. 999.0, 1250.5" in dropped and "<code>no_price</code> <span class=\"sub\">(parse)</span>: 1 item" in dropped


@pytest.fixture
def built_docs(tmp_path, monkeypatch):
    """Data Docs of a GX project of their own (so the gate's suite and stored results are not
    touched), holding a passed and a failed run of a small suite, served as the report."""
    import great_expectations as gx
    import pandas as pd

    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    batch = context.data_sources.add_pandas("offers").add_dataframe_asset("batch").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=quality.SUITE, expectations=[
        gx.expectations.ExpectColumnValuesToBeBetween(column="price_per_hour", min_value=0, strict_min=True),
        gx.expectations.ExpectColumnValuesToBeUnique(column="offer_id"),
    ]))  # fmt: skip
    gate = context.validation_definitions.add(gx.ValidationDefinition(name="gate", data=batch, suite=suite))
    assert gate.run(batch_parameters={"dataframe": pd.DataFrame({"offer_id": ["a", "b"], "price_per_hour": [2.5, 1.9]})}).success
    assert not gate.run(batch_parameters={"dataframe": pd.DataFrame({"offer_id": ["a", "a"], "price_per_hour": [2.5, -1]})}).success
    context.build_data_docs()
    docs = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (docs / "index.html").is_file()
    monkeypatch.setattr(quality, "DOCS_DIR", docs)
    return docs


def test_the_data_docs_render_fully_in_chromium_with_no_request_leaving_the_machine(live_webapp, built_docs, quarantined):
    with chromium() as browser:
        page, seen = Watched.page(browser)
        page.goto(f"{live_webapp}/dq/")
        assert page.evaluate(CONTRAST_FAILURES) == []
        runs_listed = page.locator("#validations-title + ul a")  # links into the docs: one per stored run
        assert runs_listed.count() == 2
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", runs_listed.first.text_content())
        shot(page, "dq")

        page.get_by_role("link", name="Great Expectations Data Docs").click()
        page.wait_for_url("**/dq/docs/")
        # bootstrap-table (jQuery, Bootstrap) draws the results table and its pager: the scripts ran
        page.wait_for_selector("text=/Showing 1 to \\d+ of \\d+ rows/")
        runs = page.locator("#Validation-Results table tbody tr", has_text="offer_batch")
        assert runs.count() == 2  # the passed and the failed run
        assert runs.locator("i.fas").count() == 2  # their status icons (Font Awesome)
        assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        shot(page, "dq-docs-index")

        runs.first.locator("td").first.click()
        page.wait_for_selector("text=Overview")
        shot(page, "dq-docs-validation")
        assert seen.external() == [], seen.external()
        assert seen.failed == [] and seen.errors == []
