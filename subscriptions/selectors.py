"""Reads: what pages, jobs and services need to know, in a bounded number of queries."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Sum

from accounts.models import Account

from . import lifecycle
from .models import CreditEntry, Invoice, Payment, Subscription


def account_credit_balance_minor(*, account: Account) -> int:
    """The account's credit: the sum of its ledger entries in the account currency."""
    total = CreditEntry.objects.filter(account=account, currency=account.currency).aggregate(total=Sum("amount_minor"))
    return total["total"] or 0


def subscription_live_for_account(*, account: Account) -> Subscription | None:
    return (
        Subscription.objects.live()
        .select_related("price__plan", "scheduled_price__plan")
        .filter(account=account)
        .first()
    )


def subscription_latest_for_account(*, account: Account) -> Subscription | None:
    """The live subscription, or else the one that ended last (for resubscribing)."""
    live = subscription_live_for_account(account=account)
    if live:
        return live
    return (
        Subscription.objects.select_related("price__plan")
        .filter(account=account)
        .order_by("-created_at", "-id")
        .first()
    )


def account_has_trialed(*, account: Account) -> bool:
    return Subscription.objects.filter(account=account, trial_end__isnull=False).exists()


def invoice_open_for_subscription(*, subscription: Subscription) -> Invoice | None:
    return (
        Invoice.objects.filter(subscription=subscription, status=Invoice.OPEN, billing_reason=Invoice.CYCLE)
        .order_by("-period_start")
        .first()
    )


def account_has_outstanding_balance(*, account: Account) -> bool:
    return Invoice.objects.filter(account=account, status=Invoice.OPEN).exists()


def subscription_ids_due(*, now) -> list[int]:
    return list(Subscription.objects.due(now).order_by("id").values_list("id", flat=True))


def subscription_is_due(*, subscription: Subscription, now) -> bool:
    return (
        subscription.status in lifecycle.LIVE_STATUSES
        and Subscription.objects.due(now).filter(pk=subscription.pk).exists()
    )


def payment_ids_stale(*, now) -> list[int]:
    """Payments still pending after a claim would have expired: their worker died mid-charge."""
    stale_before = now - timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    return list(
        Payment.objects.filter(status=Payment.PENDING, created_at__lt=stale_before).values_list("pk", flat=True)
    )
