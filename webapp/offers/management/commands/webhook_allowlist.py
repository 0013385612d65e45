"""`manage.py webhook_allowlist add|remove|list [HOST] [--key KEY | --plan PLAN]`: hosts webhooks may reach
although they are internal, each for one owner: `--key` (an API key's id or printed prefix: its alert
rules), `--plan` (the alert rules of every key on that plan), or neither (the operator's own webhooks,
which have no alert rule: DAG-run conf and other producers on gpubroker.webhooks)."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from gateway.models import ApiKey
from gateway.plans import Plan
from offers.models import WebhookAllowedHost


class Command(BaseCommand):
    help = "Manage webhook hosts exempt from the internal-address check, each for one owner (a key, a plan, or the operator)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove", "list"])
        parser.add_argument("host", nargs="?")
        owner = parser.add_mutually_exclusive_group()
        owner.add_argument("--key", help="an API key's id or printed prefix (gpb_...): only its alert rules")
        owner.add_argument("--plan", choices=[p.value for p in Plan], help="the alert rules of every key on this plan")
        parser.add_argument("--note", default="")

    def handle(self, action, host=None, key=None, plan=None, note="", **options):
        if action == "list":
            for row in WebhookAllowedHost.objects.select_related("key").order_by("host", "id"):
                self.stdout.write(f"{row.host}\t{self._owner(row)}\t{row.added_at:%Y-%m-%d %H:%M}\t{row.note}")
            return
        if not host:
            raise CommandError(f"{action} needs a HOST, e.g. webhook_allowlist {action} 10.0.0.5 --key gpb_abc123")
        owner = {"host": host.strip().lower(), "key": self._key(key) if key else None, "plan": plan}
        if action == "add":
            row, _ = WebhookAllowedHost.objects.update_or_create(**owner, defaults={"note": note})
            self.stdout.write(f"allowed {row.host} for {self._owner(row)}")
        else:
            deleted, _ = WebhookAllowedHost.objects.filter(**owner).delete()
            self.stdout.write(f"removed {owner['host']}" if deleted else f"{owner['host']} was not allowed for that owner")

    @staticmethod
    def _key(given: str) -> ApiKey:
        found = list(ApiKey.objects.filter(Q(id=int(given)) if given.isdecimal() else Q(prefix__startswith=given[:12]))[:2])
        if len(found) != 1:
            raise CommandError(f"{'no' if not found else 'more than one'} API key matches {given[:12]!r}; give its id")
        return found[0]

    @staticmethod
    def _owner(row: WebhookAllowedHost) -> str:
        if row.key_id:
            return f"key {row.key_id} ({row.key.prefix}…)"
        return f"plan {row.plan}" if row.plan else "the operator's webhooks"
