"""Small display helpers of the customer billing pages."""

from django import template
from django.utils.translation import gettext as _

from billing_portal.lib.money import Money

from .. import lifecycle
from .billing import money

register = template.Library()


@register.filter
def per_cycle(obj) -> str:
    """`€19.00 per month` for a price or a subscription (anything with amount, currency, cycle).

    A commitment price is paid per month too; its cycle name says it commits for a year.
    """
    amount = money(Money(obj.amount_minor, obj.currency))
    if lifecycle.CYCLE_MONTHS[obj.cycle] == 12:
        return _("%(amount)s per year") % {"amount": amount}
    return _("%(amount)s per month") % {"amount": amount}


@register.filter
def negative(amount_minor: int) -> int:
    """A credit shown as a negative amount on an invoice-like table."""
    return -int(amount_minor)


@register.inclusion_tag("subscriptions/_invoice_status.html")
def invoice_status(invoice):
    return {"status": invoice.status, "label": invoice.get_status_display()}
