"""Data quality for people: `/dq/` (per provider: last gate result, what the gate costs its sync,
failed expectations, every item not landed and why, quarantine history, links to its validations in
the Data Docs) and the GX Data Docs at `/dq/docs/`, which name each validation's provider and sync run
and must render in headless Chromium with no request leaving the machine (their CDN files are
vendored: web/datadocs.py). Screenshots: .stack/test-artifacts/dq*.png."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import great_expectations
from gpubroker import quality, store
from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider import sync
from tests.browser import CONTRAST_FAILURES, Watched, chromium, shot
from tests.dq_fixtures import gx_project, lambda_cloud  # noqa: F401 (fixtures)
from tests.webapp_fixtures import NOW
from web import datadocs

GX_VIEWS = Path(great_expectations.__file__).parent / "render" / "view"
# What a page loads (not what it links to): script/img src, stylesheet href, CSS url().
LOADED = re.compile(r"""(?:<script[^>]*\bsrc|<link[^>]*\bhref|<img[^>]*\bsrc)=["'](https?://[^"']+)|url\(['"]?(https?://[^'")]+)""")
FAILURE = {"reason": "duplicate_offer_id", "level": "batch", "expectation": "expect_column_values_to_be_unique",
           "columns": ["offer_id"], "mostly": None, "unexpected": 3, "observed": None, "sample": ["h100-a", "h100-a"]}  # fmt: skip
DROPPED = {"price_above_band": {"rows": 2, "sample": [999.0, 1250.5]}}
pytestmark = pytest.mark.usefixtures("gx_project")  # validations and Data Docs in a copy of the project


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


async def test_dq_page_gives_every_item_a_sync_did_not_land_its_reason(async_client, lambda_cloud):
    """A real sync (Lambda's listing, with a CPU-only type and a GPU the registry does not know added):
    the unknown GPU is a counted drop, the CPU-only type a counted skip, and /dq/ shows both."""
    await asyncio.to_thread(sync.sync_provider, "lambda", run_id="manual__2026-11-26T12:00:00+00:00")
    lam = row_of((await async_client.get("/dq/")).content.decode(), "lambda")
    assert 'data-gate="landed"' in lam
    assert "<code>unknown GPU &#x27;ZX9 PCIe&#x27;</code> <span class=\"sub\">(parse)</span>: 1 item" in lam
    assert "skipped, no GPU offer: CPU-only instance type 1" in lam
    assert re.search(r'data-gate-seconds="[0-9.]+">[0-9.]+ s</span> <span class="sub">\d+% of its sync \([0-9.]+ s\)', lam)


RUNS = ("scheduled__2026-11-26T12:00:00+00:00", "manual__2026-11-26T13:05:00.123456+00:00")


def gated(provider: str, run_id: str, offer_ids: list[str]) -> quality.GateResult:
    """A gate run over a small batch, and its gate report (run_at: the validation's run time, as a sync records it)."""
    from offers.models import GateReport

    at = datetime.now(timezone.utc)
    rows = [store.row(Offer(provider=provider, offer_id=i, instance_type="1x H100", gpu_model="H100", gpu_vendor="NVIDIA",
                            gpu_count=1, gpu_memory_gb=80, price_per_hour=Decimal("2.5"), region="Norway", observed_at=at))
            for i in offer_ids]  # fmt: skip
    result = quality.validate(rows, provider, quality.Baseline(None, "none"), run_id)
    GateReport.objects.create(provider=provider, run_at=result.run_at, observed_at=at, outcome="landed" if result.success else "quarantined",
                              success=result.success, items=len(rows), rows_in=len(rows), rows_landed=len(rows) if result.success else 0,
                              rows_dropped=0, baseline_source="none", failures=result.failures,
                              timings={"fetch": 0.2, "normalise": 0.05, "gate": 0.3, "land": 0.05, "cpu": 0.4})  # fmt: skip
    return result


@pytest.fixture
def built_docs(gx_project, transactional_db):
    """Two gate runs of vastai in the tests' GX project (a passed one, then one refused: a repeated
    offer_id), each with its gate report, and the Data Docs built from them."""
    passed = gated("vastai", RUNS[0], ["a", "b", "c"])
    refused = gated("vastai", RUNS[1], ["a", "a", "b"])
    assert passed.success and not refused.success
    quality.build_docs()
    return passed, refused


def test_the_data_docs_render_fully_in_chromium_with_no_request_leaving_the_machine(live_webapp, built_docs, quarantined):
    with chromium() as browser:
        page, seen = Watched.page(browser)
        page.goto(f"{live_webapp}/dq/")
        assert page.evaluate(CONTRAST_FAILURES) == []
        vastai = page.locator("#dq-vastai")
        assert vastai.locator(".gate-cost").text_content().startswith("0.30 s 50% of its sync (0.60 s)")
        listed = page.locator("#validations-vastai + ul.validations li")  # the row's "2 validations" lead here
        assert vastai.get_by_role("link", name="2 validations").get_attribute("href") == "#validations-vastai"
        assert [li.locator("code").text_content() for li in listed.all()] == [RUNS[1], RUNS[0]]  # newest first
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", listed.first.locator("a").text_content())
        shot(page, "dq")

        vastai.get_by_role("link", name="this run's validation").click()  # the latest gate run's: the refusal
        page.wait_for_selector("text=Overview")
        assert RUNS[1] in page.content() and "vastai" in page.locator("body").text_content()
        shot(page, "dq-docs-validation")

        page.goto(f"{live_webapp}/dq/")
        page.get_by_role("link", name="Great Expectations Data Docs").click()
        page.wait_for_url("**/dq/docs/")
        # bootstrap-table (jQuery, Bootstrap) draws the results table and its pager: the scripts ran
        page.wait_for_selector("text=/Showing 1 to \\d+ of \\d+ rows/")
        runs = page.locator("#Validation-Results table tbody tr", has_text="offer_batches-vastai")
        assert runs.count() == 2  # the passed and the refused run, each naming its sync run
        assert sorted(run in runs.nth(i).text_content() for i in range(2) for run in RUNS) == [False, False, True, True]
        assert runs.locator("i.fas").count() == 2  # their status icons (Font Awesome)
        assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        shot(page, "dq-docs-index")
        assert seen.external() == [], seen.external()
        assert seen.failed == [] and seen.errors == []
