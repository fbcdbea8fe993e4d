"""Small display helpers of the customer billing pages."""

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from billing_portal.lib.money import Money

from .. import lifecycle
from ..models import Invoice
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


# The labels of Invoice.status (lazy, so each page gets its own language). Looked up here rather
# than with get_status_display(), which rebuilds the choices on every call: once per invoice row.
_INVOICE_STATUS_LABELS = dict(Invoice.STATUS_CHOICES)


@register.simple_tag
def invoice_status(invoice):
    """The invoice's status badge. Built in Python, not with an inclusion template: it is drawn
    once per row of the invoice list, where a template per badge cost a sixth of the page
    (bench/pages.py)."""
    label = _INVOICE_STATUS_LABELS.get(invoice.status, invoice.status)
    return format_html('<span class="badge badge-invoice-{}">{}</span>', invoice.status, label)
