"""Reads: what pages, jobs and services need to know, in a bounded number of queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum

from accounts.models import Account, Membership

from . import lifecycle
from .models import CreditEntry, Invoice, Payment, Price, Refund, StripeEvent, Subscription, SubscriptionEvent

# The billing page's lists: newest first, this many (subscriptions/page_cache.py fingerprints
# exactly these rows, so both read the order and the sizes from here).
NEWEST_FIRST = ("-created_at", "-id")
RECENT_EVENTS = 10
RECENT_INVOICES = 5


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
    """Whether the sweep has work for this subscription, from the row as loaded (no query)."""
    return subscription.is_due(now)


def payment_ids_stale(*, now) -> list[int]:
    """Payments still pending after a claim would have expired: their worker died mid-charge."""
    stale_before = now - timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    return list(
        Payment.objects.filter(status=Payment.PENDING, created_at__lt=stale_before).values_list("pk", flat=True)
    )


def refund_ids_stale(*, now) -> list[int]:
    """Refunds still pending after a claim would have expired: the process asking Stripe died."""
    stale_before = now - timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    return list(Refund.objects.filter(status=Refund.PENDING, created_at__lt=stale_before).values_list("pk", flat=True))


# --- Billing pages ----------------------------------------------------------------------------------
def account_billing_managers(*, account: Account) -> list[Membership]:
    """The owners and billing admins of an account (who a member should ask), owners first."""
    memberships = Membership.objects.filter(account=account, role__in=Membership.BILLING_ROLES).select_related("user")
    return sorted(memberships, key=lambda m: (m.role != Membership.OWNER, m.user.get_full_name().lower()))


def account_events_recent(*, account: Account, limit: int = RECENT_EVENTS) -> list[SubscriptionEvent]:
    """The latest audit events of all the account's subscriptions (one query)."""
    return list(
        SubscriptionEvent.objects.filter(subscription__account=account)
        .select_related("actor")
        .order_by(*NEWEST_FIRST)[:limit]
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
    return Invoice.objects.filter(account=account).order_by(*NEWEST_FIRST)


def account_invoices_recent(*, account: Account, limit: int = RECENT_INVOICES) -> list[Invoice]:
    return list(account_invoices(account=account)[:limit])


def invoice_for_account(*, account: Account, pk: int) -> Invoice | None:
    """One of the account's invoices with its lines and payments, or None (never another's)."""
    return (
        Invoice.objects.filter(account=account, pk=pk)
        .select_related("subscription", "price__plan")
        .prefetch_related("lines", "payments")
        .first()
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


# --- Dunning and authentication, for the billing page and the emails -------------------------------------
@dataclass(frozen=True)
class Dunning:
    """Where collecting a past-due invoice stands: what was tried, what comes next, when service stops."""

    invoice: Invoice
    past_due_since: datetime
    attempts: list[Payment]  # every attempt at this invoice, oldest first, with its outcome
    next_retry_at: datetime | None
    upcoming_retries: list[datetime]  # the retries still to come, in order (the next one first)
    final_action_at: datetime  # when the last retry runs; if it fails, the final action follows
    final_action: str  # "cancel" or "pause" (BILLING_DUNNING_FINAL_ACTION)
    requires_action: Payment | None  # an attempt waiting for the customer's authentication

    @property
    def failed_attempts(self) -> int:
        return sum(1 for payment in self.attempts if payment.status != Payment.SUCCEEDED)


def subscription_dunning(*, subscription: Subscription | None) -> Dunning | None:
    """The dunning schedule and past attempts of a past-due subscription's open invoice (2 queries)."""
    if subscription is None or subscription.status != lifecycle.PAST_DUE or subscription.past_due_since is None:
        return None
    invoice = invoice_open_for_subscription(subscription=subscription)
    if invoice is None:
        return None
    attempts = list(Payment.objects.filter(invoice=invoice).exclude(status=Payment.ABANDONED).order_by("attempt", "id"))
    days = settings.BILLING_DUNNING_RETRY_DAYS
    upcoming = [
        at
        for index in range(subscription.retries_done, len(days))
        if (at := lifecycle.dunning_retry_at(subscription.past_due_since, days, index)) is not None
    ]
    waiting = [payment for payment in attempts if payment.status == Payment.REQUIRES_ACTION]
    return Dunning(
        invoice=invoice,
        past_due_since=subscription.past_due_since,
        attempts=attempts,
        next_retry_at=subscription.next_retry_at,
        upcoming_retries=upcoming,
        final_action_at=lifecycle.dunning_gives_up_at(subscription.past_due_since, days),
        final_action=settings.BILLING_DUNNING_FINAL_ACTION,
        requires_action=waiting[-1] if waiting else None,
    )


def payment_requiring_action(*, invoice: Invoice) -> Payment | None:
    """The latest attempt at an open invoice that waits for the customer to authenticate it."""
    if invoice.status != Invoice.OPEN:
        return None
    return (
        Payment.objects.filter(invoice=invoice, status=Payment.REQUIRES_ACTION)
        .exclude(stripe_payment_intent_id="")
        .order_by("-attempt")
        .first()
    )


def payment_requiring_action_for_account(*, account: Account) -> Payment | None:
    """For a banner: the account's renewal payment waiting for authentication, if any (1 query)."""
    return (
        Payment.objects.select_related("invoice")
        .filter(
            invoice__account=account,
            invoice__status=Invoice.OPEN,
            invoice__billing_reason=Invoice.CYCLE,
            status=Payment.REQUIRES_ACTION,
        )
        .exclude(stripe_payment_intent_id="")
        .order_by("-created_at", "-id")
        .first()
    )


# --- Reminders (the daily job) ----------------------------------------------------------------------------
TRIAL_ENDING_DAYS = 3
ANNUAL_RENEWAL_DAYS = 7
PAUSE_ENDING_DAYS = 3


def next_month(now: datetime) -> tuple[int, int]:
    """(year, month) of the calendar month after `now`'s (UTC)."""
    return (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)


def reminders_due(*, now: datetime) -> list[tuple[str, int]]:
    """(notice kind, object id) for every reminder to send today; each an indexed query.

    Each kind is sent once per thing it is about (its key), so the window can be generous: a day
    the job did not run is caught up the next day.
    """
    due: list[tuple[str, int]] = []
    trials = Subscription.objects.filter(
        status=lifecycle.TRIALING,
        cancel_at__isnull=True,
        trial_end__gt=now,
        trial_end__lte=now + timedelta(days=TRIAL_ENDING_DAYS),
    )
    due += [("trial-ending", pk) for pk in trials.values_list("pk", flat=True)]
    renewals = Subscription.objects.filter(
        status=lifecycle.ACTIVE,
        cancel_at__isnull=True,
        price__cycle=lifecycle.ANNUAL,
        current_period_end__gt=now,
        current_period_end__lte=now + timedelta(days=ANNUAL_RENEWAL_DAYS),
    )
    due += [("renewal-upcoming", pk) for pk in renewals.values_list("pk", flat=True)]
    pauses = Subscription.objects.filter(
        status=lifecycle.PAUSED,
        resume_at__gt=now,
        resume_at__lte=now + timedelta(days=PAUSE_ENDING_DAYS),
    )
    due += [("pause-ending", pk) for pk in pauses.values_list("pk", flat=True)]
    year, month = next_month(now)
    cards = (
        Account.objects.filter(
            card_exp_year=year,
            card_exp_month=month,
            subscriptions__status__in=lifecycle.LIVE_STATUSES,
            subscriptions__amount_minor__gt=0,
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    due += [("card-expiring", pk) for pk in cards]
    return due


def stripe_event_ids_unprocessed(*, now: datetime, max_attempts: int = 10) -> list[int]:
    """Webhook events whose processing task was lost or failed, received a claim period ago."""
    before = now - timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    return list(
        StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=before, attempts__lt=max_attempts)
        .order_by("received_at")
        .values_list("pk", flat=True)
    )
