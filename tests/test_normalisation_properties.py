"""Properties of normalisation, for every vendor (Hypothesis).

- A well-formed payload yields offers with every required field, positive prices and memory
  consistent with the registry (Vast.ai rows generated from its documented field domains).
- A malformed payload — any one value of a recorded payload replaced by a value of the wrong kind,
  or any one key removed — either still parses into valid offers, or fails with a PayloadError
  naming the vendor: never another exception, never offers that break the schema.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import gpus
from gpubroker_provider.hooks.base import CATALOGUES, PayloadError
from gpubroker_provider.hooks.vastai import VastAiHook
from gpubroker_provider.replay.server import load_manifests
from gpubroker_provider.vendors import VENDORS
from tests.conftest import RECORDINGS

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)
MANIFESTS = load_manifests()


def recorded_pages(slug: str) -> list:
    if VENDORS[slug].mode == "static":
        return [json.loads((CATALOGUES / f"{slug}.json").read_text())]
    return [json.loads((RECORDINGS / slug / r["payload"]).read_text()) for r in MANIFESTS[slug]["routes"]]


def paths(node, prefix=()):
    """Every (path to a value) in a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def replaced(document, path, value):
    document = copy.deepcopy(document)
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if value is _DELETE:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    return document


_DELETE = object()
WRONG = st.sampled_from([_DELETE, None, "", "n/a", -1, 0, 1e30, [], {}, {"unexpected": True}, True])


@pytest.mark.parametrize("slug", sorted(VENDORS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_corruption_is_a_payload_error_or_valid_offers(slug, data):
    pages = recorded_pages(slug)
    page_index = data.draw(st.integers(0, len(pages) - 1), label="page")
    path = data.draw(st.sampled_from(list(paths(pages[page_index]))), label="path")
    corrupted = list(pages)
    corrupted[page_index] = replaced(pages[page_index], path, data.draw(WRONG, label="value"))
    hook = VENDORS[slug].hook_class()()
    try:
        batch = hook.parse(corrupted, NOW)
    except PayloadError as error:
        assert str(error).startswith(f"{slug}: malformed payload")
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
    for row in rows:
        row["gpu_ram"] = MEMORY_MIB[row["gpu_name"]]
    batch = VastAiHook().parse([{"offers": rows}], NOW)
    assert len(batch.offers) == len(rows) and not batch.memory_mismatches
    for offer, row in zip(batch.offers, rows):
        assert offer.price_per_hour > 0 and offer.offer_id == str(row["id"])
        assert gpus.BY_NAME[offer.gpu_model].memory_matches(offer.gpu_memory_gb)
        assert offer.spot_price is None or offer.spot_price <= offer.price_per_hour
        assert all(getattr(offer, f) is not None for f in ("instance_type", "gpu_vendor", "region", "observed_at"))
