"""Formats shared with the page's JavaScript (static/web/js/format.js): keep the two in step."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def usd(value: float | Decimal | None) -> str:
    """`$2.50`, `$0.245`: two to four decimals, as `Intl.NumberFormat` (min 2, max 4) writes them:
    it rounds the number's shortest decimal form (`repr`), halves away from zero."""
    if value is None:
        return "–"
    text = f"{Decimal(str(value)).quantize(Decimal('0.0001'), ROUND_HALF_UP):f}".rstrip("0")
    return f"${text}{'0' * (2 - len(text.split('.')[1]))}"


@register.filter
def age(seconds: int | float | None) -> str:
    """`45 s`, `12 min`, `3 h`, `2 d`: the data age, coarsely."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@register.filter
def machine(offer: dict) -> str:
    """`8 vCPU · 15.7 GB RAM`, whichever of the two is known; "–" for neither."""
    parts = [f"{offer['vcpus']} vCPU" if offer.get("vcpus") is not None else "",
             f"{_decimal(offer['ram_gb'])} GB RAM" if offer.get("ram_gb") is not None else ""]  # fmt: skip
    return " · ".join(p for p in parts if p) or "–"


@register.filter
def decimal(value: float) -> str:
    """`80`, `15.7`: at most one decimal, none for whole numbers (as `decimal` in format.js)."""
    return _decimal(value)


def _decimal(value: float) -> str:
    """As JavaScript's `toFixed(1)`: the exact binary value, halves rounded up."""
    return str(int(value)) if float(value).is_integer() else f"{Decimal(float(value)).quantize(Decimal('0.1'), ROUND_HALF_UP):f}"


@register.filter
def change(percent: float | Decimal | None) -> str:
    """`+2.50%`, `-4%`, `0%`: a change in percent with its sign (2 decimals unless whole); "–" for none."""
    if percent is None:
        return "–"
    text = floatformat(percent, -2)
    return f"+{text}%" if percent > 0 else f"{text}%"


@register.filter
def since(moment: datetime | None) -> int | None:
    """Seconds from `moment` to now."""
    return None if moment is None else max(0, int((datetime.now(timezone.utc) - moment).total_seconds()))


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key) if mapping else None
