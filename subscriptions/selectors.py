"""Reads: what pages, jobs and services need to know, in a bounded number of queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum

from accounts.models import Account, Membership

from . import lifecycle
from .models import CreditEntry, Invoice, Payment, Price, Subscription, SubscriptionEvent


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


# --- Billing pages ----------------------------------------------------------------------------------
def account_billing_managers(*, account: Account) -> list[Membership]:
    """The owners and billing admins of an account (who a member should ask), owners first."""
    memberships = Membership.objects.filter(account=account, role__in=Membership.BILLING_ROLES).select_related("user")
    return sorted(memberships, key=lambda m: (m.role != Membership.OWNER, m.user.get_full_name().lower()))


def account_events_recent(*, account: Account, limit: int = 10) -> list[SubscriptionEvent]:
    """The latest audit events of all the account's subscriptions (one query)."""
    return list(
        SubscriptionEvent.objects.filter(subscription__account=account)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def prices_by_id(*, ids) -> dict[int, Price]:
    """Prices (with their plans) by id, in one query; ids that do not exist are left out."""
    ids = {int(pk) for pk in ids if isinstance(pk, int) or str(pk).isdigit()}
    if not ids:
        return {}
    return {price.pk: price for price in Price.objects.select_related("plan").filter(pk__in=ids)}


def prices_available_for_account(*, account: Account) -> list[Price]:
    """Active prices of active plans in the account's currency, by plan rank then cycle."""
    return prices_available(currency=account.currency)


def prices_available(*, currency: str) -> list[Price]:
    """Active prices of active plans in `currency`, by plan rank then cycle (the pricing page)."""
    return list(
        Price.objects.available()
        .filter(currency=currency)
        .select_related("plan")
        .order_by("plan__rank", "plan__pk", "cycle")
    )


def price_available_for_account(*, account: Account, pk: int) -> Price | None:
    """One price the account may choose (active, active plan, its currency), or None."""
    return Price.objects.available().filter(currency=account.currency).select_related("plan").filter(pk=pk).first()


def account_invoices(*, account: Account):
    """The account's invoices, newest first (a queryset, for paging)."""
    return Invoice.objects.filter(account=account).order_by("-created_at", "-id")


def account_invoices_recent(*, account: Account, limit: int = 5) -> list[Invoice]:
    return list(account_invoices(account=account)[:limit])


def invoice_for_account(*, account: Account, pk: int) -> Invoice | None:
    """One of the account's invoices with its lines and payments, or None (never another's)."""
    return (
        Invoice.objects.filter(account=account, pk=pk)
        .select_related("subscription", "price__plan")
        .prefetch_related("lines", "payments")
        .first()
    )


@dataclass(frozen=True)
class DunningSchedule:
    """What a past-due customer needs to know: when payment failed, the next retry, when service stops."""

    failed_at: datetime
    next_retry_at: datetime | None
    gives_up_at: datetime


def subscription_dunning_schedule(*, subscription: Subscription) -> DunningSchedule | None:
    if subscription.status != lifecycle.PAST_DUE or subscription.past_due_since is None:
        return None
    return DunningSchedule(
        failed_at=subscription.past_due_since,
        next_retry_at=subscription.next_retry_at,
        gives_up_at=lifecycle.dunning_gives_up_at(subscription.past_due_since, settings.BILLING_DUNNING_RETRY_DAYS),
    )


def subscription_scheduled_change_at(*, subscription: Subscription, now: datetime) -> datetime | None:
    """When the scheduled plan change takes over: the period end, or the commitment end for a
    downgrade or cycle change during a commitment (SPEC section 4). None without one."""
    scheduled = subscription.scheduled_price
    if scheduled is None:
        return None
    applies_at_period_end = lifecycle.change_applies_now(
        current_cycle=subscription.price.cycle,
        current_rank=subscription.price.plan.rank,
        new_cycle=scheduled.cycle,
        new_rank=scheduled.plan.rank,
        in_commitment=subscription.in_commitment(now),
    )
    if applies_at_period_end or subscription.commitment_end_at is None:
        return subscription.current_period_end
    return max(subscription.commitment_end_at, subscription.current_period_end)
