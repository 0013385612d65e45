"""The Docker-based deployment files cannot run here (no Docker engine): keep them valid and in step."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ASTRO = ROOT / "astro"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", line):
            found[m.group(1).lower()] = m.group(2)
    return found


def test_astro_requirements_match_the_lock():
    lock, astro = pins(ASTRO / "local" / "requirements.lock"), pins(ASTRO / "requirements.txt")
    assert astro and {name: lock.get(name) for name in astro} == astro


def test_compose_runs_every_local_stack_service():
    compose = yaml.safe_load((ASTRO / "docker-compose.yaml").read_text())
    stack = (ASTRO / "local" / "stack.sh").read_text()
    services = re.search(r"SERVICES=\(([^)]*)\)", stack).group(1).split()
    assert set(services) <= set(compose["services"])


def test_airflow_settings_define_a_connection_per_api_vendor_and_kafka():
    from gpubroker_provider.vendors import VENDORS

    settings = yaml.safe_load((ASTRO / "airflow_settings.yaml").read_text())
    conns = {c["conn_id"]: c["conn_type"] for c in settings["airflow"]["connections"]}
    assert conns == {v.default_conn_id: v.conn_type for v in VENDORS.values() if v.source == "api"} | {
        "gpubroker_kafka": "kafka"
    }


def test_dockerfile_builds_on_airflow_3_runtime():
    first = (ASTRO / "Dockerfile").read_text().split("\nFROM ", 1)[1].split()[0]
    assert first.startswith("astrocrpublic.azurecr.io/runtime:3.3")


def compose_services() -> dict:
    return yaml.safe_load((ASTRO / "docker-compose.yaml").read_text())["services"]


def test_compose_publishes_only_the_ui_and_webapp_and_only_on_loopback():
    published = {name: s["ports"] for name, s in compose_services().items() if s.get("ports")}
    assert published == {"airflow-api-server": ["127.0.0.1:8080:8080"], "webapp": ["127.0.0.1:8000:8000"]}


def test_compose_keeps_kafka_and_the_data_stores_on_an_internal_network():
    compose = yaml.safe_load((ASTRO / "docker-compose.yaml").read_text())
    assert compose["networks"]["backend"] == {"internal": True}
    for name in ("postgres", "redis", "kafka", "replay", "airflow-dag-processor", "feed-bridge"):
        assert compose["services"][name]["networks"] == ["backend"], name  # no way in from outside


def environments(services: dict):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            yield name, key, str(value)


def test_compose_carries_no_credentials_only_references_to_astro_env():
    """Every secret comes from astro/.env through `${NAME:?...}` (compose refuses to start without it)."""
    secrets = re.compile(r"PASSWORD|SECRET|FERNET")
    for name, key, value in environments(compose_services()):
        if secrets.search(key):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{name}: {key} is not taken from astro/.env"
        for password in re.findall(r"://[^:/@]+:([^@]*)@", value):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", password), f"{name}: {key} embeds a password"
    init = (ASTRO / "local" / "compose-init.sh").read_text()
    assert "PASSWORD :'gpubroker_password'" in init and "PASSWORD :'airflow_password'" in init
