"""Runtime settings, read from the environment once; defaults are the local stack (`make up`).

Standard library only: the Flink jobs run in their own virtualenv and import this module too.
"""

import os
import tempfile
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


DATABASE_URL = _env("GPUBROKER_DATABASE_URL", "postgresql://gpubroker:gpubroker@127.0.0.1:5432/gpubroker")
REDIS_URL = _env("GPUBROKER_REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP = _env("GPUBROKER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")  # several: comma-separated
# This process's Kafka principal: the local stack starts each component as its own, with its own
# rights (gpubroker.access); a shell that loads .stack/secrets.env is the admin.
KAFKA_USER = _env("GPUBROKER_KAFKA_USER", "")
KAFKA_PASSWORD = _env("GPUBROKER_KAFKA_PASSWORD", "")


def kafka_config() -> dict[str, str]:
    """librdkafka settings every Kafka client of this process starts from: the bootstrap servers and,
    given a user, SASL/SCRAM-SHA-512 as that principal (without one, a secured Kafka refuses the client).
    Add the client's own settings: `Producer(settings.kafka_config() | {"linger.ms": 5})`."""
    config = {"bootstrap.servers": KAFKA_BOOTSTRAP}
    if KAFKA_USER:
        config |= {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                   "sasl.username": KAFKA_USER, "sasl.password": KAFKA_PASSWORD}  # fmt: skip
    return config


STAGING_DIR = Path(_env("GPUBROKER_STAGING_DIR", str(Path(tempfile.gettempdir()) / "gpubroker-staging")))
# Vendor base URLs default to the vendors themselves; the local stack points them at the replay server.
REPLAY_URL = _env("GPUBROKER_REPLAY_URL", "")


class Topics:
    """Kafka topics; every message is keyed by offer id (provider events, calls and scores by provider)."""

    PRICE_UPDATES = "gpubroker.price-updates"
    PRICE_CHANGES = "gpubroker.price-changes"
    ANOMALIES = "gpubroker.anomalies"
    AGGREGATIONS = "gpubroker.aggregations"
    PROVIDER_EVENTS = "gpubroker.provider-events"
    PROVIDER_CALLS = "gpubroker.provider-calls"  # each probe's and sync fetch's outcome (the health scores' input)
    HEALTH_SCORES = "gpubroker.health-scores"
    WEBHOOKS = "gpubroker.webhooks"
    DEAD_LETTER = "gpubroker.dead-letter"  # messages a consumer could not handle, with why (headers)

    ALL = (PRICE_UPDATES, PRICE_CHANGES, ANOMALIES, AGGREGATIONS, PROVIDER_EVENTS, PROVIDER_CALLS, HEALTH_SCORES,
           WEBHOOKS, DEAD_LETTER)  # fmt: skip


class Groups:
    """Kafka consumer groups of the stack's components (each principal may join only its own: gpubroker.access)."""

    FEED_BRIDGE = "gpubroker-feed-bridge"
    ALERT_MATCHER = "gpubroker-alert-matcher"
    WEBHOOK_WATCHER = "gpubroker-webhook-watcher"  # the triggerer's AssetWatcher (Airflow connection gpubroker_kafka)
    FLINK_PREFIX = "gpubroker-flink-"  # one group per Flink job: gpubroker-flink-price-changes, ...


WEBAPP_URL = _env("GPUBROKER_WEBAPP_URL", "http://127.0.0.1:8000")
# The Airflow UI, as the web page links to it (the browser's view of it, not the API client's).
AIRFLOW_URL = _env("GPUBROKER_AIRFLOW_URL", "http://127.0.0.1:8080")
# Airflow's REST API as the webapp's admin routes reach it (webapp/admin_api: warm, sync), and the
# Airflow user they trigger DAG runs as; without a password they run the jobs in the webapp itself.
AIRFLOW_API_URL = _env("GPUBROKER_AIRFLOW_API_URL", AIRFLOW_URL)
AIRFLOW_API_USER = _env("GPUBROKER_AIRFLOW_API_USER", "admin")
AIRFLOW_API_PASSWORD = _env("GPUBROKER_AIRFLOW_API_PASSWORD", "")
# The pipeline's own API key for the webapp (cache warming); the local stack creates it.
WEBAPP_API_KEY = _env("GPUBROKER_WEBAPP_API_KEY", "")
# Standard Webhooks signing secret ("whsec_" + base64 key); the local stack generates one.
WEBHOOK_SECRET = _env("GPUBROKER_WEBHOOK_SECRET", "")
# Webhook hosts exempt from the internal-address check (comma-separated); the `webhook_allowlist`
# table adds to it at run time (`manage.py webhook_allowlist add HOST`).
WEBHOOK_ALLOWLIST = frozenset(h.strip().lower() for h in _env("GPUBROKER_WEBHOOK_ALLOWLIST", "").split(",") if h.strip())
# Flink (flink/README.md): the session cluster's REST API, and how long the jobs keep an offer's state
# after its last observation (a Flink duration, e.g. "48 h"; state past it falls back to the event's old_*).
FLINK_REST_URL = _env("GPUBROKER_FLINK_REST_URL", "http://127.0.0.1:8081")
FLINK_STATE_TTL = _env("GPUBROKER_FLINK_STATE_TTL", "48 h")
# Published outbox rows are deleted this many days after Kafka acknowledged them (events.prune_published).
OUTBOX_RETENTION_DAYS = float(_env("GPUBROKER_OUTBOX_RETENTION_DAYS", "7"))
# Staging of raw vendor payloads and quarantined batches (gpubroker_provider/sync.py): an Airflow
# ObjectStoragePath URL (file:// locally; s3://bucket/prefix or gs://... in deployment, reached
# through the Airflow connection STAGING_CONN_ID). Defaults to STAGING_DIR.
STAGING_URL = _env("GPUBROKER_STAGING_URL", STAGING_DIR.as_uri()).rstrip("/")
STAGING_CONN_ID = _env("GPUBROKER_STAGING_CONN_ID", "") or None
# Vendor keys come from Vault first (gpubroker_provider/hooks/vault.py): the Airflow connection of the
# Vault server, and the user whose KV path the syncs read (gpubroker/users/{VAULT_USER}/providers/{slug}).
VAULT_CONN_ID = _env("GPUBROKER_VAULT_CONN_ID", "gpubroker_vault")
VAULT_USER = _env("GPUBROKER_VAULT_USER", "pipeline")
# The Great Expectations project of the data-quality gate (include/gpubroker/quality.py).
GX_ROOT = Path(_env("GPUBROKER_GX_ROOT", str(Path(__file__).resolve().parents[2] / "great_expectations")))
