"""The provider package as Airflow sees it, and the DAGs' integrity."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

import airflow
from gpubroker_provider import get_provider_info
from gpubroker_provider.vendors import VENDORS, UnknownProvider, hook_class, vendor

ROOT = Path(__file__).resolve().parent.parent


def test_provider_info_is_valid_for_airflow():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert {c["connection-type"] for c in info["connection-types"]} == {f"gpubroker_{slug}" for slug in VENDORS}


def test_airflow_lists_the_provider_and_its_connection_types():
    bin_dir = Path(sys.executable).parent
    providers = subprocess.run([bin_dir / "airflow", "providers", "list"], capture_output=True, text=True, check=True)
    assert "gpubroker" in providers.stdout
    conns = subprocess.run(
        [bin_dir / "airflow", "providers", "hooks", "--output", "json"], capture_output=True, text=True, check=True
    )
    types = {row["connection_type"] for row in json.loads(conns.stdout)}
    assert {f"gpubroker_{slug}" for slug in VENDORS} <= types


def test_every_vendor_hook_imports_and_names_its_vendor():
    for slug, row in VENDORS.items():
        assert hook_class(row.slug).vendor is row


def test_unknown_provider_message_lists_the_known_ones():
    try:
        vendor("nosuchcloud")
    except UnknownProvider as error:
        assert "nosuchcloud" in str(error) and "vastai" in str(error)
    else:
        raise AssertionError("unknown provider accepted")


def test_dags_import_cleanly_with_tags_docs_and_retries():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=ROOT / "dags")
    assert bag.import_errors == {}
    assert "gpubroker_data_sync" in bag.dags
    for dag_id, dag in bag.dags.items():
        assert dag.tags and dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id}"


def test_the_vendor_docs_are_generated_from_the_code():
    from gpubroker_provider.vendor_docs import render

    assert (ROOT / "plugins" / "VENDORS.md").read_text() == render(), "run: python -m gpubroker_provider.vendor_docs > plugins/VENDORS.md"


def test_the_readme_lists_every_vendor_with_its_source_and_cadence():
    from gpubroker_provider.vendor_docs import with_readme_table

    readme = (ROOT / "README.md").read_text()
    assert readme == with_readme_table(readme), "run: python -m gpubroker_provider.vendor_docs --readme"
    for row in VENDORS.values():
        assert f"| {row.name} (`{row.slug}`) | {row.source} |" in readme
