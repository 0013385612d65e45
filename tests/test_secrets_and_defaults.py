"""No known credentials: Django needs a secret key outside local development; the local stack's
PostgreSQL roles and Airflow login use the passwords it generated (kept in .stack), not defaults."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx
import psycopg
import pytest

from tests.conftest import ROOT, STATE, stack_secrets


def start_django(**env: str) -> subprocess.CompletedProcess:
    """Load the webapp's settings in a fresh process, as uvicorn or manage.py would."""
    clean = {k: v for k, v in os.environ.items() if k not in ("GPUBROKER_ENV", "GPUBROKER_SECRET_KEY", "GPUBROKER_DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"],
        cwd=ROOT / "webapp", env={**clean, "DJANGO_SETTINGS_MODULE": "gpubroker_web.settings", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_django_refuses_to_start_without_a_secret_key_outside_local_development():
    refused = start_django()
    assert refused.returncode != 0
    assert "ImproperlyConfigured: GPUBROKER_SECRET_KEY is not set" in refused.stderr
    assert start_django(GPUBROKER_SECRET_KEY="k" * 50).stdout.strip() == "50"
    assert start_django(GPUBROKER_ENV="local").returncode == 0
    assert start_django(GPUBROKER_DEBUG="1").returncode == 0


@pytest.mark.stack
def test_the_stack_keeps_its_generated_credentials_private():
    for path in (STATE / "secrets.env", STATE / "airflow" / "passwords.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    secrets = stack_secrets()
    assert {"GPUBROKER_DB_PASSWORD", "AIRFLOW_DB_PASSWORD", "GPUBROKER_SECRET_KEY"} <= set(secrets)
    assert len({secrets["GPUBROKER_DB_PASSWORD"], secrets["AIRFLOW_DB_PASSWORD"], "gpubroker", "airflow"}) == 4
    shown = subprocess.run(["bash", str(ROOT / "astro/local/stack.sh"), "env"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "GPUBROKER_ENV=local" in shown.stdout
    hidden = {name: value for name, value in secrets.items() if name != "GPUBROKER_KAFKA_USER"}  # (a name, no secret)
    assert not [name for name, value in hidden.items() if value in shown.stdout]  # `stack.sh env` hides them


@pytest.mark.stack
@pytest.mark.parametrize("role", ["gpubroker", "airflow"])
def test_postgres_roles_refuse_the_old_default_password_and_take_the_generated_one(role):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://{role}:{role}@127.0.0.1:5432/{role}", connect_timeout=5)
    password = stack_secrets()[f"{role.upper()}_DB_PASSWORD"]
    with psycopg.connect(f"postgresql://{role}:{password}@127.0.0.1:5432/{role}", connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


@pytest.mark.stack
def test_airflow_refuses_admin_admin_and_takes_the_generated_password():
    password = json.loads((STATE / "airflow" / "passwords.json").read_text())["admin"]
    assert password != "admin" and len(password) >= 32
    token = "http://127.0.0.1:8080/auth/token"
    assert httpx.post(token, json={"username": "admin", "password": "admin"}).status_code == 401
    assert httpx.post(token, json={"username": "admin", "password": password}).status_code in (200, 201)
