"""Fixtures of the data-quality tests (test_quality.py, test_dq_page.py).

`gx_project`: a GX project of the tests' own, a copy of great_expectations/gx (its config and the
committed suite, none of its stored results or built Data Docs), so that the validations tests run are
kept, and the Data Docs they build are built, there and not in the project the local stack serves.

`lambda_cloud`: Lambda's recorded listing served by the replay server (the vendor's test double) with
a CPU-only instance type and one of a GPU the registry does not know added; its syncs land in the
test database.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from gpubroker import quality, settings
from tests.conftest import REPLAY_KEY, recording

_CACHED = (quality._project, quality._suite, quality._expectation)
UNKNOWN_GPU = ("gpu_1x_zx9", "1x ZX9 (48 GB PCIe)")  # the registry knows no "ZX9"
CPU_ONLY = ("cpu_4x_general", "4x vCPU")


@pytest.fixture(scope="module")
def gx_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gx") / "great_expectations"
    shutil.copytree(quality.GX_ROOT / "gx", root / "gx", ignore=shutil.ignore_patterns("uncommitted", "vendor", "node_modules"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "GX_ROOT", root)
        patch.setattr(quality, "DOCS_DIR", root / "gx" / "uncommitted" / "data_docs" / "local_site")
        patch.setattr(quality, "RESULTS_DIR", root / "gx" / "uncommitted" / "validations")
        for cached in _CACHED:
            cached.cache_clear()
        yield root
    for cached in _CACHED:
        cached.cache_clear()


@pytest.fixture
def lambda_cloud(pg_url, replay, isolated_redis, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    monkeypatch.setattr(settings, "STAGING_URL", tmp_path.as_uri())
    monkeypatch.setenv("AIRFLOW_CONN_GPUBROKER_LAMBDA", json.dumps(
        {"conn_type": "gpubroker_lambda", "host": replay.vendor_url("lambda"), "password": REPLAY_KEY}))  # fmt: skip
    body = recording("lambda", "instance-types.json")
    like = next(iter(body["data"].values()))
    for (name, description), gpus in ((CPU_ONLY, 0), (UNKNOWN_GPU, 1)):
        entry = copy.deepcopy(like)
        entry["instance_type"] |= {"name": name, "description": description, "gpu_description": description[3:]}
        entry["instance_type"]["specs"]["gpus"] = gpus
        body["data"][name] = entry
    replay.put("lambda", "instance-types.json", body)
