"""`manage.py webhook_allowlist add|remove|list [HOST]`: hosts webhooks may reach although they are internal."""

from django.core.management.base import BaseCommand, CommandError

from offers.models import WebhookAllowedHost


class Command(BaseCommand):
    help = "Manage webhook hosts exempt from the internal-address check."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove", "list"])
        parser.add_argument("host", nargs="?")
        parser.add_argument("--note", default="")

    def handle(self, action, host=None, note="", **options):
        if action == "list":
            for row in WebhookAllowedHost.objects.order_by("host"):
                self.stdout.write(f"{row.host}\t{row.added_at:%Y-%m-%d %H:%M}\t{row.note}")
            return
        if not host:
            raise CommandError(f"{action} needs a HOST, e.g. webhook_allowlist {action} 10.0.0.5")
        host = host.strip().lower()
        if action == "add":
            WebhookAllowedHost.objects.update_or_create(host=host, defaults={"note": note})
            self.stdout.write(f"allowed {host}")
        else:
            deleted, _ = WebhookAllowedHost.objects.filter(host=host).delete()
            self.stdout.write(f"removed {host}" if deleted else f"{host} was not allowed")
