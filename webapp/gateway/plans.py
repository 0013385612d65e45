"""Plan tiers: requests allowed per sliding 60-second window (the seed's numbers), and alert rules per key."""

from __future__ import annotations

from enum import StrEnum

WINDOW_SECONDS = 60


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    UNLIMITED = "unlimited"


LIMITS: dict[Plan, int] = {Plan.FREE: 10, Plan.PRO: 100, Plan.ENTERPRISE: 1000, Plan.UNLIMITED: 100_000}

# Alert rules an API key may have at once (webapp/alerts).
ALERT_RULES: dict[Plan, int] = {Plan.FREE: 3, Plan.PRO: 25, Plan.ENTERPRISE: 250, Plan.UNLIMITED: 1000}
