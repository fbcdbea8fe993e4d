"""Template helpers of the privacy app."""

from django import template

from accounts.models import Account
from billing_portal.lib import clock

register = template.Library()


@register.filter
def deletion_undoable(account: Account | None) -> bool:
    """`{% if account|deletion_undoable %}`: a deletion is pending and its grace period still runs."""
    return bool(account and account.deletion_pending and account.deletion_due_at > clock.now())
