"""Tables of the stream's results, and of the daily report. The Flink analytics job writes the first
two (JDBC sink, upserts on each table's key, see flink/README.md); the `gpubroker_analytics` DAG writes
the daily report's (`gpubroker.daily`: one set of rows per UTC day, replaced when the day is re-run).
The webapp only reads them (analytics/queries.py).

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


class DailyGpuPrice(models.Model):
    """One GPU model in the daily report of one UTC day (written by gpubroker.daily, which defines
    every figure): closing prices of the offers listed on the day, their changes, the anomalies seen."""

    day = models.DateField()
    gpu = models.CharField(max_length=32)
    offers = models.IntegerField()  # listed on the day
    cheapest_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4, null=True)  # null: anomalies only
    cheapest_provider = models.CharField(max_length=32, null=True)
    cheapest_offer_id = models.CharField(max_length=200, null=True)
    median_price_per_gpu = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    cheapest_change_1d = models.DecimalField(max_digits=12, decimal_places=2, null=True)  # percent
    cheapest_change_7d = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    median_change_1d = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    median_change_7d = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    anomalies_zscore = models.IntegerField()
    anomalies_drop = models.IntegerField()
    generated_at = models.DateTimeField()

    class Meta:
        db_table = "daily_gpu_prices"
        constraints = [models.UniqueConstraint(fields=["day", "gpu"], name="daily_gpu_prices_key")]


class DailyProviderStats(models.Model):
    """One provider in the daily report of one UTC day (written by gpubroker.daily, which defines every
    figure): offers listed, availability of its observations, health checks, syncs, anomalies.
    Percentages are null when there was nothing to count; the observations are null for a day the
    event outbox no longer held whole when the report was made."""

    day = models.DateField()
    provider = models.CharField(max_length=32)
    offers = models.IntegerField()
    observations = models.IntegerField(null=True)
    observed_available = models.IntegerField(null=True)  # available or limited
    observed_unavailable = models.IntegerField(null=True)  # the rest: availability not stated
    availability_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    health_checks = models.IntegerField()
    healthy_checks = models.IntegerField()
    degraded_checks = models.IntegerField()
    down_checks = models.IntegerField()
    healthy_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    syncs = models.IntegerField()  # gate runs: landed or quarantined
    syncs_landed = models.IntegerField()
    syncs_quarantined = models.IntegerField()
    landed_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    anomalies = models.IntegerField()
    generated_at = models.DateTimeField()

    class Meta:
        db_table = "daily_provider_stats"
        constraints = [models.UniqueConstraint(fields=["day", "provider"], name="daily_provider_stats_key")]


class ProviderHealthScore(models.Model):
    """The latest `health_score` of each provider (gpubroker.schema.HealthScore): the Flink health
    score job upserts it on `provider` every minute (flink/health_scores.py)."""

    provider = models.CharField(max_length=32, primary_key=True)
    event_id = models.UUIDField()  # of the score's window (schema.health_score_id)
    score = models.DecimalField(max_digits=5, decimal_places=4)  # 0..1
    calls = models.IntegerField()  # probes and sync fetches in the window
    failures = models.IntegerField()
    latency_ms = models.IntegerField(null=True)  # mean of the window's successful probes
    last_landed_at = models.DateTimeField(null=True)  # the newest landing the job has seen
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    detected_at = models.DateTimeField()

    class Meta:
        db_table = "provider_health_scores"
