"""Reconciliation: compare our payments, refunds and paid invoices with Stripe's.

The daily task (and the admin page's "check now") runs `reconciliation_run`: Stripe is asked
first, with no transaction open, then the run and its differences are written in one
transaction, so the admin page is a plain database read. Details are stored in English
(marked for translation) and translated when the page shows them.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_noop

from billing_portal.lib import clock
from billing_portal.lib.money import format_money

from . import gateway
from .models import Invoice, Payment, ReconciliationDifference, ReconciliationRun, Refund

log = logging.getLogger(__name__)

WINDOW_DAYS = 30

Difference = ReconciliationDifference

# The local payment statuses that agree with each status of a Stripe PaymentIntent. A canceled
# intent is one we gave up on: failed, abandoned, or needing authentication we did not ask for.
AGREEING_STATUSES = {
    "succeeded": {Payment.SUCCEEDED},
    "requires_payment_method": {Payment.FAILED},
    "requires_action": {Payment.REQUIRES_ACTION},
    "canceled": {Payment.FAILED, Payment.REQUIRES_ACTION, Payment.ABANDONED},
    "processing": {Payment.PENDING},
    "requires_confirmation": {Payment.PENDING, Payment.ABANDONED},
    "requires_capture": {Payment.PENDING},
}


@dataclass
class _Found:
    differences: list[ReconciliationDifference] = field(default_factory=list)
    payment_intents_checked: int = 0
    refunds_checked: int = 0
    payments_checked: int = 0

    def add(self, kind: str, object_kind: str, **fields) -> None:
        self.differences.append(Difference(kind=kind, object_kind=object_kind, **fields))


def reconciliation_run(*, now: datetime | None = None, days: int = WINDOW_DAYS) -> ReconciliationRun:
    """Compare the last `days` days with Stripe and store what differs; a failed run says why."""
    now = now or clock.now()
    run = ReconciliationRun.objects.create(started_at=now, window_start=now - timedelta(days=days), window_end=now)
    try:
        found = _compare(run.window_start, run.window_end, now)
    except gateway.GatewayError as error:
        log.warning("Reconciliation %s failed: %s", run.pk, error)
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationRun.FAILED, error=str(error)[:2000], finished_at=clock.now()
        )
        run.refresh_from_db()
        return run
    with transaction.atomic():
        for difference in found.differences:
            difference.run = run
        ReconciliationDifference.objects.bulk_create(found.differences)
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationRun.COMPLETED,
            finished_at=clock.now(),
            payment_intents_checked=found.payment_intents_checked,
            refunds_checked=found.refunds_checked,
            payments_checked=found.payments_checked,
            differences_count=len(found.differences),
        )
    run.refresh_from_db()
    return run


def _money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency, "en")


def _compare(start: datetime, end: datetime, now: datetime) -> _Found:
    found = _Found()
    # Rows younger than a billing claim may still be in flight: a worker is charging right now.
    settled_before = now - timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    intents = {intent.id: intent for intent in gateway.payment_intents_created_between(start=start, end=end)}
    stripe_refunds = {refund.id: refund for refund in gateway.refunds_created_between(start=start, end=end)}
    _compare_payments(found, intents, start, end, settled_before)
    _compare_refunds(found, stripe_refunds, start, end, settled_before)
    _compare_paid_invoices(found, start, end)
    found.payment_intents_checked = len(intents)
    found.refunds_checked = len(stripe_refunds)
    return found


def _compare_payments(found: _Found, intents: dict, start, end, settled_before) -> None:
    payments = list(
        Payment.objects.filter(
            Q(created_at__gte=start, created_at__lt=end) | Q(stripe_payment_intent_id__in=list(intents))
        ).select_related("invoice")
    )
    found.payments_checked = len(payments)
    seen = set()
    for payment in payments:
        intent_id = payment.stripe_payment_intent_id
        if not intent_id:
            if payment.status == Payment.SUCCEEDED:
                found.add(
                    Difference.MISSING_AT_STRIPE,
                    Difference.PAYMENT,
                    payment=payment,
                    invoice=payment.invoice,
                    local_value=f"{_money(payment.amount_minor, payment.currency)} {payment.status}",
                    detail=gettext_noop("Succeeded locally without a PaymentIntent."),
                )
            continue
        seen.add(intent_id)
        # An intent created just outside the window (clocks differ) is asked for on its own.
        intent = intents.get(intent_id) or gateway.payment_intent_get(payment_intent_id=intent_id)
        fields = {"payment": payment, "invoice": payment.invoice, "stripe_id": intent_id}
        fields["stripe_payment_intent_id"] = intent_id
        if intent is None:
            found.add(
                Difference.MISSING_AT_STRIPE,
                Difference.PAYMENT,
                local_value=f"{_money(payment.amount_minor, payment.currency)} {payment.status}",
                detail=gettext_noop("Stripe does not know this PaymentIntent."),
                **fields,
            )
            continue
        if (intent.amount_minor, intent.currency) != (payment.amount_minor, payment.currency):
            found.add(
                Difference.AMOUNT_MISMATCH,
                Difference.PAYMENT,
                local_value=_money(payment.amount_minor, payment.currency),
                stripe_value=_money(intent.amount_minor, intent.currency),
                detail=gettext_noop("The amounts differ."),
                **fields,
            )
        in_flight = payment.status == Payment.PENDING and payment.created_at >= settled_before
        if not in_flight and payment.status not in AGREEING_STATUSES.get(intent.status, set()):
            found.add(
                Difference.STATUS_MISMATCH,
                Difference.PAYMENT,
                local_value=payment.status,
                stripe_value=intent.status,
                detail=gettext_noop("The payment's status differs from the PaymentIntent's."),
                **fields,
            )
    unknown = [intent for intent_id, intent in intents.items() if intent_id not in seen]
    invoices = Invoice.objects.in_bulk([_int(intent.metadata.get("invoice_id")) for intent in unknown])
    for intent in unknown:
        found.add(
            Difference.MISSING_LOCALLY,
            Difference.PAYMENT,
            stripe_id=intent.id,
            stripe_payment_intent_id=intent.id,
            invoice=invoices.get(_int(intent.metadata.get("invoice_id"))),
            stripe_value=f"{_money(intent.amount_minor, intent.currency)} {intent.status}",
            detail=gettext_noop("No local payment has this PaymentIntent."),
        )


def _compare_refunds(found: _Found, stripe_refunds: dict, start, end, settled_before) -> None:
    refunds = list(
        Refund.objects.filter(
            Q(created_at__gte=start, created_at__lt=end) | Q(stripe_refund_id__in=list(stripe_refunds))
        ).select_related("payment")
    )
    # A refund Stripe made whose id we never saved (the request failed on our side) still
    # carries our refund id in its metadata.
    by_local_id = {_int(refund.metadata.get("refund_id")): refund for refund in stripe_refunds.values()}
    seen = set()
    for refund in refunds:
        fields = {
            "refund": refund,
            "payment": refund.payment,
            "invoice_id": refund.payment.invoice_id,
            "stripe_payment_intent_id": refund.payment.stripe_payment_intent_id,
        }
        local = f"{_money(refund.amount_minor, refund.currency)} {refund.status}"
        if refund.status != Refund.SUCCEEDED:
            stripe_refund = by_local_id.get(refund.pk)
            if stripe_refund is not None:
                seen.add(stripe_refund.id)
                found.add(
                    Difference.STATUS_MISMATCH,
                    Difference.REFUND,
                    stripe_id=stripe_refund.id,
                    local_value=local,
                    stripe_value=f"{_money(stripe_refund.amount_minor, stripe_refund.currency)} {stripe_refund.status}",
                    detail=gettext_noop("Stripe made this refund but it is not recorded as succeeded here."),
                    **fields,
                )
            elif refund.status == Refund.PENDING and refund.created_at < settled_before:
                found.add(
                    Difference.MISSING_AT_STRIPE,
                    Difference.REFUND,
                    local_value=local,
                    detail=gettext_noop("A refund left pending here that Stripe never made."),
                    **fields,
                )
            continue
        seen.add(refund.stripe_refund_id)
        stripe_refund = stripe_refunds.get(refund.stripe_refund_id) or gateway.refund_get(
            refund_id=refund.stripe_refund_id
        )
        fields["stripe_id"] = refund.stripe_refund_id
        if stripe_refund is None:
            found.add(
                Difference.MISSING_AT_STRIPE,
                Difference.REFUND,
                local_value=local,
                detail=gettext_noop("Stripe does not know this refund."),
                **fields,
            )
            continue
        if (stripe_refund.amount_minor, stripe_refund.currency) != (refund.amount_minor, refund.currency):
            found.add(
                Difference.AMOUNT_MISMATCH,
                Difference.REFUND,
                local_value=_money(refund.amount_minor, refund.currency),
                stripe_value=_money(stripe_refund.amount_minor, stripe_refund.currency),
                detail=gettext_noop("The refunded amounts differ."),
                **fields,
            )
        if stripe_refund.status not in gateway.REFUND_GOING_THROUGH:
            found.add(
                Difference.STATUS_MISMATCH,
                Difference.REFUND,
                local_value=refund.status,
                stripe_value=stripe_refund.status,
                detail=gettext_noop("Stripe did not complete this refund."),
                **fields,
            )
    unknown = [refund for refund_id, refund in stripe_refunds.items() if refund_id not in seen]
    payments = {
        payment.stripe_payment_intent_id: payment
        for payment in Payment.objects.filter(
            stripe_payment_intent_id__in=[refund.payment_intent_id for refund in unknown if refund.payment_intent_id]
        )
    }
    for stripe_refund in unknown:
        payment = payments.get(stripe_refund.payment_intent_id)
        found.add(
            Difference.MISSING_LOCALLY,
            Difference.REFUND,
            stripe_id=stripe_refund.id,
            stripe_payment_intent_id=stripe_refund.payment_intent_id,
            payment=payment,
            invoice_id=payment.invoice_id if payment else None,
            stripe_value=f"{_money(stripe_refund.amount_minor, stripe_refund.currency)} {stripe_refund.status}",
            detail=gettext_noop("No local refund has this Stripe refund."),
        )


def _compare_paid_invoices(found: _Found, start, end) -> None:
    """An invoice paid by card here must have a succeeded payment (which Stripe then has)."""
    unpaid = (
        Invoice.objects.filter(status=Invoice.PAID, paid_at__gte=start, paid_at__lt=end, amount_due_minor__gt=0)
        .exclude(payments__status=Payment.SUCCEEDED)
        .order_by("pk")
    )
    for invoice in unpaid:
        found.add(
            Difference.MISSING_AT_STRIPE,
            Difference.INVOICE,
            invoice=invoice,
            local_value=f"{_money(invoice.amount_due_minor, invoice.currency)} {invoice.status}",
            detail=gettext_noop("Paid here, but no payment for it succeeded at Stripe."),
        )


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
