from django.core.management.base import BaseCommand

from feed import bridge


class Command(BaseCommand):
    help = "Forward price changes, anomalies and provider events from Kafka to the live feed (runs until stopped)."

    def handle(self, *args, **options):
        bridge.run()
