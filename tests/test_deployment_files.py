"""The Docker-based deployment files cannot run here (no Docker engine): keep them valid and in step."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from gpubroker import access

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


def stack_services(tmp_path: Path, brokers: int) -> list[str]:
    """The local stack's services as stack.sh itself lists them (`stack.sh services`)."""
    env = os.environ | {"GPUBROKER_STATE": str(tmp_path), "GPUBROKER_KAFKA_BROKERS": str(brokers)}
    listed = subprocess.run(["bash", str(ASTRO / "local" / "stack.sh"), "services"], env=env, capture_output=True,
                            text=True, timeout=30, check=True)  # fmt: skip
    return listed.stdout.split()


@pytest.mark.parametrize("brokers", [1, 3])
def test_compose_runs_every_local_stack_service(tmp_path, brokers):
    services = stack_services(tmp_path, brokers)
    assert {"alert-matcher", "outbox-relay", "feed-bridge", "webapp", "kafka"} <= set(services)  # the real list
    assert len(services) == len(set(services)) and len([s for s in services if s.startswith("kafka")]) == brokers
    assert set(services) <= set(compose_services())


def test_airflow_settings_define_a_connection_per_api_vendor_and_none_with_a_password():
    from gpubroker_provider.vendors import VENDORS

    settings = yaml.safe_load((ASTRO / "airflow_settings.yaml").read_text())
    conns = {c["conn_id"]: c["conn_type"] for c in settings["airflow"]["connections"]}
    assert conns == {v.default_conn_id: v.conn_type for v in VENDORS.values() if v.source == "api"}


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
    for name in ("postgres", "redis", "kafka", "kafka-2", "kafka-3", "replay", "airflow-dag-processor", "feed-bridge",
                 "alert-matcher", "outbox-relay"):
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
    kafka = json.loads(compose_services()["airflow-triggerer"]["environment"]["AIRFLOW_CONN_GPUBROKER_KAFKA"])
    assert re.fullmatch(r"\$\{KAFKA_PASSWORD_TRIGGERER:\?[^}]+\}", kafka["extra"]["sasl.password"])


def test_compose_runs_three_kafka_brokers_and_every_client_knows_them():
    services = compose_services()
    nodes = {name: s for name, s in services.items() if s.get("image", "").startswith("apache/kafka")}
    assert sorted(nodes) == ["kafka", "kafka-2", "kafka-3"]
    assert sorted(n["environment"]["KAFKA_NODE_ID"] for n in nodes.values()) == [1, 2, 3]
    assert {n["environment"]["KAFKA_VOTERS"] for n in nodes.values()} == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({str(n["volumes"]) for n in nodes.values()}) == 3  # a data volume each
    bootstrap = {s["environment"]["GPUBROKER_KAFKA_BOOTSTRAP"] for s in services.values()
                 if "GPUBROKER_KAFKA_BOOTSTRAP" in (s.get("environment") or {})}  # fmt: skip
    watcher = json.loads(services["airflow-triggerer"]["environment"]["AIRFLOW_CONN_GPUBROKER_KAFKA"])["extra"]
    assert bootstrap | {watcher["bootstrap.servers"]} == {"kafka:9092,kafka-2:9092,kafka-3:9092"}
    assert "python -m gpubroker.access --brokers 3" in services["airflow-init"]["command"]


# Who each compose service is to Kafka and to Redis: the local stack starts them the same way (stack.sh `as_principal`).
PRINCIPALS = {"webapp": ("api", "webapp"), "feed-bridge": ("bridge", "bridge"), "alert-matcher": ("matcher", None),
              "outbox-relay": ("pipeline", None), "airflow-scheduler": ("pipeline", "pipeline"),
              "flink-jobmanager": ("flink", None), "airflow-init": ("admin", None)}  # fmt: skip


def test_compose_runs_each_component_as_its_own_principal_and_none_as_another():
    services = compose_services()
    redis_users = re.findall(r"^user (\w+) ", (ASTRO / "local" / "redis" / "users.acl").read_text(), re.M)
    for name, service in services.items():
        env = service.get("environment") or {}
        kafka, redis = PRINCIPALS.get(name, (None, None))
        assert env.get("GPUBROKER_KAFKA_USER") == kafka, name
        if kafka:
            assert kafka in access.PRINCIPALS
            assert env["GPUBROKER_KAFKA_PASSWORD"].startswith(f"${{KAFKA_PASSWORD_{kafka.upper()}:?"), name
        url = env.get("GPUBROKER_REDIS_URL")
        assert (url and re.match(r"redis://(\w+):", url).group(1)) == (redis or None), name
        assert not redis or redis in redis_users
    init = services["airflow-init"]["environment"]  # sets every principal's password
    principals = ("broker", *access.PRINCIPALS)
    assert {k for k in init if k.startswith("KAFKA_PASSWORD_")} == {f"KAFKA_PASSWORD_{p.upper()}" for p in principals}
    assert set(services["redis"]["environment"]) == {f"REDIS_PASSWORD_{u.upper()}" for u in redis_users if u != "default"}
