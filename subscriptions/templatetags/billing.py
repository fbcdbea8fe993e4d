"""Template filters for money and status badges."""

from django import template
from django.utils.translation import get_language, pgettext_lazy

from billing_portal.lib.money import Money, format_money
from subscriptions import declines

register = template.Library()

BADGES = {
    "trialing": pgettext_lazy("subscription status", "Trial"),
    "active": pgettext_lazy("subscription status", "Active"),
    "canceling": pgettext_lazy("subscription status", "Canceling"),
    "past_due": pgettext_lazy("subscription status", "Past due"),
    "paused": pgettext_lazy("subscription status", "Paused"),
    "canceled": pgettext_lazy("subscription status", "Canceled"),
}


def _locale() -> str:
    return (get_language() or "en").replace("-", "_")


@register.filter
def decline_reason(failure_code: str) -> str:
    """`{{ payment.failure_code|decline_reason }}`: why a payment failed, in the page's language
    (never Stripe's English `failure_message`, which is for operators)."""
    return declines.decline_reason(failure_code)


@register.filter
def money(value, currency: str | None = None) -> str:
    """`{{ price.money|money }}` or `{{ amount_minor|money:"eur" }}`, in the page's language."""
    if isinstance(value, Money):
        return value.format(_locale())
    if value in (None, ""):
        return ""
    return format_money(int(value), currency or "eur", _locale())


@register.inclusion_tag("subscriptions/_badge.html")
def status_badge(badge: str):
    """The status badge: colour plus text, never colour alone."""
    return {"badge": badge, "label": BADGES.get(badge, badge)}
