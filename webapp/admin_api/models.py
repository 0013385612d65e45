"""Admin jobs (webapp/admin_api/jobs.py): a cache warming or a vendor sync asked for over the API,
kept so that any webapp worker can report it."""

from django.db import models

from gateway.models import ApiKey


class Job(models.Model):
    class Kind(models.TextChoices):
        WARM = "warm"
        SYNC = "sync"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Via(models.TextChoices):
        AIRFLOW = "airflow"  # a DAG run, triggered through Airflow's REST API
        IN_PROCESS = "in-process"  # the webapp's own bounded worker, Airflow being unreachable

    kind = models.CharField(max_length=8, choices=Kind.choices)
    providers = models.JSONField(default=list)  # vendor slugs of a sync
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    via = models.CharField(max_length=16, choices=Via.choices)
    run_id = models.CharField(max_length=250, null=True)  # the Airflow DAG run's id
    worker = models.CharField(max_length=300, null=True)  # "host:pid" of the webapp process running it in-process
    result = models.JSONField(null=True)  # what an in-process job did (its summary)
    error = models.TextField(null=True)  # why it failed (never a secret)
    key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="+")  # who asked
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "admin_jobs"
