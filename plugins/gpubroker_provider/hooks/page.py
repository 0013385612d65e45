"""`PageHook`: vendors whose prices are read from their public price page, one parser layer for all.

The page is fetched like any API call (timeout, retries, Retry-After, errors without secrets), staged
as served, and parsed with selectolax's Lexbor engine. Why selectolax: an HTML5-conformant parser (the
tree a browser builds, so markup that renders also parses), CSS selectors built in, a 200 KB page in
about a millisecond (BeautifulSoup's html.parser takes some 50x longer, and every page vendor is
parsed at each sync), one wheel with no system libraries, and a kept project (releases in 2026).

A page vendor module declares its page (`page`, a path under the vendor's site), where the rows are
(`rows_at`, one `Locator`) and `expand(row)`: the Offer fields of one row, as every list and page
vendor does (`RowsHook`). Where rows are, in the order to prefer (a vendor's own data, embedded in
its page, breaks less often than its markup):

- `EmbeddedJson(selector, path)`: JSON inside the page -- `script#__NEXT_DATA__`, a
  `<script type="application/json">`, or a JS literal found by `pattern=` (e.g. `prices = (\\[.*?\\]);`)
  -- rows at a dotted `path` ("props.pageProps.gpus"; a dict's values when it ends on an object);
- `Table(selector)`: an HTML table; each body row a dict of its cells' texts keyed by the column
  headers (`thead`, else the first row), so `expand` reads `row["Price/hr"]`;
- `Cards(selector, fields)`: repeated blocks (a card per GPU); each a dict of the texts that the
  `fields` selectors find inside it (a missing one is None, for `expand` to judge).

A page that no longer holds its rows (no node, no JSON, no rows, a column gone) raises `PageChanged`,
a `PayloadError`: the batch is refused with that reason, never landed as zero offers. A row that
does not parse drops that row only, with its reason. Text helpers (`usd`, `gb`, `count`) read the
numbers a page shows ("$2.49/hr", "80 GB", "8x"); each raises ValueError naming what it could not read.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx
from selectolax.lexbor import LexborHTMLParser, LexborNode

from gpubroker.fx import TO_USD
from gpubroker_provider.hooks.base import PayloadError, RowsHook

__all__ = ["Cards", "EmbeddedJson", "Locator", "PageChanged", "PageHook", "Table", "count", "gb", "usd"]


class PageChanged(PayloadError):
    """The price page no longer has the shape its module reads: the batch is refused, with where it broke."""


def parse_html(html: str) -> LexborHTMLParser:
    if not isinstance(html, str) or not html.strip():
        raise PageChanged("expected an HTML page, got an empty or non-text answer")
    return LexborHTMLParser(html)


def node_text(node: LexborNode | None) -> str | None:
    """A node's visible text, whitespace collapsed ("$2.49 <small>/hr</small>" -> "$2.49 /hr")."""
    if node is None:
        return None
    return " ".join(node.text(deep=True, separator=" ").split())


class Locator(ABC):
    """Where a page keeps its rows."""

    @abstractmethod
    def rows(self, tree: LexborHTMLParser) -> list[dict[str, Any]]:
        """The page's rows, each a dict; PageChanged when they are not where they were."""


@dataclass(frozen=True)
class EmbeddedJson(Locator):
    selector: str  # the <script> holding the JSON, e.g. "script#__NEXT_DATA__"
    path: str = ""  # dotted path to the row list (or to an object whose values are the rows)
    pattern: str | None = None  # a regex whose first group is the JSON, for a JS literal in a script

    def rows(self, tree: LexborHTMLParser) -> list[dict[str, Any]]:
        data = self.data(tree)
        for step in filter(None, self.path.split(".")):
            try:
                data = data[int(step)] if isinstance(data, list) else data[step]
            except (LookupError, TypeError, ValueError):
                raise PageChanged(f"no {self.path!r} in the JSON of {self.selector!r} (stopped at {step!r})") from None
        rows = list(data.values()) if isinstance(data, dict) else data
        if not isinstance(rows, list) or not rows:
            raise PageChanged(f"{self.path!r} in {self.selector!r} is not a list of rows")
        return rows

    def data(self, tree: LexborHTMLParser) -> Any:
        """The first matching script's JSON (with `pattern`: the first script whose text matches)."""
        for script in tree.css(self.selector):
            source = script.text(deep=True)
            if self.pattern:
                if not (found := re.search(self.pattern, source, re.DOTALL)):
                    continue
                source = found.group(1)
            try:
                return json.loads(source)
            except ValueError:
                raise PageChanged(f"the JSON in {self.selector!r} does not parse") from None
        raise PageChanged(f"no {self.selector!r}{' matching the pattern' if self.pattern else ''} on the page")


@dataclass(frozen=True)
class Table(Locator):
    selector: str  # the <table>, e.g. "table.gpu-pricing"; every matching table's rows, in order
    columns: tuple[str, ...] = ()  # headers that must be there (checked, so a renamed column is a shape change)

    def rows(self, tree: LexborHTMLParser) -> list[dict[str, Any]]:
        rows = [row for table in tree.css(self.selector) for row in self._table_rows(table)]
        if not rows:
            raise PageChanged(f"no rows in {self.selector!r}")
        return rows

    def _table_rows(self, table: LexborNode) -> Iterator[dict[str, Any]]:
        lines = [[node_text(cell) or "" for cell in tr.css("th, td")] for tr in table.css("tr")]
        head = [node_text(th) or "" for th in table.css("thead th")]
        if not head and lines:
            head, lines = lines[0], lines[1:]
        elif head:
            lines = lines[1:] if lines and lines[0] == head else lines
        if missing := [c for c in self.columns if c not in head]:
            raise PageChanged(f"{self.selector!r} has no column {missing[0]!r} (columns: {head})")
        for cells in lines:
            if cells and any(cells):
                yield dict(zip(head, cells))


@dataclass(frozen=True)
class Cards(Locator):
    selector: str  # one node per row, e.g. "div.gpu-card"
    fields: dict[str, str] = field(default_factory=dict)  # row key -> selector inside the card ("" = the card)
    attributes: dict[str, tuple[str, str]] = field(default_factory=dict)  # row key -> (selector, attribute)

    def rows(self, tree: LexborHTMLParser) -> list[dict[str, Any]]:
        cards = tree.css(self.selector)
        if not cards:
            raise PageChanged(f"no {self.selector!r} on the page")
        return [self._row(card) for card in cards]

    def _row(self, card: LexborNode) -> dict[str, Any]:
        row: dict[str, Any] = {key: node_text(card.css_first(sel) if sel else card) for key, sel in self.fields.items()}
        for key, (sel, attribute) in self.attributes.items():
            node = card.css_first(sel) if sel else card
            row[key] = node.attributes.get(attribute) if node is not None else None
        return row


class PageHook(RowsHook):
    """A vendor read from its public price page (`gpubroker.vendors`, source "page"). The module gives
    `page`, `rows_at` and `expand`; `context` (the parsed page) goes to `expand` for page-wide facts."""

    page: ClassVar[str]  # the price page's path under the vendor's site, e.g. "/pricing"
    rows_at: ClassVar[Locator]

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {}  # a public page: a key, if the connection has one, is not sent

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        yield self.request(client, "GET", self.page, headers={"Accept": "text/html"}, decode=_html)

    def rows(self, pages: list[Any]) -> Iterator[tuple[LexborHTMLParser, dict[str, Any]]]:
        for page in pages:
            tree = parse_html(page)
            yield from ((tree, row) for row in self.rows_at.rows(tree))


def _html(response: httpx.Response) -> str:
    if "html" not in response.headers.get("content-type", "text/html"):
        raise PayloadError(f"expected an HTML page, got {response.headers['content-type']!r}")
    return response.text


# --- reading the numbers a page shows ------------------------------------------------------------
_MONEY = re.compile(r"(?P<cur>US\$|\$|€|£|₹|USD|EUR|GBP|INR)?\s*(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?P<after>USD|EUR|GBP|INR|€)?")
_SYMBOL = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "₹": "INR"}


def usd(text: str | None, currency: str | None = None) -> Decimal:
    """The first price in `text` in USD: "$2.49/hr" -> 2.49; "€1.90" -> 1.90 x EUR_USD (gpubroker.fx).
    `currency` is the page's currency where the text shows no symbol. ValueError when there is none."""
    for found in _MONEY.finditer(text or ""):
        unit = _SYMBOL.get(found["cur"] or "", found["cur"]) or _SYMBOL.get(found["after"] or "", found["after"]) or currency
        if unit is None:
            continue  # a bare number (a GPU count, "80GB") is not a price
        if unit not in TO_USD:
            raise ValueError(f"price in {unit}, which gpubroker.fx does not convert")
        try:
            amount = Decimal(found["num"].replace(",", ""))
        except InvalidOperation:
            continue
        return amount * TO_USD[unit]
    raise ValueError(f"no price in {text!r}")


_GB = re.compile(r"(\d+(?:\.\d+)?)\s*(GB|GiB|TB)\b", re.IGNORECASE)


def gb(text: str | None) -> float:
    """The first size in `text` in GB (10^9 bytes): "80GB" -> 80; "1.5 TB" -> 1500; "24 GiB" -> 25.8."""
    if not (found := _GB.search(text or "")):
        raise ValueError(f"no size in GB in {text!r}")
    value, unit = float(found[1]), found[2].lower()
    return round(value * {"gb": 1, "gib": 1.073741824, "tb": 1000}[unit], 1)


_COUNT = re.compile(r"^\s*(\d+)\s*[x×]|\b(\d+)\s*[x×]\s|\b(\d+)\s+GPUs?\b", re.IGNORECASE)


def count(text: str | None, default: int | None = None) -> int:
    """A GPU count as pages write it: "8x H100", "8 × A100", "4 GPUs"; `default` when none is written."""
    if found := _COUNT.search(text or ""):
        return int(next(g for g in found.groups() if g))
    if default is None:
        raise ValueError(f"no GPU count in {text!r}")
    return default
