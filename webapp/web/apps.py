from django.apps import AppConfig


class WebConfig(AppConfig):
    """The human pages: the live offers page at `/` and the data-quality pages under `/dq/`."""

    name = "web"
