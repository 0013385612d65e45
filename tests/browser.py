"""Headless Chromium for the page tests: Debian's `chromium` driven by Playwright (no browser download).

`chromium()` launches it; `Watched` records every request a page makes, so a test can assert that
nothing left the machine; `shot()` saves a full-page screenshot as a test artefact, in
`$GPUBROKER_TEST_ARTIFACTS` or else `.stack/test-artifacts/` (gitignored, beside the stack's state).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import STATE

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(os.environ.get("GPUBROKER_TEST_ARTIFACTS") or STATE / "test-artifacts")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@contextmanager
def chromium():
    """The browser, for a test module. Playwright's sync API keeps an event loop in this thread, so
    Django would refuse the fixtures' ORM calls as "async unsafe": they are not (the loop is idle
    while they run), and Django's documented switch says so for the browser's lifetime."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        try:
            yield browser
        finally:
            browser.close()
            if before is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@dataclass
class Watched:
    """Every request, failed request and page error of one page."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def page(cls, browser, **options):
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, **options)
        seen = cls()
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("requestfailed", lambda r: seen.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and seen.failed.append(f"{r.url}: HTTP {r.status}"))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        return page, seen

    def external(self) -> list[str]:
        """Requests to anything but this machine (data: URLs never leave it)."""
        return [u for u in self.requests if not u.startswith("data:") and urlsplit(u).hostname not in LOCAL_HOSTS]


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# WCAG 2.1 contrast of every visible text against the background it is painted on (AA: 4.5:1, or
# 3:1 for large text: 24 px, or 18.66 px bold). Returns the failures.
CONTRAST_FAILURES = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                                 if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el.checkVisibility() || el.closest(".vh, svg, option")) continue;
    const style = getComputedStyle(el), size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) failures.push(`${el.tagName} "${walker.currentNode.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return failures;
}"""

# Form controls and buttons without an accessible name (a <label>, aria-label(ledby), or button text).
UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")
                  && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))"""
