"""A refund left pending by a process that died while asking Stripe is finished by the sweep, once."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings

from subscriptions import gateway, services, tasks
from subscriptions.models import InvoiceLine, Payment, Refund, SubscriptionEvent

from .admin_support import OPERATOR, staff_in
from .test_admin_money import paid_payment, stripe_refunds

pytestmark = pytest.mark.django_db


class Crash(BaseException):
    """The process dies here: not an Exception, so nothing on the way up handles it."""


def die(*args, **kwargs):
    raise Crash


def cut_off_refund(monkeypatch, payment: Payment, *, where: str, amount_minor: int = 500) -> Refund:
    """An operator's refund whose process died before Stripe was asked, or after Stripe refunded."""
    with monkeypatch.context() as patch:
        patch.setattr(where, die)
        with pytest.raises(Crash):
            services.payment_refund(
                payment=payment, amount_minor=amount_minor, reason="Service outage", actor=staff_in(OPERATOR)
            )
    refund = Refund.objects.get(payment=payment)
    assert refund.status == Refund.PENDING
    return refund


def sweep_at(moment, django_capture_on_commit_callbacks):
    with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
        tasks.sweep.delay()


def after_claim(refund: Refund):
    return refund.created_at + timedelta(seconds=settings.BILLING_CLAIM_SECONDS + 1)


def assert_refunded_once(stripe_fake, refund: Refund, payment: Payment, amount_minor: int = 500):
    refund.refresh_from_db()
    payment.refresh_from_db()
    made = stripe_refunds(stripe_fake, payment.stripe_payment_intent_id)
    assert [(item["id"], item["amount"]) for item in made] == [(refund.stripe_refund_id, amount_minor)]
    assert refund.status == Refund.SUCCEEDED and refund.invoice_line.amount_minor == -amount_minor
    assert payment.refunded_minor == amount_minor
    event = SubscriptionEvent.objects.get(kind="payment_refunded")
    assert (event.actor_kind, event.reason, event.data["amount_minor"]) == ("job", "Service outage", amount_minor)


def test_a_refund_cut_off_before_stripe_was_asked_is_made_by_the_sweep_once(
    stripe_fake, monkeypatch, django_capture_on_commit_callbacks
):
    payment = paid_payment()
    refund = cut_off_refund(monkeypatch, payment, where="subscriptions.gateway.refund_create")
    assert stripe_refunds(stripe_fake, payment.stripe_payment_intent_id) == []
    assert services.payment_refundable_minor(payment=payment) == 1900 - 500  # held while pending

    sweep_at(refund.created_at + timedelta(seconds=30), django_capture_on_commit_callbacks)
    refund.refresh_from_db()
    assert refund.status == Refund.PENDING  # still within the claim: its process may be asking Stripe

    sweep_at(after_claim(refund), django_capture_on_commit_callbacks)
    assert_refunded_once(stripe_fake, refund, payment)
    sweep_at(after_claim(refund) + timedelta(minutes=5), django_capture_on_commit_callbacks)
    assert_refunded_once(stripe_fake, refund, payment)


def test_a_refund_stripe_made_before_the_process_died_is_recorded_not_made_again(
    stripe_fake, monkeypatch, django_capture_on_commit_callbacks
):
    payment = paid_payment()
    refund = cut_off_refund(monkeypatch, payment, where="subscriptions.services._refund_settle")
    assert len(stripe_refunds(stripe_fake, payment.stripe_payment_intent_id)) == 1
    assert not InvoiceLine.objects.filter(kind=InvoiceLine.REFUND).exists()

    sweep_at(after_claim(refund), django_capture_on_commit_callbacks)
    assert_refunded_once(stripe_fake, refund, payment)


def test_a_refund_never_made_is_not_asked_again_after_a_day(stripe_fake, monkeypatch):
    payment = paid_payment()
    refund = cut_off_refund(monkeypatch, payment, where="subscriptions.gateway.refund_create")
    later = refund.created_at + timedelta(hours=services.REFUND_RETRY_HOURS, minutes=1)
    assert services.refund_recover(refund_id=refund.pk, now=later) == 1
    refund.refresh_from_db()
    assert refund.status == Refund.FAILED and "never made" in refund.failure_message
    assert stripe_refunds(stripe_fake, payment.stripe_payment_intent_id) == []
    assert services.payment_refundable_minor(payment=payment) == 1900  # the operator may refund again


def test_a_refund_stripe_refuses_on_recovery_is_marked_failed(stripe_fake, monkeypatch):
    payment = paid_payment()
    refund = cut_off_refund(monkeypatch, payment, where="subscriptions.gateway.refund_create")
    Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id="pi_unknown_at_stripe")
    assert services.refund_recover(refund_id=refund.pk, now=after_claim(refund)) == 1
    refund.refresh_from_db()
    assert refund.status == Refund.FAILED and refund.failure_message.startswith("InvalidRequestError")
    assert not InvoiceLine.objects.filter(kind=InvoiceLine.REFUND).exists()


def test_while_stripe_is_unreachable_the_refund_stays_pending_for_the_next_sweep(stripe_fake, monkeypatch):
    payment = paid_payment()
    refund = cut_off_refund(monkeypatch, payment, where="subscriptions.gateway.refund_create")

    def unreachable(**kwargs):
        raise gateway.GatewayError("APIConnectionError: connection refused")

    monkeypatch.setattr(gateway, "refund_find", unreachable)
    assert services.refund_recover(refund_id=refund.pk, now=after_claim(refund)) == 0
    refund.refresh_from_db()
    payment.invoice.account.refresh_from_db()
    assert refund.status == Refund.PENDING
    assert payment.invoice.account.billing_claimed_until is None  # released for the next sweep
