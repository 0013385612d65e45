"""`manage.py revoke_api_key ID_OR_PREFIX`: the key stops working at once, in every worker."""

import redis
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from gateway.models import ApiKey
from gateway.ratelimit import EPOCH_KEY
from gpubroker import settings


class Command(BaseCommand):
    help = "Revoke an API key (by its id or the prefix `create_api_key` printed)."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's id, or its first characters (gpb_...)")

    def handle(self, key: str, **options):
        match = Q(prefix__startswith=key) if key.startswith("gpb_") else Q(id=int(key)) if key.isdigit() else None
        if match is None:
            raise CommandError("give the key's id or its prefix (starting gpb_)")
        found = list(ApiKey.objects.filter(match, revoked_at__isnull=True))
        if len(found) != 1:
            raise CommandError(f"{len(found)} active keys match {key!r}; give a longer prefix or the id")
        found[0].revoked_at = timezone.now()
        found[0].save(update_fields=["revoked_at"])
        try:  # workers drop their cached key lookups at their next request
            redis.Redis.from_url(settings.REDIS_URL).incr(EPOCH_KEY)
        except redis.RedisError:
            self.stderr.write("Redis unreachable: workers notice the revocation within a minute")
        self.stdout.write(f"revoked key {found[0].id} ({found[0].prefix}…, {found[0].name})")
