from django.apps import AppConfig


class AdminApiConfig(AppConfig):
    name = "admin_api"
    default_auto_field = "django.db.models.BigAutoField"
