"""The daily report's page (`/analytics/daily`) in headless Chromium (tests/browser.py), served by the
whole ASGI application on pytest-django's database, from report rows inserted as the
gpubroker_analytics DAG writes them: exact figures rendered on the server, the link from `/`, choosing
a day, a day without a report and a malformed date, strings holding markup shown as text, labels,
headings, focus and AA contrast, nothing loaded from elsewhere. Screenshots: .stack/test-artifacts/.
The report's SQL and API: tests/test_daily_analytics.py."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import httpx
import pytest

from tests.browser import CONTRAST_FAILURES, UNLABELLED, Watched, chromium, shot
from tests.webapp_fixtures import locked, offer_row

DAY, EARLIER = date(2026, 11, 25), date(2026, 11, 22)
MADE = datetime(2026, 11, 26, 0, 15, 7, tzinfo=timezone.utc)
MARKUP = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def gpu(day: date, name: str, offers: int, cheapest: str | None, median: str | None, changes=(None,) * 4, zscore=0, drop=0,
        provider="vastai", offer_id="o1"):  # fmt: skip
    from analytics.models import DailyGpuPrice

    c1, c7, m1, m7 = (None if c is None else Decimal(c) for c in changes)
    return DailyGpuPrice(day=day, gpu=name, offers=offers, cheapest_price_per_gpu=cheapest and Decimal(cheapest),
                         cheapest_provider=cheapest and provider, cheapest_offer_id=cheapest and offer_id,
                         median_price_per_gpu=median and Decimal(median), cheapest_change_1d=c1, cheapest_change_7d=c7,
                         median_change_1d=m1, median_change_7d=m7, anomalies_zscore=zscore, anomalies_drop=drop,
                         generated_at=MADE)  # fmt: skip


def provider(day: date, slug: str, offers: int, observed: tuple | None, checks: tuple, syncs: tuple, anomalies=0):
    """observed: (observations, available, unavailable; the rest not stated) or None (no longer kept); checks: (healthy,
    degraded, down); syncs: (landed, quarantined). Percentages as gpubroker.daily computes them."""
    from analytics.models import DailyProviderStats

    def percent(part: int, whole: int) -> Decimal | None:
        return round(Decimal(100 * part) / whole, 2) if whole else None

    n, available, unavailable = observed or (None, None, None)
    return DailyProviderStats(day=day, provider=slug, offers=offers, observations=n, observed_available=available,
                              observed_unavailable=unavailable,
                              availability_percent=percent(available, available + unavailable) if n else None,
                              health_checks=sum(checks), healthy_checks=checks[0], degraded_checks=checks[1],
                              down_checks=checks[2], healthy_percent=percent(checks[0], sum(checks)), syncs=sum(syncs),
                              syncs_landed=syncs[0], syncs_quarantined=syncs[1], landed_percent=percent(syncs[0], sum(syncs)),
                              anomalies=anomalies, generated_at=MADE)  # fmt: skip


@pytest.fixture
def site(live_webapp):
    """Two reports: of DAY (four GPU models, one of them with anomalies only, and an offer id holding
    markup; three providers) and of EARLIER (one GPU model, one provider); and an offer for `/`."""
    from analytics.models import DailyGpuPrice, DailyProviderStats

    DailyGpuPrice.objects.bulk_create([
        gpu(DAY, "H100", 4, "1.8000", "2.4500", ("-18.18", "-10.00", "2.08", "-2.00"), zscore=2, drop=1, offer_id="h1"),
        gpu(DAY, "A100", 1, "1.5000", "1.5000", ("0.00",) * 4),
        gpu(DAY, "RTX4090", 3, "0.3500", "0.4000", ("-5.41", None, "-12.50", None), provider="runpod", offer_id=MARKUP),
        gpu(DAY, "L4", 0, None, None, zscore=1),
        gpu(EARLIER, "H100", 2, "2.0000", "2.5000"),
    ])  # fmt: skip
    DailyProviderStats.objects.bulk_create([
        provider(DAY, "vastai", 4, (8, 5, 2), (3, 1, 1), (2, 1), anomalies=3),
        provider(DAY, "lambda", 1, (1, 1, 0), (2, 0, 0), (1, 0), anomalies=1),
        provider(DAY, "runpod", 3, None, (0, 0, 0), (0, 0)),
        provider(DAY, "aws", 13, (117, 0, 0), (85, 0, 0), (9, 0)),
        provider(EARLIER, "vastai", 2, (0, 0, 0), (1, 0, 0), (1, 0)),
    ])  # fmt: skip
    offer_row("h1").save()
    return live_webapp


def cells(page, table: str, key: str) -> dict[str, dict[str, str]]:
    """Each row's cells by data-field, keyed by the row's data-<key>, as the page shows them."""
    return dict(page.locator(f"#{table} tbody tr").evaluate_all(
        f"""rs => rs.map(r => [r.dataset.{key}, Object.fromEntries([...r.querySelectorAll('[data-field]')]
                  .map(c => [c.dataset.field, c.textContent.replace(/\\s+/g, ' ').trim()]))])"""))  # fmt: skip


def test_the_report_is_rendered_on_the_server_with_exact_figures(site, browser):
    page, seen = Watched.page(browser, java_script_enabled=False)  # what the server sent, nothing run
    assert page.goto(f"{site}/analytics/daily").status == 200
    assert page.locator("h1").text_content() == "Daily report 2026-11-25"  # the latest report
    gpus = cells(page, "daily-gpus", "gpu")
    assert list(gpus) == ["A100", "H100", "L4", "RTX4090"]
    assert gpus["H100"] == {"offers": "4", "cheapest": "$1.80", "cheapest_change_1d": "-18.18%", "cheapest_change_7d": "-10%",
                            "median": "$2.45", "median_change_1d": "+2.08%", "median_change_7d": "-2%", "anomalies": "3"}
    assert gpus["L4"] == {"offers": "0", "cheapest": "–", "cheapest_change_1d": "–", "cheapest_change_7d": "–",
                          "median": "–", "median_change_1d": "–", "median_change_7d": "–", "anomalies": "1"}
    assert gpus["A100"]["median_change_1d"] == "0%" and gpus["RTX4090"]["median_change_7d"] == "–"
    assert page.locator('#daily-gpus tr[data-gpu="H100"] td').nth(2).text_content() == "vastai h1"
    movers = page.locator("#daily-movers li")
    assert [m.text_content() for m in movers.all()] == [
        "RTX4090: median $0.40, -12.50% in a day (– in 7 days)", "H100: median $2.45, +2.08% in a day (-2% in 7 days)"]
    providers = cells(page, "daily-providers", "provider")
    assert providers == {
        "aws": {"offers": "13", "availability": "– not stated (117 observations)", "health": "100% 85 of 85; 0 degraded, 0 down",
                "syncs": "100% 9 of 9; 0 quarantined", "anomalies": "0"},
        "lambda": {"offers": "1", "availability": "100% 1 of 1 observations stating it; 1 in all",
                   "health": "100% 2 of 2; 0 degraded, 0 down", "syncs": "100% 1 of 1; 0 quarantined", "anomalies": "1"},
        "runpod": {"offers": "3", "availability": "– observations no longer kept", "health": "– no check", "syncs": "– no sync",
                   "anomalies": "0"},
        "vastai": {"offers": "4", "availability": "71.43% 5 of 7 observations stating it; 8 in all",
                   "health": "60% 3 of 5; 1 degraded, 1 down", "syncs": "66.67% 2 of 3; 1 quarantined", "anomalies": "3"},
    }  # fmt: skip
    assert " ".join(page.locator("#daily-anomalies").text_content().split()).startswith(
        "4 anomalies flagged: 3 zscore (a price per GPU more than 3 standard deviations")
    assert page.locator("time").nth(1).text_content() == "2026-11-26 00:15 UTC"  # when it was made
    assert seen.external() == [] and seen.errors == []


def test_strings_holding_markup_are_shown_as_text(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/analytics/daily")
    assert page.locator('#daily-gpus tr[data-gpu="RTX4090"] td').nth(2).text_content() == f"runpod {MARKUP}"
    assert page.locator("main img").count() == 0 and page.title().startswith("Daily report")
    bad = page.goto(f"{site}/analytics/daily?date=%3Cscript%3Edocument.title%3D1%3C/script%3E")
    assert bad.status == 400 and page.locator("main script").count() == 0 and seen.errors == []
    assert page.locator("#problem").text_content() == "date: give a day as YYYY-MM-DD, e.g. 2026-12-01 (got '<script>document.title=1</script>')"


def test_the_offers_page_links_to_it_and_it_marks_itself_current(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    page.get_by_role("navigation", name="Elsewhere").get_by_role("link", name="Daily report").click()
    page.wait_for_url("**/analytics/daily")
    assert page.locator("h1").text_content() == "Daily report 2026-11-25"
    assert page.get_by_role("link", name="Daily report").get_attribute("aria-current") == "page"
    assert page.get_by_role("link", name="Offers").get_attribute("aria-current") is None
    assert seen.external() == [] and seen.errors == []


def test_a_day_is_chosen_with_the_form_and_reports_link_to_their_neighbours(site, browser):
    page, _ = Watched.page(browser)
    page.goto(f"{site}/analytics/daily")
    assert page.get_by_label("Day (UTC)").input_value() == "2026-11-25"
    assert page.get_by_role("link", name="Next report").count() == 0
    page.get_by_label("Day (UTC)").fill("2026-11-22")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_url("**/analytics/daily?date=2026-11-22")
    assert page.locator("h1").text_content() == "Daily report 2026-11-22"
    assert list(cells(page, "daily-gpus", "gpu")) == ["H100"]
    assert page.locator("#daily-movers").count() == 0 and "No GPU model's median moved." in page.content()
    assert cells(page, "daily-providers", "provider")["vastai"]["availability"] == "– not observed"
    shot(page, "analytics-earlier")
    page.get_by_role("link", name="Next report: 2026-11-25").click()
    page.wait_for_url("**/analytics/daily?date=2026-11-25")
    assert page.get_by_role("link", name="Previous report: 2026-11-22").count() == 1


def test_a_day_without_a_report_is_a_404_and_a_malformed_date_a_400_each_with_the_form(site, browser):
    missing = httpx.get(f"{site}/analytics/daily", params={"date": "2026-11-24"})
    assert missing.status_code == 404 and "Daily report</h1>" in missing.text
    assert "no daily report for 2026-11-24: the gpubroker_analytics DAG writes one per day" in missing.text
    page, _ = Watched.page(browser)
    assert page.goto(f"{site}/analytics/daily?date=2026-02-30").status == 400
    assert page.locator("#problem").text_content() == "date: 2026-02-30 is not a day of the calendar"
    assert page.get_by_label("Day (UTC)").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("alert").count() == 1


def test_labels_headings_focus_and_contrast(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/analytics/daily")
    assert page.evaluate(UNLABELLED) == [] and page.evaluate(CONTRAST_FAILURES) == []
    headings = page.locator("h1, h2").evaluate_all("hs => hs.map(h => h.tagName + ' ' + h.textContent.trim())")
    assert headings == ["H1 Daily report 2026-11-25", "H2 Prices per GPU model", "H2 Biggest movers",
                        "H2 Providers: availability and reliability", "H2 Anomalies"]  # fmt: skip
    page.get_by_label("Day (UTC)").focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + "
                            "getComputedStyle(document.activeElement).outlineWidth")  # fmt: skip
    assert outline == "solid 3px"
    assert [u for u in seen.requests if u.endswith(".js")] == []  # a page of HTML and CSS only
    assert seen.external() == [] and seen.errors == [] and seen.failed == []
    shot(page, "analytics")


def test_with_the_report_tables_locked_the_page_answers_503_with_retry_after(site, pg_url):
    with locked(pg_url, "daily_provider_stats"):
        answer = httpx.get(f"{site}/analytics/daily", timeout=30)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert "Daily report</h1>" in answer.text and "retry shortly" in answer.text
