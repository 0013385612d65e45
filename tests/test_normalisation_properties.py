"""Properties of normalisation, for every vendor (Hypothesis).

- Corruption inside ONE item of a recorded listing — any value in it replaced by a value of the wrong
  kind, any key removed, or the item itself replaced — never refuses the batch: every offer the item
  takes no part in (the same whether the item is there or left out) lands exactly as it was. Drops
  are counted, never raised.
  (Where offers join several items — a Spot meter and an on-demand meter, a price and a flavor — an
  offer the item takes part in may change with it; every other one may not.)
- Corruption outside the items (the envelope) either still parses into valid offers or fails with a
  PayloadError naming the vendor: never another exception, never offers that break the schema.
- A well-formed payload yields offers with every required field, positive prices and memory
  consistent with the registry (Vast.ai rows generated from its documented field domains).

The items of a listing are what the vendor's hook yields from `items(pages)` (for hooks that yield
(context, item) tuples, the last element), located in the pages by identity.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import gpus
from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.vastai import VastAiHook
from gpubroker_provider.hooks.page import PageHook
from gpubroker_provider.vendors import VENDORS, hook_class
from tests.conftest import REPLAY_KEY

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)
_RAW: dict[str, list] = {}


@pytest.fixture(scope="module")
def raw_pages(replay_server):
    """Each vendor's recorded listing, fetched once over HTTP exactly as a sync fetches it."""

    def pages(slug: str) -> list:
        if slug not in _RAW:
            hook = hook_class(slug)(base_url=replay_server.vendor_url(slug), api_key=REPLAY_KEY)
            _RAW[slug] = hook.fetch_raw()
        return copy.deepcopy(_RAW[slug])

    replay_server.reset()
    return pages


def paths(node, prefix=()):
    """Every (path to a value) in a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def item_paths(slug: str, pages: list) -> list[tuple]:
    """(page index, *path) of every item the hook reads, found by identity in the pages."""
    wanted = {id(item[-1] if isinstance(item, tuple) else item) for item in hook_class(slug)().items(pages)}
    found = []
    for index, page in enumerate(pages):
        found += [(index, *path) for path in paths(page) if path and id(_at(page, path)) in wanted]
    return found


def _at(document, path):
    for step in path:
        document = document[step]
    return document


_DELETE = object()


def replaced(pages: list, path: tuple, value) -> list:
    """A deep copy of `pages` with the value at `path` (page index first) replaced or deleted."""
    pages = copy.deepcopy(pages)
    if len(path) == 1:
        pages[path[0]] = value
        return pages
    parent = _at(pages, path[:-1])
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return pages


WRONG = st.sampled_from([_DELETE, None, "", "n/a", -1, 0, 1e30, [], {}, {"unexpected": True}, True])
SLUGS = sorted(slug for slug, v in VENDORS.items() if v.source != "page")  # JSON listings, corrupted in place
PAGES = sorted(slug for slug, v in VENDORS.items() if v.source == "page")  # HTML: rows corrupted as they are read


_ROW = object()  # as `key`: the whole row, left out


def with_row_corrupted(cls: type[PageHook], row: int, key, value) -> type[PageHook]:
    """`cls`, reading its page with one value of one row replaced (or deleted) as the parser hands it
    over; with `key` _ROW and `value` _DELETE, without that row at all."""

    class Corrupted(cls):
        def rows(self, pages):
            for index, (context, found) in enumerate(super().rows(pages)):
                if index == row:
                    if key is _ROW:
                        continue
                    found = {k: v for k, v in found.items() if k != key} | ({} if value is _DELETE else {key: value})
                yield context, found

    return Corrupted


@pytest.mark.parametrize("slug", PAGES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupting_one_row_of_a_page_leaves_every_other_row_landing(slug, raw_pages, data):
    pages, cls = raw_pages(slug), hook_class(slug)
    rows = [row for _context, row in cls().rows(pages)]
    row = data.draw(st.integers(0, len(rows) - 1), label="row")
    key = data.draw(st.sampled_from(sorted(rows[row])), label="key")
    value = data.draw(WRONG | st.text(max_size=20), label="value")

    # the other rows' offers: what the page gives without that row (a row whose value is missing may
    # still land from another of its cells, so deleting the value does not tell which offers are its own)
    others = {offer.offer_id for offer in with_row_corrupted(cls, row, _ROW, _DELETE)().parse(pages, NOW).offers}
    corrupted = with_row_corrupted(cls, row, key, value)().parse(pages, NOW).offers  # never refused: one row

    missing = others - {offer.offer_id for offer in corrupted}
    assert not missing, f"{slug}: corrupting row {row}'s {key!r} lost other rows' offers {sorted(missing)}"
    for offer in corrupted:
        assert offer.provider == slug and offer.price_per_hour > 0 and offer.gpu_count >= 1


@pytest.mark.parametrize("slug", SLUGS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupting_one_item_leaves_every_other_item_landing(slug, raw_pages, data):
    pages = raw_pages(slug)
    items = item_paths(slug, pages)
    assert items, f"{slug}: no items found in the recorded listing"
    item = data.draw(st.sampled_from(items), label="item")
    inside = [item + tail for tail in paths(_at(pages, item))]
    path = data.draw(st.sampled_from(inside), label="path")
    value = data.draw(WRONG, label="value")
    hook = hook_class(slug)()

    whole = set(hook.parse(pages, NOW).offers)
    without_item = set(hook.parse(replaced(pages, item, _DELETE), NOW).offers)
    corrupted = set(hook.parse(replaced(pages, path, value), NOW).offers)  # never refused: one item at most

    # offers the item does not take part in are the same with and without it: they must all land as they are
    untouched = whole & without_item
    assert untouched <= corrupted, f"{slug}: corrupting {path} changed offers it has no part in"


@pytest.mark.parametrize("slug", SLUGS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupting_the_envelope_is_a_payload_error_or_valid_offers(slug, raw_pages, data):
    pages = raw_pages(slug)
    items = item_paths(slug, pages)
    outside = [
        (index, *path)
        for index, page in enumerate(pages)
        for path in paths(page)
        if not any((index, *path)[: len(item)] == item for item in items)
    ]
    path = data.draw(st.sampled_from(outside), label="path")
    corrupted = replaced(pages, path, data.draw(WRONG, label="value"))
    try:
        batch = hook_class(slug)().parse(corrupted, NOW)
    except PayloadError as error:
        assert str(error).startswith(f"{slug}: ")
        return
    for offer in batch.offers:  # whatever parsed is a complete, valid offer
        assert offer.provider == slug and offer.price_per_hour > 0 and offer.gpu_count >= 1


vast_rows = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**9),
        "gpu_name": st.sampled_from(["RTX 4090", "H100 SXM", "A100 PCIE", "L40S", "RTX 3090", "RTX A6000"]),
        "num_gpus": st.sampled_from([1, 2, 4, 8]),
        "cpu_cores_effective": st.floats(1, 256),
        "cpu_ram": st.integers(8_192, 2_097_152),
        "gpu_frac": st.floats(0.01, 1),
        "disk_space": st.floats(10, 10_000),
        "dph_total": st.floats(0.01, 100),
        "min_bid": st.none() | st.floats(0.001, 100),
        "geolocation": st.sampled_from(["Texas, US", "Norway", "Quebec, CA", None]),
        "cpu_arch": st.sampled_from(["amd64", "arm64"]),
        "rentable": st.booleans(),
        "rented": st.booleans(),
    }
)
MEMORY_MIB = {"RTX 4090": 24564, "H100 SXM": 81559, "A100 PCIE": 40960, "L40S": 46068, "RTX 3090": 24576, "RTX A6000": 49140}


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(vast_rows, max_size=30, unique_by=lambda r: r["id"]))
def test_well_formed_vast_payloads_yield_complete_offers(rows):
    """**Feature: provider-api-gateway, Property 12: Response Normalization** — for any well-formed vendor
    response (Vast.ai rows over its documented field domains), every row becomes an offer of the one
    schema with every required field, a positive price and memory consistent with the registry."""
    for row in rows:
        row["gpu_ram"] = MEMORY_MIB[row["gpu_name"]]
    batch = VastAiHook().parse([{"offers": rows}], NOW)
    assert len(batch.offers) == len(rows) and not batch.memory_mismatches and not batch.dropped
    for offer, row in zip(batch.offers, rows):
        assert offer.price_per_hour > 0 and offer.offer_id == str(row["id"])
        assert gpus.BY_NAME[offer.gpu_model].memory_matches(offer.gpu_memory_gb)
        assert offer.spot_price is None or offer.spot_price <= offer.price_per_hour
        assert all(getattr(offer, f) is not None for f in ("instance_type", "gpu_vendor", "region", "observed_at"))
