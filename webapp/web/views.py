"""The human pages: `/` (live offers), `/dq/` (data quality per provider), `/dq/docs/` (GX Data Docs,
offline), `/analytics/daily` (the daily report), and the static files they load (`/static/web/...`,
`/dq/vendor/...`).

`/` renders its first view on the server with the same query function as `GET /api/v1/offers`
(`offers.queries.offer_page`), so it shows data before any script runs; the page's script then
asks the API (one request per user action) and follows the WebSocket. The gateway meters `/` like
the API (the caller's plan window; only the default first view, already computed, is free) and
serves `/dq/` from its cache for a few seconds (webapp/gateway/asgi.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils._os import safe_join
from django.views.static import serve

from analytics import queries as analytics
from gpubroker import daily, quality, search, settings
from gpubroker_web import responses
from offers import providers, queries
from web import datadocs, filters, quality_report

STATIC_DIR = Path(__file__).resolve().parent / "static"
TICKER_ANOMALIES = 10
# How an offer's pricing and GPU interconnect are written, on the server's rows and the live ones
LABELS = {"pricing_type": filters.PRICING_LABELS, "interconnect": filters.INTERCONNECT_LABELS}
CONTROL_NAMES = {c.name for c in filters.CONTROLS}


def _links() -> dict[str, str]:
    return {"dq": reverse("dq"), "daily": reverse("analytics-daily"), "docs": "/api/v1/docs", "airflow": settings.AIRFLOW_URL}


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response


async def _panels(now: datetime) -> dict[str, Any]:
    """The side panels and the GPU table: provider status, the ticker's anomalies, GPUs of the last 24 h."""
    statuses, gpus, anomalies = await asyncio.gather(
        providers.statuses(), analytics.gpu_overview(now), analytics.anomalies(None, None, None, TICKER_ANOMALIES)
    )
    return {"providers": statuses, "by_slug": {p["slug"]: p for p in statuses}, "gpus": gpus, "anomalies": anomalies}


def _unmarked(errors: dict[str, str]) -> str | None:
    """Bad parameters the form has no control to mark (such as `page`), named for the status line."""
    return "; ".join(f"{name}: {message}" for name, message in errors.items() if name not in CONTROL_NAMES) or None


def _pager(given: dict[str, Any], query: search.OfferQuery | None) -> dict[str, str]:
    """The previous and next page's query strings (the page number as parsed, never as given)."""
    if query is None:
        return {}
    at = given | {"page": str(query.page)}
    return {"prev_query": filters.page_query(at, -1), "next_query": filters.page_query(at, +1)}


async def index(request: HttpRequest) -> HttpResponse:
    """The page for any query string: 400 with the bad filters marked, 503 (Retry-After) when the
    database cannot answer (any error it raises: gpubroker_web.responses.refusal), never a 500."""
    given = filters.values(request.GET)
    query, errors = filters.parse(given)
    context = {
        "page": None, "problem": _unmarked(errors), "errors": errors, "values": filters.DEFAULTS | given,
        "controls": filters.CONTROLS, "more_open": filters.more_open(given, errors), "gpu_names": filters.GPU_NAMES,
        "providers": [], "by_slug": {}, "gpus": [], "anomalies": [], "labels": LABELS, "links": _links(),
        **_pager(given, query), "config": {"api": "/api/v1", "ws": "/ws/providers/", "labels": LABELS},
    }  # fmt: skip
    status, headers = 200 if query else 400, {}
    try:
        context |= await _panels(datetime.now(timezone.utc))
        if query:
            context["page"] = await queries.offer_page(query)
    except responses.REFUSED as failure:
        answer = responses.refusal(failure)
        context["problem"], status, headers = answer.detail, answer.status, answer.headers
    return _with_headers(render(request, "web/index.html", context, status=status), headers)


async def data_quality(request: HttpRequest) -> HttpResponse:
    try:
        reports = await quality_report.providers()
    except responses.REFUSED as failure:
        answer = responses.refusal(failure)
        return _with_headers(HttpResponse(f"{answer.detail}.", status=answer.status, content_type="text/plain"), answer.headers)
    built = (quality.DOCS_DIR / "index.html").is_file()
    context = {"reports": reports, "docs_built": built, "validations": datadocs.validation_pages() if built else [],
               "any_quarantine": any(r["quarantines"] for r in reports), "links": _links()}  # fmt: skip
    return render(request, "web/dq.html", context)


async def daily_analytics(request: HttpRequest) -> HttpResponse:
    """The daily report of `?date=YYYY-MM-DD` (the latest without): 400 for a malformed date, 404 for
    a day without a report, 503 when the database cannot answer; each with the page and its form."""
    given = request.GET.get("date", "")
    context, status, headers = {"report": None, "date": given, "problem": None, "links": _links()}, 200, {}
    try:
        day = daily.parse_day(given) if given else None
        context["report"] = await analytics.daily_report(day)
        if context["report"] is None:
            context["problem"], status = analytics.no_report(day), 404
    except daily.NotADay as bad:
        context["problem"], context["invalid"], status = f"date: {bad}", True, 400
    except responses.REFUSED as failure:
        answer = responses.refusal(failure)
        context["problem"], status, headers = answer.detail, answer.status, answer.headers
    return _with_headers(render(request, "web/analytics.html", context, status=status), headers)


def data_docs(request: HttpRequest, page: str = "") -> HttpResponse:
    """The GX Data Docs built by the gpubroker_dq_report DAG, with every CDN URL pointing at our copy."""
    if not (quality.DOCS_DIR / "index.html").is_file():
        return HttpResponse("No data-quality report yet: the gpubroker_dq_report DAG builds it.", status=404,
                            content_type="text/plain")  # fmt: skip
    page = page or "index.html"
    content_type = datadocs.REWRITTEN.get(Path(page).suffix)
    if content_type is None:
        return serve(request, page, document_root=quality.DOCS_DIR)
    try:
        path = Path(safe_join(quality.DOCS_DIR, page))
    except ValueError:  # outside the docs folder
        raise Http404(page) from None
    if not path.is_file():
        raise Http404(page)
    text = datadocs.rewrite(path.read_text(), reverse("dq-vendor", args=[""]), reverse("dq-docs", args=[""]))
    return HttpResponse(text, content_type=content_type)


def data_docs_vendor(request: HttpRequest, path: str) -> HttpResponse:
    """Our pinned copies of the Data Docs' CDN files (great_expectations/gx/plugins/custom_data_docs/vendor)."""
    return serve(request, path, document_root=datadocs.VENDOR_DIR)


def static(request: HttpRequest, path: str) -> HttpResponse:
    """The page's own CSS and JavaScript. A handful of small files: Django's `serve` (path-safe,
    Last-Modified / 304) is enough, and keeps the webapp a single process with no extra dependency."""
    response = serve(request, path, document_root=STATIC_DIR)
    response["Cache-Control"] = "no-cache"  # revalidate (304) so a deploy is picked up at once
    return response
