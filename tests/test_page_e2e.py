"""The page at `/` on the running stack: a price changed on the replay server and synced through
Airflow (-> PostgreSQL -> Kafka -> Flink -> Kafka -> feed bridge -> Redis stream) shows on the open
page, in its row and in the ticker, without a reload.

The page is served by this working tree's webapp (started here on a free port, on the stack's
database and Redis, as `make up` starts it), so the test needs no restart of the stack's webapp.
Needs `make up` (or `make test`). Screenshot: .stack/test-artifacts/page-live-update.png.
"""

from __future__ import annotations

import copy
import json
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import pytest

from gpubroker_provider.airflow_api import AirflowApi
from tests.browser import ARTIFACTS, Watched, chromium, shot
from tests.conftest import ROOT, recording, stack_secrets
from web.templatetags.web_format import usd

pytestmark = pytest.mark.stack
DAG = "gpubroker_data_sync"
OFFER = "18013001"  # vastai's 8x H100 SXM in the recording


def sync(api: AirflowApi) -> None:
    """Sync vastai through the running Airflow (one run at a time: it may wait for the hourly run)."""
    run_id = api.trigger(DAG, {"providers": ["vastai"]})
    assert api.wait(DAG, run_id, timeout=900) == "success", api.task_instances(DAG, run_id)


@pytest.fixture(scope="module")
def webapp_of_this_tree():
    """uvicorn serving this tree's webapp on the stack's PostgreSQL and Redis; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "page-e2e-webapp.log", "w")
    env = {**os.environ, **stack_secrets(), "GPUBROKER_ENV": "local"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "webapp"), "gpubroker_web.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--no-access-log"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail(f"the webapp did not start; see {log.name}")
    yield url
    server.terminate()
    server.wait(15)
    log.close()


def test_a_price_change_synced_through_airflow_updates_the_open_page_without_a_reload(
    stack_replay, stack_api_key, webapp_of_this_tree
):
    api = AirflowApi()
    sync(api)  # baseline: the recorded prices
    with chromium() as browser:
        page, seen = Watched.page(browser)
        page.add_init_script(f"localStorage.setItem('gpubroker.apiKey', {json.dumps(stack_api_key)})")
        page.goto(f"{webapp_of_this_tree}/?provider=vastai&gpu=H100")
        price = page.locator(f'tr[data-offer-id="{OFFER}"] [data-field="price_per_hour"]')
        before = float(price.text_content().lstrip("$"))
        page.wait_for_selector("body[data-feed=live]")  # connected with the key as its subprotocol
        page.evaluate("window.sameDocument = true")

        body = copy.deepcopy(recording("vastai", "bundles.json"))
        row = next(r for r in body["offers"] if str(r["id"]) == OFFER)
        row["dph_total"] = new = round(before * random.uniform(0.5, 0.95), 2)
        stack_replay.put("vastai", "bundles.json", body)
        sync(api)

        page.wait_for_function(f"el => el.textContent === {json.dumps(usd(new))}", arg=price.element_handle(),
                               timeout=180_000)  # fmt: skip
        assert page.evaluate("window.sameDocument") is True  # updated in place: the page never reloaded
        assert "changed-down" in page.locator(f'tr[data-offer-id="{OFFER}"]').get_attribute("class")
        per_gpu = page.locator(f'tr[data-offer-id="{OFFER}"] [data-field="price_per_gpu"]').text_content()
        assert per_gpu == usd(new / 8)
        # the ticker lists the change (an anomaly Flink raises for it may come before or after)
        change = page.locator("#ticker li", has_text=f"{usd(before)} → {usd(new)}")
        assert change.count() == 1 and "vastai" in change.text_content()
        assert seen.external() == [] and seen.errors == []
        shot(page, "page-live-update")
