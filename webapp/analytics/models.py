"""Tables of the stream's results. The Flink analytics job writes them (JDBC sink, upserts on each
table's key, see flink/README.md); the webapp only reads them (analytics/queries.py).

Prices are USD per hour (`price_per_gpu`: per GPU per hour), as in `gpubroker.schema`.
"""

from django.db import models


class Anomaly(models.Model):
    """One `anomaly` event (gpubroker.schema.Anomaly); its event id is its key, so a replay rewrites it."""

    event_id = models.UUIDField(primary_key=True)
    provider = models.CharField(max_length=32)
    offer_id = models.CharField(max_length=200)
    gpu = models.CharField(max_length=32)
    gpu_form_factor = models.CharField(max_length=8, null=True)
    region = models.CharField(max_length=64)
    price_per_hour = models.DecimalField(max_digits=12, decimal_places=4)
    price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    mean = models.FloatField(null=True)  # of the trailing window's price per GPU (zscore)
    stddev = models.FloatField(null=True)
    z = models.FloatField(null=True)
    reason = models.CharField(max_length=8, choices=[("zscore", "zscore"), ("drop", "drop")])
    old_price = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    observed_at = models.DateTimeField()
    detected_at = models.DateTimeField()

    class Meta:
        db_table = "anomalies"
        indexes = [
            models.Index(fields=["-observed_at"], name="anomalies_newest_idx"),
            models.Index(fields=["gpu", "-observed_at"], name="anomalies_gpu_idx"),
            models.Index(fields=["provider", "-observed_at"], name="anomalies_provider_idx"),
        ]


class GpuPriceAggregate(models.Model):
    """One GPU model's offers in one 1-minute event-time window, per provider or per continent
    (gpubroker.schema.PriceAggregate): a time series, one row per (gpu, dimension, value, window)."""

    gpu = models.CharField(max_length=32)
    dimension = models.CharField(max_length=16, choices=[("provider", "provider"), ("continent", "continent")])
    value = models.CharField(max_length=32)  # the provider slug or continent code ("??" when unknown)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    min_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    avg_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    max_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    offers = models.IntegerField()
    available = models.IntegerField()  # offers available or limited

    class Meta:
        db_table = "gpu_price_aggregates"
        constraints = [
            # the Flink sink upserts on exactly these columns
            models.UniqueConstraint(fields=["gpu", "dimension", "value", "window_start"], name="gpu_price_aggregates_key")
        ]
        indexes = [
            models.Index(fields=["gpu", "window_start"], name="gpu_price_aggregates_series"),  # /gpus/{gpu}/stats
            models.Index(fields=["window_start"], name="gpu_price_aggregates_time"),  # /gpus: 24 h ago
        ]
