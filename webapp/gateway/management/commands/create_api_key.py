"""`manage.py create_api_key --plan pro --name NAME [--admin]`: a new key, printed once as the last line
of stdout. `--admin` gives it the admin scope (`/api/v1/admin/...`: warm the cache, sync vendors)."""

from django.core.management.base import BaseCommand

from gateway import keys
from gateway.models import ApiKey
from gateway.plans import LIMITS, WINDOW_SECONDS, Plan


class Command(BaseCommand):
    help = "Create an API key. It is shown once (the last line of output) and stored only as a digest."

    def add_arguments(self, parser):
        parser.add_argument("--plan", required=True, choices=[p.value for p in Plan])
        parser.add_argument("--name", required=True, help="who or what the key is for")
        parser.add_argument("--admin", action="store_true", help="may call /api/v1/admin/... (warm, sync)")

    def handle(self, plan: str, name: str, admin: bool, **options):
        key = keys.new_key()
        row = ApiKey.objects.create(name=name, plan=plan, digest=keys.digest(key), prefix=key[:12], admin=admin)
        self.stdout.write(f"created key {row.id} ({row.prefix}…) for {name!r}: plan {plan}, "
                          f"{LIMITS[Plan(plan)]} requests per {WINDOW_SECONDS} s{', admin scope' if admin else ''}")  # fmt: skip
        self.stdout.write("store it now, it is not shown again; send it as `Authorization: Bearer <key>`:")
        self.stdout.write(key)
