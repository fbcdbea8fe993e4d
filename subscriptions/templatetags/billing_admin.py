"""Template filters of the admin pages (dashboard charts)."""

from babel.numbers import format_compact_currency
from django import template
from django.utils.formats import number_format
from django.utils.translation import get_language

from billing_portal.lib.money import Money

register = template.Library()


@register.filter
def money_compact(amount_minor, currency: str = "eur") -> str:
    """`€1.2K`: a short amount for chart labels, where `|money` would not fit."""
    if amount_minor in (None, ""):
        return ""
    locale = (get_language() or "en").replace("-", "_")
    return format_compact_currency(
        Money(int(amount_minor), currency).decimal, currency.upper(), locale=locale, fraction_digits=1
    )


@register.filter
def percent_or_dash(value) -> str:
    """A percentage with one decimal, or an en dash when there was nothing to divide."""
    return "–" if value is None else f"{number_format(value, 1)}\u00a0%"


@register.filter
def negative(amount_minor):
    """A loss shown as a negative amount (`{{ churn_minor|negative|money }}`)."""
    return -int(amount_minor) if amount_minor else 0
