"""Subscription channels of the live feed and the Channels groups behind them.

Clients subscribe to `price_updates` (everything), `provider:<slug>`, `gpu:<model>` (any alias,
e.g. `gpu:RTX 4090`) or `region:<region>`. Group names allow only [A-Za-z0-9._-], so each channel
maps to a safe group name.
"""

from __future__ import annotations

import hashlib
import re

from gpubroker import gpus

ALL_UPDATES = "price_updates"
KINDS = ("provider", "gpu", "region")


class BadChannel(ValueError):
    pass


def _safe(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value)
    if cleaned != value or len(cleaned) > 60:  # keep distinct values distinct after cleaning
        cleaned = f"{cleaned[:50]}.{hashlib.sha1(value.encode()).hexdigest()[:8]}"
    return cleaned


def canonical(channel: str) -> str:
    """`gpu:rtx_4090` -> `gpu:RTX4090`; raises BadChannel for anything not subscribable."""
    if channel == ALL_UPDATES:
        return channel
    kind, sep, value = channel.partition(":")
    if not sep or kind not in KINDS or not value.strip():
        raise BadChannel(f"unknown channel {channel!r}; use price_updates, provider:<name>, gpu:<type>, region:<region>")
    if kind == "gpu":
        try:
            value = gpus.resolve(value).model.name
        except gpus.UnknownGpu as error:
            raise BadChannel(str(error)) from None
    return f"{kind}:{value.strip()}"


def group_name(channel: str) -> str:
    """Channels group for a canonical channel."""
    kind, _, value = channel.partition(":")
    return "gpubroker.all" if channel == ALL_UPDATES else f"gpubroker.{kind}.{_safe(value)}"


def groups_for_update(update: dict) -> list[str]:
    """Every group a price update goes to."""
    channels = [ALL_UPDATES, f"provider:{update['provider']}", f"gpu:{update['gpu']}", f"region:{update['region']}"]
    return [group_name(c) for c in channels]
