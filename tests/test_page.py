"""The page at `/` in headless Chromium (tests/browser.py), served by the whole ASGI application on
pytest-django's database: first render on the server, filters through the API, the history and
24 h charts, the API key, what a keyboard or screen-reader user needs, and feed strings holding
quotes and markup shown as text. Screenshots go to .stack/test-artifacts/. The live update from a
synced price change: tests/test_page_e2e.py."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.browser import CONTRAST_FAILURES, UNLABELLED, Watched, chromium, shot
from tests.webapp_fixtures import NOW, make_key, offer_row

JS_DIR = Path(__file__).resolve().parent.parent / "webapp" / "web" / "static" / "web" / "js"
JS_BUDGET = 200 * 1024
HISTORY = [("2.40", 0), ("2.10", 2), ("1.95", 5)]  # (price, hours after the first) of the charted offer


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def site(live_webapp):
    """The application with six offers (three H100, two A100, one L4; one reserved for 12 months with
    NVLink, one spot with InfiniBand), the H100 at vastai with three prices in its history, and an
    hour of 1-minute statistics for H100."""
    from analytics.models import GpuPriceAggregate
    from offers.models import Offer, PriceHistory

    Offer.objects.bulk_create([
        offer_row("h100-a", price="1.95", observed_at=NOW + timedelta(hours=5)),
        offer_row("h100-b", provider="lambda", price="2.49", region="us-east-1", country="US"),
        offer_row("h100-c", provider="runpod", price="8.00", gpu_count=4, vcpus=64, ram_gb=512, pricing_type="reserved",
                  commitment_months=12, interconnect="nvlink"),
        offer_row("a100-a", gpu="A100", price="1.10"),
        offer_row("a100-b", gpu="A100", provider="lambda", price="1.29", pricing_type="spot", interconnect="infiniband"),
        offer_row("l4-a", gpu="L4", gpu_memory_gb=24, price="0.44"),
    ])  # fmt: skip
    PriceHistory.objects.bulk_create([
        PriceHistory(provider="vastai", offer_id="h100-a", price_per_hour=Decimal(p), observed_at=NOW + timedelta(hours=h))
        for p, h in HISTORY
    ])  # fmt: skip
    start = NOW.replace(minute=0)
    GpuPriceAggregate.objects.bulk_create([
        GpuPriceAggregate(gpu="H100", dimension="provider", value="vastai", window_start=start + timedelta(minutes=m),
                          window_end=start + timedelta(minutes=m + 1), min_price_per_gpu=Decimal("1.9") + Decimal(m) / 100,
                          avg_price_per_gpu=Decimal("2.2"), max_price_per_gpu=Decimal("2.5"), offers=3, available=3)
        for m in range(0, 60, 5)
    ])  # fmt: skip
    return live_webapp


def rows(page) -> list[str]:
    return page.locator("#offers tbody tr").evaluate_all("rs => rs.map(r => r.dataset.offerId)")


def test_the_first_render_is_html_with_the_offers_before_any_script_runs(site):
    html = httpx.get(f"{site}/?sort=price").text
    assert re.findall(r'data-offer-id="([^"]+)"', html) == ["l4-a", "a100-a", "a100-b", "h100-a", "h100-b", "h100-c"]
    assert "6 offers." in html and "$0.44" in html and "$2.00" in html  # h100-c: $8.00 for 4 GPUs is $2.00 per GPU
    narrowed = httpx.get(f"{site}/", params={"gpu": "a100", "max_price_per_gpu": "1.2"}).text
    assert re.findall(r'data-offer-id="([^"]+)"', narrowed) == ["a100-a"]
    wrong = httpx.get(f"{site}/", params={"max_price": "cheap", "gpu": "H100"})
    assert wrong.status_code == 400 and 'aria-invalid="true"' in wrong.text and "valid number" in wrong.text


def test_the_page_loads_with_rows_and_a_filter_narrows_them_through_the_api(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    assert rows(page) == ["l4-a", "a100-a", "a100-b", "h100-a", "h100-b", "h100-c"]
    page.wait_for_selector("body[data-feed=live]")  # the live feed is connected

    page.get_by_label("GPU model").fill("H100")
    page.get_by_label("Sort by").select_option("-price")
    page.get_by_role("button", name="Show offers").click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('3 offers')")
    assert rows(page) == ["h100-c", "h100-b", "h100-a"]
    assert "gpu=H100" in page.url and "sort=-price" in page.url
    assert page.locator('tr[data-offer-id="h100-c"] [data-field="price_per_gpu"]').text_content() == "$2.00"
    assert page.locator('tr[data-offer-id="h100-a"] [data-health]').count() == 1  # the provider's badges
    api_calls = [u for u in seen.requests if "/api/v1/" in u]
    assert len(api_calls) == 1 and "gpu=H100" in api_calls[0]  # one request per action, nothing polled
    assert seen.external() == [] and seen.errors == [] and seen.failed == []
    shot(page, "page-filtered")

    page.get_by_label("Providers", exact=True).select_option(["lambda"])
    page.get_by_role("button", name="Show offers").click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('1 offer.')")
    assert rows(page) == ["h100-b"]


def test_the_history_chart_draws_every_price_the_offer_had(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    page.get_by_role("button", name="History of vastai h100-a").click()
    page.wait_for_selector("#history-chart path.line")
    steps = page.locator("#history-chart path.line").get_attribute("d")
    assert steps.count("M") == 1 and steps.count("V") == len(HISTORY)  # a step per price, then on to now
    assert page.locator("#history-chart circle").count() == len(HISTORY) + 1
    caption = page.locator("#history-caption").text_content()
    assert "3 prices" in caption and "lowest $1.95" in caption and "highest $2.40" in caption
    assert page.evaluate("document.activeElement.id") == "history-title"  # focus follows to the chart
    assert [u for u in seen.requests if "/history" in u] == [f"{site}/api/v1/offers/vastai/h100-a/history"]
    shot(page, "page-history-chart")


def test_the_24_hour_chart_draws_a_gpu_s_band_and_average(site, browser, monkeypatch):
    from analytics import api as analytics_api

    # the fixture's hour of statistics lies at NOW (a fixed date): widen the 24 h window to reach it
    monkeypatch.setitem(analytics_api.WINDOWS, "24h", timedelta(days=3650))
    page, _ = Watched.page(browser)
    page.goto(f"{site}/")
    page.get_by_role("button", name="24 h chart of H100").click()
    page.wait_for_selector("#stats-chart polygon.band")
    assert page.locator("#stats-chart polygon.band").get_attribute("points").count(",") == 2 * 12  # 12 windows
    assert page.locator("#stats-chart path.line").get_attribute("d").count("L") == 11
    assert "12 one-minute windows" in page.locator("#stats-caption").text_content()
    shot(page, "page-gpu-24h-chart")


def test_a_key_saved_in_the_browser_is_sent_on_fetch_and_the_websocket(site, browser):
    key = make_key("pro", "browser")
    page, _ = Watched.page(browser)
    sent: list[str | None] = []
    page.on("request", lambda r: "/api/v1/" in r.url and sent.append(r.headers.get("authorization")))
    page.goto(f"{site}/")
    page.get_by_role("button", name="Show offers").click()  # anonymous: the free plan
    page.wait_for_function("document.querySelector('#quota').textContent.includes('of 10 ')")

    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Save key").click()
    assert page.evaluate("localStorage.getItem('gpubroker.apiKey')") == key
    page.wait_for_selector("body[data-feed=live]")  # reconnected with the key as its subprotocol
    page.get_by_role("button", name="Show offers").click()
    page.wait_for_function("!document.querySelector('#quota').textContent.includes('of 10 ')")
    assert sent == [None, f"Bearer {key}"]
    assert "is stored in this browser" in page.locator("#key-state").text_content()

    page.reload()  # the key outlives the page
    page.get_by_role("button", name="Forget key").click()
    assert page.evaluate("localStorage.getItem('gpubroker.apiKey')") is None


def test_every_control_is_labelled_focus_is_visible_and_text_meets_aa_contrast(site, browser):
    page, _ = Watched.page(browser)
    page.goto(f"{site}/")
    page.keyboard.press("Tab")  # the first stop: the skip link, shown and outlined when focused
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(8):  # then the navigation and the filters, each with a visible 3 px outline
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + "
                                "getComputedStyle(document.activeElement).outlineWidth")  # fmt: skip
        assert outline == "solid 3px", page.evaluate("document.activeElement.outerHTML")
        page.keyboard.press("Tab")
    shot(page, "page-keyboard")

    page.get_by_text("More filters").click()
    page.get_by_role("button", name="History of vastai h100-a").click()
    page.wait_for_selector("#history-chart path.line")
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(CONTRAST_FAILURES) == []


def test_the_server_and_the_page_write_prices_and_sizes_alike(site, browser):
    """web_format.py (first render) and format.js (live updates) give the same text for the same
    number, ties included: prices per GPU-hour (cents over 1..16 GPUs), eighths, and twentieths."""
    from web.templatetags.web_format import decimal, usd

    prices = [cents / 100 / gpus for cents in range(1, 3000, 7) for gpus in (1, 2, 3, 4, 6, 8, 16)] + [k / 8 for k in range(400)]
    sizes = [k / 20 for k in range(1, 4000)] + [k / 1024 for k in range(1, 4000, 3)]
    page, _ = Watched.page(browser)
    page.goto(f"{site}/")
    written = page.evaluate("""async ([prices, sizes]) => { const f = await import("/static/web/js/format.js");
                                 return [prices.map(f.usd), sizes.map(f.decimal)]; }""", [prices, sizes])  # fmt: skip
    assert [(p, usd(p)) for p in prices] == list(zip(prices, written[0]))
    assert [(s, decimal(s)) for s in sizes] == list(zip(sizes, written[1]))


def test_the_page_loads_under_200_kb_of_javascript_and_nothing_from_elsewhere(site, browser):
    page, seen = Watched.page(browser)
    scripts: list[int] = []
    page.on("response", lambda r: r.request.resource_type == "script" and scripts.append(len(r.body())))
    page.goto(f"{site}/")
    page.wait_for_selector("body[data-feed=live]")
    assert len(scripts) == len(list(JS_DIR.glob("*.js")))  # every module, and nothing else
    assert 0 < sum(scripts) < JS_BUDGET
    assert seen.external() == [] and seen.errors == []
    shot(page, "page")


def cells(page, field: str) -> dict[str, str]:
    return dict(page.locator("#offers tbody tr").evaluate_all(
        f"rs => rs.map(r => [r.dataset.offerId, r.querySelector('[data-field={field}]').textContent])"))  # fmt: skip


def test_rows_show_the_pricing_and_the_interconnect_on_the_server_and_live(site, browser):
    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    expected = {"pricing": {"h100-c": "Reserved 12 mo", "a100-b": "Spot", "l4-a": "On demand"},
                "interconnect": {"h100-c": "NVLink", "a100-b": "InfiniBand", "l4-a": ""}}  # nothing when not stated
    for field, wanted in expected.items():
        assert {k: v for k, v in cells(page, field).items() if k in wanted} == wanted, field
    page.get_by_label("Sort by").select_option("-price")
    page.get_by_role("button", name="Show offers").click()  # rows built by the script from the API's answer
    page.wait_for_function("document.querySelector('#offers tbody tr').dataset.offerId === 'h100-c'")
    for field, wanted in expected.items():
        assert {k: v for k, v in cells(page, field).items() if k in wanted} == wanted, field
    assert seen.errors == []


HOSTILE = """Oslo "quoted" & 'single' <img src=x onerror="window.__pwned=1"><b data-injected="1">bold</b>"""


def test_feed_strings_with_quotes_and_markup_are_shown_as_text_never_parsed(site, browser, isolated_redis):
    """The ticker builds DOM nodes: a feed entry whose every string holds quotes and markup (even
    where the bridge's schema would allow none, such as a time) adds no element and no attribute."""
    from feed import hub

    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    page.wait_for_selector("body[data-feed=live]")
    at = '2026-11-26T12:00:00Z" data-injected="1'
    change = {"provider": HOSTILE, "offer_id": HOSTILE, "gpu": HOSTILE, "gpu_count": HOSTILE, "region": HOSTILE,
              "old_price": 2, "new_price": 1.5, "price_per_gpu": 1.5, "change_percent": -25, "direction": HOSTILE,
              "observed_at": at}  # fmt: skip
    anomaly = {"provider": HOSTILE, "gpu": HOSTILE, "reason": HOSTILE, "price_per_gpu": 0.5, "old_price": 2, "observed_at": at}
    for kind, data in (("price_update", change), ("anomaly_alert", anomaly)):
        isolated_redis.xadd(hub.STREAM, {"kind": kind, "event_id": kind, "channels": "price_updates", "body": json.dumps(data)})
    page.wait_for_function("document.querySelectorAll('#ticker li').length === 2")
    shot(page, "page-ticker-hostile-strings")
    assert page.locator("#ticker [data-injected], #ticker img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#ticker time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))") == [at, at]
    assert page.locator("#ticker b").evaluate_all("bs => bs.map(b => b.textContent)") == [HOSTILE, HOSTILE]
    texts = page.locator("#ticker li").all_text_contents()
    assert all(texts[i].count(HOSTILE) == n for i, n in ((0, 3), (1, 4))), texts  # anomaly: provider, gpu, reason
    assert seen.errors == []


def test_health_frames_update_the_provider_badges(site, browser, isolated_redis):
    """health_update frames from the bridge: a health change sets the badge, a health score its title,
    a quarantine shows `stale` and ticks (the frame's own kind is its `event_type`)."""
    from feed import bridge
    from gpubroker.schema import HealthScore, ProviderEvent, health_score_id
    from tests.test_feed import record

    page, seen = Watched.page(browser)
    page.goto(f"{site}/")
    page.wait_for_selector("body[data-feed=live]")
    end = NOW.replace(second=0, microsecond=0)
    bridge.Bridge(client=isolated_redis).handle([record(e) for e in (
        ProviderEvent(type="health_update", provider="lambda", status="down", reason="timeout", timestamp=NOW),
        HealthScore(event_id=health_score_id("lambda", end), provider="lambda", score=0.25, calls=4, failures=3, latency_ms=None,
                    last_landed_at=None, window_start=end - timedelta(minutes=15), window_end=end, detected_at=end),
        ProviderEvent(type="quarantine", provider="lambda", status="stale", reason="half the rows vanished", timestamp=NOW),
    )])  # fmt: skip
    badges = page.locator("#provider-lambda [data-badges]")
    page.wait_for_function("document.querySelectorAll('#ticker li').length === 1")
    assert badges.locator("[data-health]").text_content() == "down"
    assert badges.locator("[data-health]").get_attribute("data-health") == "down"
    assert badges.locator("[data-health]").get_attribute("title") == "health score 0.25 (the last 15 minutes)"
    assert badges.locator("[data-stale]").is_visible() and badges.locator("[data-stale]").get_attribute("title") == "half the rows vanished"
    assert "lambda: latest batch quarantined" in page.locator("#ticker li").text_content()
    assert seen.errors == []
