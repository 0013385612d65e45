from django.core.management.base import BaseCommand

from offers import bridge


class Command(BaseCommand):
    help = "Forward gpubroker.price-changes from Kafka to WebSocket subscribers (runs until stopped)."

    def handle(self, *args, **options):
        bridge.run()
