"""Alert rules (owned by an API key) and the matches they made (one per rule and event)."""

from django.db import models

from gateway.models import ApiKey


class AlertRule(models.Model):
    """Conditions on the change, anomaly and availability streams, and where to send a match.

    Every condition given must hold; the kinds of event a rule watches: anomalies when `anomaly`,
    offers becoming available when `becomes_available`, price changes when neither.
    """

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100, blank=True, default="")
    gpu = models.CharField(max_length=64, null=True)  # canonical model (gpus.resolve)
    providers = models.JSONField(null=True)  # provider slugs; null: any
    region = models.CharField(max_length=64, null=True)  # lower case
    country = models.CharField(max_length=2, null=True)
    continent = models.CharField(max_length=2, null=True)
    max_price = models.DecimalField(max_digits=12, decimal_places=4, null=True)  # USD per hour, whole offer
    max_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4, null=True)  # USD per GPU-hour
    drop_percent = models.FloatField(null=True)  # price fell by at least this many percent
    anomaly = models.BooleanField(default=False)
    becomes_available = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=64)  # whsec_...: shown once, read by the delivery to sign
    cooldown_seconds = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_fired_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "alert_rules"


class AlertMatch(models.Model):
    """A rule matched an event: recorded before its webhook request is produced (once per pair);
    `produced_at` is set when Kafka acknowledged the request (until then the matcher re-sends it)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="matches")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=32)
    webhook_id = models.CharField(max_length=64, unique=True)
    request = models.JSONField()  # the gpubroker.webhooks message
    matched_at = models.DateTimeField(auto_now_add=True)
    produced_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "alert_matches"
        constraints = [models.UniqueConstraint(fields=["rule", "event_id"], name="alert_match_once")]
        indexes = [models.Index(fields=["produced_at"], name="alert_match_pending_idx",
                                condition=models.Q(produced_at__isnull=True))]  # fmt: skip
