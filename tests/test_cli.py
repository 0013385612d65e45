"""The `gpubroker` command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpubroker.schema import Offer
from gpubroker_provider.cli import main
from gpubroker_provider.replay.server import load_manifests
from gpubroker_provider.vendors import VENDORS, hook_class
from tests.conftest import RECORDINGS

MANIFESTS = load_manifests()
API = sorted(slug for slug, v in VENDORS.items() if v.source == "api")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_is_installed():
    result = subprocess.run([Path(sys.executable).parent / "gpubroker", "providers"], capture_output=True, text=True)
    assert result.returncode == 0
    assert len(result.stdout.strip().splitlines()) == len(VENDORS) + 1


@pytest.mark.parametrize("slug", sorted(VENDORS))
def test_offers_prints_a_table_for_every_vendor(capsys, monkeypatch, replay, slug):
    monkeypatch.setenv("GPUBROKER_REPLAY_URL", replay.base_url)
    code, out, err = run(capsys, "offers", "--provider", slug)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["OFFER_ID", "GPU", "MEM_GB"] and len(lines) > 1
    assert f"{len(lines) - 1} offers from {VENDORS[slug].name}" in err


def test_offers_filters_by_any_gpu_alias(capsys, monkeypatch, replay):
    monkeypatch.setenv("GPUBROKER_REPLAY_URL", replay.base_url)
    code, out, _ = run(capsys, "offers", "--provider", "vastai", "--gpu", "NVIDIA GeForce RTX 4090")
    rows = out.strip().splitlines()[1:]
    assert code == 0 and rows and all("RTX4090" in r for r in rows)


PRIMARY_ONLY = [s for s in API if hook_class(s).primary_only]


def primary_recording(slug: str):
    """The recorded body of the call the vendor table names as the primary listing."""
    routes = MANIFESTS[slug]["routes"]
    route = next((r for r in routes if VENDORS[slug].endpoint.startswith(f"{r['method']} {r['path']}")), routes[0])
    return RECORDINGS / slug / route["payload"]


@pytest.mark.parametrize("slug", PRIMARY_ONLY)
def test_normalize_reads_a_saved_primary_listing_body(capsys, slug):
    primary = primary_recording(slug)
    code, out, err = run(capsys, "normalize", "--provider", slug, str(primary))
    assert code == 0, err
    offers = [Offer.model_validate_json(line) for line in out.strip().splitlines()]
    assert offers and {o.provider for o in offers} == {slug}


@pytest.mark.parametrize("slug", sorted(set(API) - set(PRIMARY_ONLY)))
def test_vendors_joining_several_calls_normalize_a_syncs_raw_file(capsys, replay, tmp_path, slug):
    primary = primary_recording(slug)
    code, _, err = run(capsys, "normalize", "--provider", slug, str(primary))
    assert code == 2 and "pass a sync's raw.json" in err
    hook = hook_class(slug)(base_url=replay.vendor_url(slug), api_key="replay-key")
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"provider": slug, "observed_at": "2026-11-26T12:00:00+00:00", "pages": hook.fetch_raw()}))
    code, out, err = run(capsys, "normalize", "--provider", slug, str(raw))
    assert code == 0, err
    assert len(out.strip().splitlines()) == len(hook.fetch_batch().offers)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["offers", "--provider", "nosuchcloud"], "unknown provider 'nosuchcloud'"),
        (["offers", "--provider", "vastai", "--gpu", "Voodoo 5"], "unknown GPU name"),
        (["normalize", "--provider", "vastai", "/nonexistent.json"], "cannot read /nonexistent.json"),
        (["normalize", "--provider", "nosuchcloud", "x.json"], "unknown provider"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gpubroker: ") and message in err


def test_a_file_in_the_wrong_format_is_refused(capsys, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"data": []}))
    code, _, err = run(capsys, "normalize", "--provider", "vastai", str(wrong))
    assert code == 2 and "malformed payload" in err and "POST /api/v0/bundles/" in err
    not_json = tmp_path / "page.html"
    not_json.write_text("<html>")
    code, _, err = run(capsys, "normalize", "--provider", "vastai", str(not_json))
    assert code == 2 and "is not JSON" in err


def test_unreachable_vendor_exits_1(capsys, monkeypatch):
    monkeypatch.setenv("GPUBROKER_REPLAY_URL", "http://127.0.0.1:9")
    code, _, err = run(capsys, "offers", "--provider", "vastai")
    assert code == 1 and "ConnectError" in err
