"""Every vendor in the vendor table, through the same checks, over real HTTP (replay server).

Vendor-specific mapping and pagination tests live in tests/vendors/test_<slug>.py.
"""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime, timezone

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import gpus
from gpubroker_provider.hooks.base import PayloadError, RowsHook, TooManyDropped, VendorError, _retry_after
from gpubroker_provider.replay.server import load_manifests
from gpubroker_provider.vendors import VENDORS, hook_class
from tests.conftest import RECORDINGS as RECORDINGS_DIR
from tests.conftest import REPLAY_KEY

API = sorted(slug for slug, v in VENDORS.items() if v.source != "list")  # served over HTTP (replay server)
MANIFESTS = load_manifests()
VARIANTS = [(slug, variant) for slug in API for variant in hook_class(slug).variants]


def hook(replay, slug, key=REPLAY_KEY, **kwargs):
    return hook_class(slug)(base_url=replay.vendor_url(slug), api_key=key, **kwargs)


def check_batch(batch, slug):
    assert batch.offers, f"{slug}: no offers"
    assert not batch.memory_mismatches, batch.memory_mismatches
    assert len({o.offer_id for o in batch.offers}) == len(batch.offers), "offer_id must be unique"
    for offer in batch.offers:
        assert offer.provider == slug
        assert offer.price_per_hour > 0
        assert offer.spot_price is None or offer.spot_price <= offer.price_per_hour
        assert offer.gpu_model in gpus.BY_NAME
        assert offer.gpu_count >= 1


def test_every_api_vendor_has_recordings():
    assert set(API) <= set(MANIFESTS)


@pytest.mark.parametrize("slug", API)
def test_listing_normalises_over_http(replay, slug):
    check_batch(hook(replay, slug).fetch_batch(), slug)


@pytest.mark.parametrize("slug", API)
def test_offer_ids_are_stable_across_syncs(replay, slug):
    first, second = hook(replay, slug).fetch_batch(), hook(replay, slug).fetch_batch()
    assert [o.offer_id for o in first.offers] == [o.offer_id for o in second.offers]


@pytest.mark.parametrize("slug", API)
def test_429_with_retry_after_is_waited_out(replay, slug):
    replay.faults(slug, {"status": 429, "retry_after": 0.2})
    check_batch(hook(replay, slug).fetch_batch(), slug)


@pytest.mark.parametrize("slug", API)
def test_timeouts_end_in_a_clear_error(replay, slug):
    replay.faults(slug, {"delay": 0.6}, {"delay": 0.6})
    with pytest.raises(VendorError, match=f"{slug}: .* timed out after 0.3 s \\(after 2 attempts\\)"):
        hook(replay, slug, timeout=0.3, max_attempts=2).fetch_batch()


@pytest.mark.parametrize("slug", API)
def test_server_errors_are_retried_then_reported(replay, slug):
    error_page = MANIFESTS[slug]["unauthorized"]["body"]
    replay.faults(slug, {"status": 503, "body": error_page}, {"status": 500, "body": error_page})
    with pytest.raises(VendorError, match="HTTP 500"):
        hook(replay, slug, max_attempts=2).fetch_batch()


@pytest.mark.parametrize("slug", [s for s in API if VENDORS[s].api_key_required])
def test_wrong_key_gets_the_vendors_error_without_the_key(replay, slug):
    with pytest.raises(VendorError, match="HTTP 40[13]") as error:
        hook(replay, slug, key="sk-wrong-key-123").fetch_batch()
    assert "sk-wrong-key-123" not in str(error.value)


@pytest.mark.parametrize("slug", API)
def test_a_wrong_envelope_rejects_the_whole_batch(replay, slug):
    for route in MANIFESTS[slug]["routes"]:
        replay.put(slug, route["payload"], {"unexpected": [{"shape": True}]})
    with pytest.raises(PayloadError, match=f"{slug}: malformed payload"):
        hook(replay, slug).fetch_batch()


@pytest.mark.parametrize(("slug", "variant"), VARIANTS, ids=[f"{s}-{v.name}" for s, v in VARIANTS])
def test_every_documented_variant_normalises_without_drops(replay, slug, variant):
    replay.put(slug, variant.route, (RECORDINGS_DIR / slug / f"variant-{variant.name}.json").read_bytes())
    batch = hook(replay, slug).fetch_batch()
    assert not batch.dropped, batch.dropped
    check_batch(batch, slug)


@pytest.mark.parametrize("slug", API)
def test_every_variant_fixture_is_declared_by_its_hook(slug):
    declared = {f"variant-{v.name}.json" for v in hook_class(slug).variants}
    assert {p.name for p in (RECORDINGS_DIR / slug).glob("variant-*.json")} == declared
    assert {v.route for v in hook_class(slug).variants} <= {r["payload"] for r in MANIFESTS[slug]["routes"]}


@pytest.mark.parametrize("slug", sorted(VENDORS))
def test_a_batch_whose_items_are_all_broken_is_refused_with_its_reasons(replay, slug):
    cls = hook_class(slug)
    threshold = cls.drop_threshold
    assert 0 < threshold < 1, "a drop threshold is a share of the items"
    pages = hook(replay, slug).fetch_raw() if slug in API else cls().fetch_raw()
    if issubclass(cls, RowsHook):  # rows read from a page or a list: each one broken as it is read

        class Broken(cls):
            def rows(self, pages):
                return ((context, {"broken": True}) for context, _row in super().rows(pages))

        cls = Broken
    else:
        for item in cls().items(pages):  # every item broken in place: none can be parsed
            row = item[-1] if isinstance(item, tuple) else item
            if isinstance(row, dict):
                row.clear()
                row["broken"] = True
    with pytest.raises(TooManyDropped, match=f"^{slug}: \\d+ of \\d+ items dropped, more than the {threshold:.0%}"):
        cls().parse(pages, datetime.now(timezone.utc))


def test_recordings_are_valid_json_or_dated_pages():
    for manifest in MANIFESTS.values():
        for route in manifest["routes"]:
            body = (RECORDINGS_DIR / manifest["vendor"] / route["payload"]).read_text()
            if route["payload"].endswith(".json"):
                json.loads(body)
            else:  # a price page as served, with where and when it was recorded
                assert route["source"].startswith("https://") and date.fromisoformat(route["recorded"])
                assert "<html" in body.lower()




def test_a_key_from_the_connection_echoed_by_the_vendor_never_reaches_the_error(replay, monkeypatch):
    """The key comes from the Airflow connection (not an argument) and the vendor's 401 body repeats it."""
    key = "sk-from-the-connection-42"
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_VASTAI", json.dumps(
        {"conn_type": "gpubroker_vastai", "host": replay.vendor_url("vastai"), "password": key}))  # fmt: skip
    replay.faults("vastai", {"status": 403, "body": {"error": f"key {key} is not allowed"}})
    with pytest.raises(VendorError, match="HTTP 403") as error:
        hook_class("vastai")().fetch_batch()
    assert key not in str(error.value) and "***" in str(error.value)


@pytest.mark.parametrize("retry_after", ["-1", "NaN", "inf", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_no_time_to_wait_falls_back_to_the_backoff(replay, retry_after):
    """A vendor's negative, NaN, infinite, unparseable or past Retry-After never reaches time.sleep."""
    replay.faults("vastai", {"status": 429, "retry_after": retry_after})
    check_batch(hook(replay, "vastai").fetch_batch(), "vastai")


@given(st.text(max_size=40) | st.floats(allow_nan=True, allow_infinity=True).map(repr))
def test_retry_after_is_a_finite_non_negative_wait_or_none(value):
    try:
        response = httpx.Response(429, headers={"Retry-After": value})
    except (UnicodeEncodeError, ValueError):  # not a header value at all: httpx refuses to build it
        return
    wait = _retry_after(response)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


# --- property: a request ends within its time budget --------------------------------------------
LATE_SECONDS = 3.0  # a vendor far slower than any timeout below: a timeout not applied shows at once
BACKOFF = (0.5, 1.0)  # seconds waited after a first and a second failed attempt (exponential, from 0.5 s)
OVERHEAD = 1.0  # seconds a loaded machine may add to a request besides its timeouts and waits


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(timeout=st.integers(5, 30).map(lambda hundredths: hundredths / 100),
       late=st.lists(st.booleans(), min_size=1, max_size=3))
def test_each_late_attempt_is_cut_at_the_timeout_and_the_request_ends_within_its_budget(replay, isolated_redis,
                                                                                       timeout, late):  # fmt: skip
    """**Feature: provider-api-gateway, Property 20: Request Timeout** — for any timeout and number of
    attempts, with the vendor answering each attempt at once or far too late: every late attempt is cut at
    the timeout, and the request answers from the first attempt in time or, when all ran late, ends in a
    VendorError naming the timeout — in timeout x late attempts + the backoff between them."""
    replay.reset()
    attempts = len(late)
    cut = next((n for n, is_late in enumerate(late) if not is_late), attempts)  # late attempts before one in time
    replay.faults("vastai", *[{"delay": LATE_SECONDS}] * cut)
    budget = cut * timeout + sum(BACKOFF[: min(cut, attempts - 1)])
    vendor = hook(replay, "vastai", timeout=timeout, max_attempts=attempts)
    started = time.monotonic()
    if cut == attempts:
        with pytest.raises(VendorError, match=rf"^vastai: POST /api/v0/bundles/ timed out after {timeout:g} s "
                                              rf"\(after {attempts} attempts\)$"):  # fmt: skip
            vendor.fetch_raw()
    else:
        assert vendor.fetch_raw()[0]["offers"]  # the listing, from the first attempt in time
    took = time.monotonic() - started
    assert budget <= took < budget + OVERHEAD, (took, budget)
