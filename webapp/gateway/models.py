"""API keys. Only a SHA-256 digest of each key is stored; the key itself is shown once, at creation."""

from django.db import models

from gateway.plans import Plan


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    plan = models.CharField(max_length=16, choices=[(p.value, p.value) for p in Plan])
    digest = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the whole key
    prefix = models.CharField(max_length=12)  # the key's first characters, to recognise it in lists
    admin = models.BooleanField(db_default=False)  # may call /api/v1/admin/... (webapp/admin_api)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name} ({self.plan}{', admin' if self.admin else ''})"
