"""Django settings. Connection settings come from `gpubroker.settings` (one place, env-driven)."""

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from gpubroker import settings as gpubroker_settings

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = os.environ.get("GPUBROKER_DEBUG", "") == "1"
# Local development: GPUBROKER_ENV=local (the local stack sets it), DEBUG, or a test run.
LOCAL_DEVELOPMENT = os.environ.get("GPUBROKER_ENV", "") == "local" or DEBUG or "pytest" in sys.modules
SECRET_KEY = os.environ.get("GPUBROKER_SECRET_KEY") or ("insecure-local-development-key" if LOCAL_DEVELOPMENT else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "GPUBROKER_SECRET_KEY is not set: outside local development the webapp needs a secret key of its own"
        " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'); for local development set"
        " GPUBROKER_ENV=local"
    )
ALLOWED_HOSTS = os.environ.get("GPUBROKER_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
    "gateway",
    "offers",
    "feed",
    "analytics",
    "alerts",
    "integrations",
    "admin_api",
    "graphql_api",
    "web",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "gpubroker_web.urls"
ASGI_APPLICATION = "gpubroker_web.asgi.application"
TEMPLATES = [
    {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
     "OPTIONS": {"context_processors": ["django.template.context_processors.request"]}},  # base.html's nav: request.path
]


def _database(url: str) -> dict:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # pytest-django's database; a name of its own lets two test runs share one PostgreSQL
        "TEST": {"NAME": os.environ.get("GPUBROKER_TEST_DATABASE")},
    }


DATABASES = {"default": _database(gpubroker_settings.DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# No channel layer: the live feed fans out inside each worker from one Redis stream (webapp/feed/).
CHANNEL_LAYERS: dict = {}
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
