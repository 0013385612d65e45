"""Tables of the curated data. Django migrations own them; the sync writes them in bulk SQL.

Columns mirror `gpubroker.schema.Offer` field for field (a test keeps the two in step).
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Value

from gateway.models import ApiKey
from gateway.plans import Plan
from gpubroker.schema import Availability, Interconnect, PricingType, Tag


class OfferColumns(models.Model):
    """The columns of an offer (`gpubroker.schema.Offer`), public or owned."""

    provider = models.CharField(max_length=32)
    offer_id = models.CharField(max_length=200)
    instance_type = models.CharField(max_length=200)
    gpu_model = models.CharField(max_length=32)
    gpu_form_factor = models.CharField(max_length=8, null=True)
    gpu_vendor = models.CharField(max_length=16)
    gpu_count = models.SmallIntegerField()
    gpu_memory_gb = models.FloatField()
    vcpus = models.IntegerField(null=True)
    ram_gb = models.FloatField(null=True)
    disk_gb = models.FloatField(null=True)
    price_per_hour = models.DecimalField(max_digits=12, decimal_places=4)
    spot_price = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    region = models.CharField(max_length=64)
    country = models.CharField(max_length=2, null=True)
    continent = models.CharField(max_length=2, null=True)
    availability = models.CharField(max_length=16, choices=[(a.value, a.value) for a in Availability])
    available_count = models.IntegerField(null=True)
    cpu_arch = models.CharField(max_length=16, null=True)
    interconnect = models.CharField(max_length=16, null=True, choices=[(i.value, i.value) for i in Interconnect])
    pricing_type = models.CharField(max_length=16, default=PricingType.ON_DEMAND.value,
                                    choices=[(p.value, p.value) for p in PricingType])
    commitment_months = models.SmallIntegerField(null=True)
    cloud = models.CharField(max_length=64, null=True)
    inferred = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    # a database default too: a writer that predates the column (a running sync during a deploy) still inserts
    tags = ArrayField(models.CharField(max_length=32, choices=[(t.value, t.value) for t in Tag]), default=list,
                      db_default=Value([]), blank=True)  # fmt: skip
    observed_at = models.DateTimeField()
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # what the landing that last updated the offer found (NULL: never updated since first seen); the
    # upsert keeps them so that it reads old values through its conflict, never through a lookup
    previous_price = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    previous_availability = models.CharField(max_length=16, null=True)

    class Meta:
        abstract = True


class Offer(OfferColumns):
    """A public offer: every client sees it."""

    class Meta:
        db_table = "offers"
        constraints = [models.UniqueConstraint(fields=["provider", "offer_id"], name="offers_provider_offer_key")]
        indexes = [
            models.Index(fields=["gpu_model", "price_per_hour"], name="offers_gpu_price_idx"),
            models.Index(fields=["provider", "price_per_hour"], name="offers_provider_price_idx"),
            models.Index(fields=["region"], name="offers_region_idx"),
            models.Index(fields=["price_per_hour"], name="offers_price_idx"),
            models.Index(fields=["pricing_type", "gpu_model"], name="offers_pricing_gpu_idx"),
        ]


class OwnedOffer(OfferColumns):
    """An offer landed with an API key's own vendor credentials (a provider integration): only that
    key's searches see it (`gpubroker.search.build(owner=...)`), beside the public offers. Kept apart
    from `offers` so that no reader of the public catalogue (the search, the stream, analytics, alerts,
    the feed) can show it by forgetting a filter. No price history, no events: those are public."""

    owner = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="owned_offers")

    class Meta:
        db_table = "owned_offers"
        constraints = [models.UniqueConstraint(fields=["owner", "provider", "offer_id"], name="owned_offers_key")]


class PriceHistory(models.Model):
    """One row each time an offer's price is first seen or changes."""

    provider = models.CharField(max_length=32)
    offer_id = models.CharField(max_length=200)
    price_per_hour = models.DecimalField(max_digits=12, decimal_places=4)
    spot_price = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    observed_at = models.DateTimeField()

    class Meta:
        db_table = "price_history"
        indexes = [models.Index(fields=["provider", "offer_id", "observed_at"], name="price_history_offer_idx")]


class EventOutbox(models.Model):
    """Events written in the same transaction as the data they describe; published to Kafka after.

    A row stays unpublished until Kafka acknowledges it, so a Kafka outage loses nothing.
    """

    event_id = models.UUIDField(unique=True)
    topic = models.CharField(max_length=64)
    key = models.CharField(max_length=240)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "event_outbox"
        indexes = [
            models.Index(
                fields=["id"], name="event_outbox_pending_idx", condition=models.Q(published_at__isnull=True)
            ),
            models.Index(  # pruning published rows (gpubroker.events.prune_published)
                fields=["published_at"], name="event_outbox_published_idx", condition=models.Q(published_at__isnull=False)
            ),
        ]


class ProviderStatus(models.Model):
    """Per provider: when its data last passed the gate, and whether what is served is stale."""

    provider = models.CharField(max_length=32, primary_key=True)
    last_good_at = models.DateTimeField(null=True)
    last_good_rows = models.IntegerField(null=True)
    stale = models.BooleanField(default=False)
    stale_reason = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "provider_status"


class Quarantine(models.Model):
    """A provider batch the data-quality gate refused: kept whole, never landed."""

    provider = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()
    failures = models.JSONField()  # failed expectations with sample values
    sample_rows = models.JSONField()  # a few normalised offers of the batch
    rows = models.IntegerField()
    raw_ref = models.CharField(max_length=500)  # the raw vendor payload, kept in the quarantine folder
    offers_ref = models.CharField(max_length=500)
    approved_at = models.DateTimeField(null=True)  # an operator landed it (`gpubroker quarantine approve ID`)

    class Meta:
        db_table = "quarantine"
        indexes = [models.Index(fields=["provider", "created_at"], name="quarantine_provider_idx")]


class GateReport(models.Model):
    """One run of the data-quality gate over a provider batch (columns: gpubroker.quality's docstring)."""

    provider = models.CharField(max_length=32)
    run_at = models.DateTimeField()
    observed_at = models.DateTimeField()
    outcome = models.CharField(max_length=16)  # landed, quarantined, approved
    success = models.BooleanField()
    items = models.IntegerField()
    rows_in = models.IntegerField()
    rows_landed = models.IntegerField()
    rows_dropped = models.IntegerField()
    parse_dropped = models.JSONField(default=dict)
    parse_skipped = models.JSONField(default=dict)
    gate_dropped = models.JSONField(default=dict)
    failures = models.JSONField(default=list)
    baseline_rows = models.IntegerField(null=True)
    baseline_source = models.CharField(max_length=16)
    quarantine_id = models.BigIntegerField(null=True)
    timings = models.JSONField(default=dict)

    class Meta:
        db_table = "gate_reports"
        indexes = [models.Index(fields=["provider", "-run_at"], name="gate_reports_provider_idx")]


class ProviderHealth(models.Model):
    """History of provider health checks (the current status lives in Redis: `gpubroker:health`)."""

    provider = models.CharField(max_length=32)
    checked_at = models.DateTimeField()
    status = models.CharField(max_length=16)  # healthy, degraded, down
    latency_ms = models.IntegerField()
    weight = models.FloatField()
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "provider_health"
        indexes = [models.Index(fields=["provider", "checked_at"], name="provider_health_idx")]


class WebhookDelivery(models.Model):
    """Every attempt to deliver a webhook; a webhook id with a delivered row is never sent again."""

    webhook_id = models.CharField(max_length=64)
    url = models.URLField(max_length=2000)
    event_type = models.CharField(max_length=32)
    attempt = models.SmallIntegerField()
    status_code = models.SmallIntegerField(null=True)
    latency_ms = models.IntegerField()
    error = models.TextField(blank=True, default="")
    delivered = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "webhook_delivery"
        indexes = [models.Index(fields=["webhook_id"], name="webhook_delivery_id_idx")]


class WebhookAllowedHost(models.Model):
    """A webhook host exempt from the internal-address check (e.g. a receiver on the private network),
    for one owner: an API key's alert rules (`key`), the alert rules of a plan's keys (`plan`), or,
    with neither, the operator's own webhooks (those without an alert rule: DAG-run conf, producers
    on gpubroker.webhooks). Never for anyone else.

    Read by every delivery, so adding one needs no restart: `manage.py webhook_allowlist add HOST`.
    """

    host = models.CharField(max_length=253)  # lower-case host name or IP literal
    key = models.ForeignKey("gateway.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_hosts")
    plan = models.CharField(max_length=16, null=True, blank=True, choices=[(p.value, p.value) for p in Plan])
    note = models.TextField(blank=True, default="")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_allowlist"
        constraints = [
            models.UniqueConstraint(fields=["host", "key", "plan"], name="webhook_allowlist_once", nulls_distinct=False),
            models.CheckConstraint(condition=models.Q(key__isnull=True) | models.Q(plan__isnull=True),
                                   name="webhook_allowlist_one_owner"),
        ]  # fmt: skip
