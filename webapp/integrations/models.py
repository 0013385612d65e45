"""Provider integrations: an API key's own credentials for a vendor. The key itself is in Vault only
(gpubroker_provider.hooks.vault); this row keeps what may be shown, and the last check's result."""

from django.db import models

from gateway.models import ApiKey
from gpubroker.integrations import Status


class Integration(models.Model):
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=32)  # a vendor slug whose API takes a key
    api_url = models.URLField(max_length=2000, null=True)  # None: the vendor's own API (its Airflow connection's)
    status = models.CharField(max_length=16, choices=[(s.value, s.value) for s in Status])
    message = models.TextField(blank=True, default="")
    last_checked = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integrations"
        constraints = [models.UniqueConstraint(fields=["key", "provider"], name="integration_once")]
