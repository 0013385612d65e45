from django.core.management.base import BaseCommand

from alerts import matcher
from gpubroker_web.db import conninfo


class Command(BaseCommand):
    help = "Match price changes, anomalies and availability changes against alert rules (runs until stopped)."

    def handle(self, *args, **options):
        matcher.run(conninfo())
