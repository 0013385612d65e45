"""Runs last (files run in name order): no secret the suite used appears in any log the stack keeps.

Searched: every file under `.stack/logs` (services, Airflow task logs, Flink). Looked for: every API
key the tests made, the vendor key the replay server checks, and the stack's generated credentials
(PostgreSQL passwords, Django's secret key, the pipeline's API key, the Airflow admin password, the
webhook signing secret).
"""

from __future__ import annotations

import json

from tests.conftest import KEYS_USED, REPLAY_KEY, STATE, stack_secrets

SECRET_NAMES = ("PASSWORD", "SECRET_KEY", "API_KEY")


def secrets_used() -> dict[str, str]:
    found = {f"API key {key[:8]}...": key for key in KEYS_USED}
    found["the replay server's vendor key"] = REPLAY_KEY
    found |= {name: value for name, value in stack_secrets().items() if any(n in name for n in SECRET_NAMES)}
    passwords = STATE / "airflow" / "passwords.json"
    if passwords.exists():
        found |= {f"Airflow password of {user}": pw for user, pw in json.loads(passwords.read_text()).items()}
    webhook = STATE / "airflow" / "webhook.secret"
    if webhook.exists():
        found["the webhook signing secret"] = webhook.read_text().strip()
    return {name: value for name, value in found.items() if len(value) >= 8}


def test_no_log_under_the_stack_holds_a_secret_the_tests_used():
    secrets = secrets_used()
    assert len(secrets) >= 5, sorted(secrets)  # the stack's credentials at least
    logs = [path for path in (STATE / "logs").rglob("*") if path.is_file()]
    assert logs
    leaks = []
    for path in logs:
        data = path.read_bytes()
        leaks += [f"{name} in {path.relative_to(STATE)}" for name, value in secrets.items() if value.encode() in data]
    assert not leaks, leaks
