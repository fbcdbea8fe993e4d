"""The emails the jobs and services send: receipts, dunning, reminders, cancellations.

Each notice is a function of one object id that checks, when it runs, that what it would say is
still true (a failed payment was not paid in the meantime, a trial was not canceled, ...), then
sends through `emails.email_send` with a key that makes it go out once, however often the task
runs. Templates: templates/emails/<kind>-subject.txt, -body.txt, -body.html.
"""

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse

from accounts.models import Account
from billing_portal.lib import clock

from . import emails, lifecycle, selectors
from .models import Invoice, Payment, Subscription

# The card page (built with the billing pages): linked by its path, as customers see it.
CARD_PATH = "/billing/card/"


def _links(**extra) -> dict:
    return {
        "billing_url": settings.SITE_URL + reverse("subscriptions:billing"),
        "card_url": settings.SITE_URL + CARD_PATH,
        **extra,
    }


def _send(account: Account, kind: str, key: str, now: datetime, **context) -> bool:
    return emails.email_send(account=account, kind=kind, key=key, context=_links(**context), now=now)


def _subscription(pk: int) -> Subscription | None:
    return Subscription.objects.select_related("account", "price__plan", "scheduled_price__plan").filter(pk=pk).first()


# --- After a payment ---------------------------------------------------------------------------------------
def payment_receipt(invoice_id: int, now: datetime) -> bool:
    invoice = Invoice.objects.select_related("account").filter(pk=invoice_id).first()
    if invoice is None or invoice.status != Invoice.PAID:
        return False
    payment = invoice.payments.filter(status=Payment.SUCCEEDED).order_by("-id").first()
    return _send(
        invoice.account,
        "payment-receipt",
        f"invoice-{invoice.pk}",
        now,
        invoice=invoice,
        lines=list(invoice.lines.all()),
        payment=payment,
    )


def _dunning_context(payment: Payment) -> tuple[Subscription, dict] | None:
    """The subscription and the facts of its dunning, if the payment's invoice is still unpaid."""
    invoice = payment.invoice
    if invoice.status != Invoice.OPEN or invoice.subscription_id is None:
        return None
    sub = _subscription(invoice.subscription_id)
    dunning = selectors.subscription_dunning(subscription=sub)
    if dunning is None:
        return None
    return sub, {"subscription": sub, "invoice": invoice, "payment": payment, "dunning": dunning}


def payment_failed(payment_id: int, now: datetime) -> bool:
    payment = Payment.objects.select_related("invoice__account").filter(pk=payment_id).first()
    if payment is None or payment.status != Payment.FAILED:
        return False
    found = _dunning_context(payment)
    if found is None:
        return False
    sub, context = found
    return _send(sub.account, "payment-failed", f"payment-{payment.pk}", now, **context)


def payment_action_required(payment_id: int, now: datetime) -> bool:
    payment = Payment.objects.select_related("invoice__account").filter(pk=payment_id).first()
    if payment is None or payment.status != Payment.REQUIRES_ACTION:
        return False
    found = _dunning_context(payment)
    if found is None:
        return False
    sub, context = found
    url = settings.SITE_URL + reverse("subscriptions:payment-authenticate", args=[payment.invoice_id])
    return _send(sub.account, "payment-action-required", f"payment-{payment.pk}", now, authenticate_url=url, **context)


# --- Cancellations and ends --------------------------------------------------------------------------------
def cancellation_scheduled(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.cancel_at is None or not sub.is_live:
        return False  # undone (or ended) before the email went out
    event = sub.events.filter(kind="cancel_scheduled").order_by("-created_at", "-id").first()
    if event is None:
        return False
    context = {"subscription": sub, "cancel_at": sub.cancel_at, "summary": _cancellation_summary(sub)}
    return _send(sub.account, "cancellation-scheduled", f"event-{event.pk}", now, **context)


def _cancellation_summary(sub: Subscription) -> dict:
    """How the subscription ends: with its trial, its commitment (and the payments left), or its period."""
    if sub.status == lifecycle.TRIALING:
        return {"ends_with": "trial"}
    if sub.commitment_end_at and sub.cancel_at == sub.commitment_end_at:
        # The monthly payments still due before the commitment ends (SPEC 6, seeds 002 and 003).
        starts = (
            lifecycle.period_end(sub.billing_anchor_at, sub.price.cycle, n) for n in range(sub.period_number, 1000)
        )
        count = sum(1 for _ in itertools.takewhile(lambda start: start < sub.cancel_at, starts))
        return {
            "ends_with": "commitment",
            "payments_count": count,
            "payments_total_minor": count * sub.amount_minor,
            "currency": sub.currency,
        }
    return {"ends_with": "period"}


ENDED_REASONS = {"trial_expired", "dunning_canceled", "cancel_reached", "canceled_now"}


def subscription_ended(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.status != lifecycle.CANCELED:
        return False
    event = sub.events.filter(kind__in=ENDED_REASONS).order_by("-created_at", "-id").first()
    reason = event.kind if event else "canceled_now"
    return _send(sub.account, "subscription-ended", f"subscription-{sub.pk}", now, subscription=sub, reason=reason)


def subscription_paused_unpaid(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.status != lifecycle.PAUSED or sub.resume_at is not None or sub.paused_at is None:
        return False
    key = f"subscription-{sub.pk}-unpaid-pause-{sub.paused_at:%Y%m%d%H%M%S}"
    return _send(sub.account, "subscription-paused-unpaid", key, now, subscription=sub)


# --- Reminders (the daily job) -----------------------------------------------------------------------------
def _within(moment: datetime | None, now: datetime, days: int) -> bool:
    return moment is not None and now < moment <= now + timedelta(days=days)


def trial_ending(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.status != lifecycle.TRIALING or sub.cancel_at:
        return False
    if not _within(sub.trial_end, now, selectors.TRIAL_ENDING_DAYS):
        return False
    key = f"subscription-{sub.pk}-trial-{sub.trial_end:%Y%m%d%H%M}"
    return _send(sub.account, "trial-ending", key, now, subscription=sub)


def renewal_upcoming(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.status != lifecycle.ACTIVE or sub.cancel_at or sub.price.cycle != lifecycle.ANNUAL:
        return False
    if not _within(sub.current_period_end, now, selectors.ANNUAL_RENEWAL_DAYS):
        return False
    next_price = sub.scheduled_price or sub.price
    key = f"subscription-{sub.pk}-renewal-{sub.current_period_end:%Y%m%d%H%M}"
    return _send(sub.account, "renewal-upcoming", key, now, subscription=sub, next_price=next_price)


def pause_ending(subscription_id: int, now: datetime) -> bool:
    sub = _subscription(subscription_id)
    if sub is None or sub.status != lifecycle.PAUSED or not _within(sub.resume_at, now, selectors.PAUSE_ENDING_DAYS):
        return False
    key = f"subscription-{sub.pk}-resume-{sub.resume_at:%Y%m%d%H%M}"
    return _send(sub.account, "pause-ending", key, now, subscription=sub)


def card_expiring(account_id: int, now: datetime) -> bool:
    account = Account.objects.filter(pk=account_id).first()
    if account is None or not account.payment_method_id:
        return False
    if (account.card_exp_year, account.card_exp_month) != selectors.next_month(now):
        return False
    sub = selectors.subscription_live_for_account(account=account)
    if sub is None or sub.amount_minor == 0:
        return False
    key = f"account-{account.pk}-card-{account.payment_method_id}-{account.card_exp_year}-{account.card_exp_month:02d}"
    return _send(account, "card-expiring", key, now, subscription=sub)


NOTICES: dict[str, Callable[[int, datetime], bool]] = {
    "payment-receipt": payment_receipt,
    "payment-failed": payment_failed,
    "payment-action-required": payment_action_required,
    "cancellation-scheduled": cancellation_scheduled,
    "subscription-ended": subscription_ended,
    "subscription-paused-unpaid": subscription_paused_unpaid,
    "trial-ending": trial_ending,
    "renewal-upcoming": renewal_upcoming,
    "pause-ending": pause_ending,
    "card-expiring": card_expiring,
}


def notice_send(*, kind: str, object_id: int, now: datetime | None = None) -> bool:
    """Send notice `kind` about `object_id` if it is still true and was not sent before."""
    return NOTICES[kind](object_id, now or clock.now())
