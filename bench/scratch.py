"""The scratch database a landing bench writes in (upsert.py, ingest.py): a database of its own on the
stack's PostgreSQL, created and migrated on first use, so no bench row reaches the stack's tables,
its outbox relay or Kafka."""

from __future__ import annotations

import os

import psycopg

from gpubroker import settings


def use(database: str) -> None:
    """Point gpubroker.settings and Django at `database`, set Django up, and create and migrate the
    database if it is new. Call before importing anything that needs Django."""
    stack_url = settings.DATABASE_URL
    settings.DATABASE_URL = os.environ["GPUBROKER_DATABASE_URL"] = stack_url.rsplit("/", 1)[0] + f"/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker_web.settings")
    import django
    from django.core.management import call_command

    django.setup()
    with psycopg.connect(stack_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            admin.execute(f"CREATE DATABASE {database}")
    call_command("migrate", verbosity=0)
