"""The API against its own OpenAPI document: schemathesis (pinned, run with uvx) with every check, its
unusual strings (NUL, any UTF-8) and 150 examples per operation (tests/contract/schemathesis.toml),
over real HTTP against the whole application (uvicorn) on the test database with offers in it.
The other surfaces (page, WebSocket, SSE, alert bodies): tests/test_bad_input.py."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.conftest import ROOT
from tests.webapp_fixtures import NOW, make_key, offer_row

SCHEMATHESIS = "schemathesis==4.32.5"


@pytest.fixture
def catalogue(transactional_db):
    from offers.models import Offer, PriceHistory

    Offer.objects.bulk_create([
        offer_row("h1", price="2.50"), offer_row("h8", price="16.00", gpu_count=8, provider="lambda", region="us-east-1",
                                                 spot_price=Decimal("9.5"), country="US", continent="NA"),
        offer_row("r1", "RTX4090", price="0.35", gpu_memory_gb=24, provider="runpod"),
    ])  # fmt: skip
    PriceHistory.objects.bulk_create([
        PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal("3"), observed_at=NOW - timedelta(days=1)),
        PriceHistory(provider="vastai", offer_id="h1", price_per_hour=Decimal("2.5"), observed_at=NOW),
    ])  # fmt: skip


def test_schemathesis_with_every_check_finds_nothing(live_webapp, catalogue, tmp_path):
    assert shutil.which("uvx"), "uvx (installed with uv by `make test`) runs the pinned schemathesis"
    key = make_key("unlimited", "contract tests")
    run = subprocess.run(
        ["uvx", SCHEMATHESIS, "--config-file", str(ROOT / "tests" / "contract" / "schemathesis.toml"), "run",
         f"{live_webapp}/api/v1/openapi.json", "--checks", "all", "--header", f"Authorization: Bearer {key}",
         "--seed", "20261202", "--request-timeout", "30", "--no-color"],  # examples per phase: the config file
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,  # its caches stay out of the checkout
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or "passed" in run.stdout.lower(), run.stdout[-3000:]
