"""The GX Data Docs, served offline: every CDN URL in their pages is rewritten to our pinned copy.

GX writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from ten CDNs
(and a logo from S3 with a tracking query). `great_expectations/gx/plugins/custom_data_docs/`
vendors pinned npm copies of those files (`vendor.json` maps each URL to its copy, `npm run vendor`
copies them into `vendor/`). Rewriting when serving, not when building, covers every page however
and whenever it was built; it is a few regex substitutions on an HTML or CSS file. A copy is
byte-identical to what the CDN serves, so the pages' SRI `integrity` hashes still hold.

`validation_pages` reads back which provider and which sync each validation page is of, from where
GX put it (`/dq/` links each provider's row to its pages).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from gpubroker import quality
from gpubroker.vendors import VENDORS

ASSETS_DIR = quality.GX_ROOT / "gx" / "plugins" / "custom_data_docs"
VENDOR_DIR = ASSETS_DIR / "vendor"
RUN_TIME = "%Y%m%dT%H%M%S.%fZ"  # how GX names a validation run's folder
NO_RUN_NAME = "__none__"  # GX's run name for a run given none
REWRITTEN = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8"}  # the files that name URLs


@cache
def _manifest() -> dict:
    return json.loads((ASSETS_DIR / "vendor.json").read_text())


@cache
def _pattern() -> re.Pattern[str]:
    """Any URL of the manifest, with whatever query string follows it, up to the attribute's end."""
    urls = sorted({*_manifest()["vendor"], *_manifest()["site"]}, key=len, reverse=True)
    return re.compile("(" + "|".join(map(re.escape, urls)) + r")(?:\?[^\"'\s)]*)?(?=[\"'\s)])")


def rewrite(text: str, vendor_url: str, site_url: str) -> str:
    """`text` with each CDN URL replaced by our copy: `vendor_url` + its vendor path, or `site_url` +
    its path in the built site (both URLs end with a slash)."""
    vendor, site = _manifest()["vendor"], _manifest()["site"]

    def local(match: re.Match[str]) -> str:
        url = match.group(1)
        return vendor_url + vendor[url] if url in vendor else site_url + site[url]

    return _pattern().sub(local, text)


def external_urls(text: str) -> set[str]:
    """The CDN URLs of the manifest that `text` still names (none, once rewritten)."""
    return {m.group(1) for m in _pattern().finditer(text)}


def vendored_files() -> list[Path]:
    """Every file the manifest promises in vendor/ (a missing one means `npm run vendor` was not run)."""
    return [VENDOR_DIR / path for path in _manifest()["vendor"].values()]


def validation_pages(limit: int | None = 20) -> list[dict[str, Any]]:
    """The newest validation-result pages of the built docs, newest first: {provider, run_id,
    run_time, at, path}. GX lays them out as validations/<suite>/<run name>/<run time>/<batch>.html;
    the gate names the run by the sync's run id and the batch `offer_batches-<provider>`
    (gpubroker.quality). `provider` and `run_id` are None for a page that does not name them (GX's
    `__none__` run, the single `batch` asset of older gates); `path` is relative to the site root,
    `at` the run time as a UTC datetime (None if GX named it otherwise)."""
    root = quality.DOCS_DIR / "validations" / quality.SUITE
    pages = sorted(root.glob("*/*/*.html"), key=lambda p: p.parent.name, reverse=True) if root.is_dir() else []
    return [_page(p) for p in pages[:limit]]


def _page(html: Path) -> dict[str, Any]:
    run_name, run_time = html.parent.parent.name, html.parent.name
    return {"provider": _provider(html.stem), "run_id": None if run_name == NO_RUN_NAME else run_name,
            "run_time": run_time, "at": _run_time(run_time), "path": html.relative_to(quality.DOCS_DIR).as_posix()}  # fmt: skip


def _provider(batch: str) -> str | None:
    """The provider a batch identifier (`offer_batches-vastai`) names, if it names one of the vendor table."""
    slug = batch.removeprefix(f"{quality.DATASOURCE}-")
    return slug if slug != batch and slug in VENDORS else None


def _run_time(name: str) -> datetime | None:
    """GX's run-time folder name (`20261203T002736.356625Z`) as a datetime."""
    try:
        return datetime.strptime(name, RUN_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
