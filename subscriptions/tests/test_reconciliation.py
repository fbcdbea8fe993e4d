"""Reconciliation: our payments, refunds and paid invoices against localstripe's, each kind of drift."""

from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.urls import reverse

from billing_portal.celery import _beat_schedule, app
from billing_portal.lib import clock
from subscriptions import gateway, reconciliation, services, tasks
from subscriptions.models import Invoice, Payment, ReconciliationDifference, ReconciliationRun, Refund

from .admin_support import (
    OPERATOR,
    SUPPORT,
    change_url,
    messages_of,
    staff_in,
)
from .factories import PlanFactory, PriceFactory, give_card, owner_with_account

pytestmark = pytest.mark.django_db

Diff = ReconciliationDifference


@pytest.fixture
def payment(stripe_fake) -> Payment:
    """A paid start two days ago: its PaymentIntent is at Stripe, its payment here."""
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(), amount_minor=1900)
    services.subscription_start(account=account, price=price, actor=owner, now=clock.now() - timedelta(days=2))
    return Payment.objects.get(invoice__account=account)


@pytest.fixture
def operator():
    return staff_in(OPERATOR)


def differences(run) -> list[tuple[str, str]]:
    return sorted(run.differences.values_list("kind", "object_kind"))


def test_payments_and_refunds_that_match_show_no_difference(payment, operator):
    services.payment_refund(payment=payment, amount_minor=500, reason="Goodwill", actor=operator)
    run = reconciliation.reconciliation_run()
    assert run.status == ReconciliationRun.COMPLETED
    assert differences(run) == []
    assert (run.payment_intents_checked, run.refunds_checked, run.payments_checked) == (1, 1, 1)
    assert run.finished_at is not None


def test_a_payment_intent_only_stripe_has_is_missing_locally(payment):
    account = payment.invoice.account
    intent_id = gateway.payment_intent_create(
        amount_minor=700,
        currency="eur",
        customer_id=account.stripe_customer_id,
        payment_method_id=account.payment_method_id,
        idempotency_key="outside-the-portal",
        metadata={"invoice_id": payment.invoice_id},
    )
    gateway.payment_intent_confirm(payment_intent_id=intent_id, idempotency_key="outside-the-portal")
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.MISSING_LOCALLY, Diff.PAYMENT)]
    difference = run.differences.get()
    assert (difference.stripe_id, difference.invoice, difference.payment) == (intent_id, payment.invoice, None)
    assert difference.stripe_value == "€7.00 succeeded"


def test_a_payment_stripe_does_not_know_is_missing_at_stripe(payment):
    ghost = Payment.objects.create(
        invoice=payment.invoice,
        attempt=2,
        idempotency_key="ghost",
        stripe_payment_intent_id="pi_ghost",
        amount_minor=1900,
        currency="eur",
        status=Payment.SUCCEEDED,
        created_at=clock.now() - timedelta(days=1),
    )
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.MISSING_AT_STRIPE, Diff.PAYMENT)]
    assert run.differences.get().payment == ghost


def test_an_amount_that_differs_is_an_amount_mismatch(payment):
    Payment.objects.filter(pk=payment.pk).update(amount_minor=1234)
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.AMOUNT_MISMATCH, Diff.PAYMENT)]
    difference = run.differences.get()
    assert (difference.local_value, difference.stripe_value) == ("€12.34", "€19.00")


def test_a_status_that_differs_is_a_status_mismatch(payment):
    Payment.objects.filter(pk=payment.pk).update(status=Payment.FAILED)
    run = reconciliation.reconciliation_run()
    # Its invoice is paid here with no succeeded payment left: that shows too.
    assert differences(run) == [(Diff.MISSING_AT_STRIPE, Diff.INVOICE), (Diff.STATUS_MISMATCH, Diff.PAYMENT)]
    difference = run.differences.get(kind=Diff.STATUS_MISMATCH)
    assert (difference.local_value, difference.stripe_value) == ("failed", "succeeded")


def test_a_payment_still_in_flight_is_not_a_difference(payment):
    Payment.objects.filter(pk=payment.pk).update(status=Payment.PENDING, created_at=clock.now())
    Invoice.objects.filter(pk=payment.invoice_id).update(status=Invoice.OPEN, paid_at=None)
    assert differences(reconciliation.reconciliation_run()) == []


def test_a_refund_made_in_the_stripe_dashboard_is_missing_locally(payment):
    refund_id = gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id, amount_minor=300, idempotency_key="dashboard"
    )
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.MISSING_LOCALLY, Diff.REFUND)]
    difference = run.differences.get()
    assert (difference.stripe_id, difference.payment) == (refund_id, payment)


def test_refunds_missing_at_stripe_or_with_another_amount(payment, operator):
    services.payment_refund(payment=payment, amount_minor=500, reason="Goodwill", actor=operator)
    Refund.objects.update(amount_minor=600)
    Refund.objects.create(
        payment=payment,
        amount_minor=100,
        currency="eur",
        reason="Never reached Stripe",
        idempotency_key="ghost-refund",
        stripe_refund_id="re_ghost",
        status=Refund.SUCCEEDED,
        created_at=clock.now(),
    )
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.AMOUNT_MISMATCH, Diff.REFUND), (Diff.MISSING_AT_STRIPE, Diff.REFUND)]


def test_a_refund_recorded_as_failed_that_stripe_made_is_a_status_mismatch(payment, operator):
    refund = services.payment_refund(payment=payment, amount_minor=500, reason="Goodwill", actor=operator)
    # As if our side had lost Stripe's answer: the refund exists there, carrying our id.
    Refund.objects.filter(pk=refund.pk).update(status=Refund.FAILED, stripe_refund_id="")
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.STATUS_MISMATCH, Diff.REFUND)]
    assert run.differences.get().refund == refund


def test_an_invoice_paid_here_without_a_succeeded_payment_is_missing_at_stripe(payment):
    invoice = Invoice.objects.create(
        account=payment.invoice.account,
        billing_reason=Invoice.CYCLE,
        price=payment.invoice.price,
        status=Invoice.PAID,
        currency="eur",
        period_start=clock.now(),
        period_end=clock.now() + timedelta(days=30),
        subtotal_minor=1900,
        amount_due_minor=1900,
        created_at=clock.now(),
        paid_at=clock.now(),
    )
    run = reconciliation.reconciliation_run()
    assert differences(run) == [(Diff.MISSING_AT_STRIPE, Diff.INVOICE)]
    assert run.differences.get().invoice == invoice


@override_settings(LOCALSTRIPE_URL="http://127.0.0.1:9", STRIPE_MAX_NETWORK_RETRIES=0)
def test_when_stripe_cannot_be_reached_the_run_fails_and_says_why(db):
    run = reconciliation.reconciliation_run()
    assert run.status == ReconciliationRun.FAILED
    assert "APIConnectionError" in run.error
    assert not run.differences.exists()


def test_the_daily_task_runs_it_and_beat_schedules_it(payment):
    Payment.objects.filter(pk=payment.pk).update(amount_minor=1)
    assert tasks.reconcile() == 1
    assert ReconciliationRun.objects.get().differences_count == 1
    _beat_schedule(app)
    entry = app.conf.beat_schedule["billing-reconcile"]
    assert entry["task"] == "subscriptions.tasks.reconcile"
    assert entry["schedule"].hour == {4} and entry["schedule"].minute == {30}


# --- the admin page -------------------------------------------------------------------------------------
def test_the_page_lists_each_difference_with_a_link_to_each_side(client, payment):
    Payment.objects.filter(pk=payment.pk).update(amount_minor=1234)
    reconciliation.reconciliation_run()
    client.force_login(staff_in(SUPPORT))
    page = client.get(reverse("billing_admin:reconciliation")).content.decode()
    assert "Amount mismatch" in page
    assert change_url(payment) in page
    assert change_url(payment.invoice) in page
    assert f"https://dashboard.stripe.com/test/payments/{payment.stripe_payment_intent_id}" in page
    assert "Check now" not in page  # support views, operators run


def test_an_operator_starts_a_run_from_the_page(client, db):
    client.force_login(staff_in(OPERATOR))
    with mock.patch.object(tasks.reconcile, "delay") as delay:
        response = client.post(reverse("billing_admin:reconciliation-start"), follow=True)
    delay.assert_called_once_with()
    assert "A reconciliation has started." in messages_of(response)[0]
    assert client.get(reverse("billing_admin:reconciliation-start")).status_code == 405


def test_support_cannot_start_a_run(client, db):
    client.force_login(staff_in(SUPPORT))
    with mock.patch.object(tasks.reconcile, "delay") as delay:
        assert client.post(reverse("billing_admin:reconciliation-start")).status_code == 403
    delay.assert_not_called()


def test_an_earlier_run_can_be_opened(client, payment):
    first = reconciliation.reconciliation_run()
    Payment.objects.filter(pk=payment.pk).update(status=Payment.FAILED)
    reconciliation.reconciliation_run()
    client.force_login(staff_in(SUPPORT))
    latest = client.get(reverse("billing_admin:reconciliation")).content.decode()
    assert "Status mismatch" in latest and "Missing at Stripe" in latest
    earlier = client.get(reverse("billing_admin:reconciliation") + f"?run={first.pk}").content.decode()
    assert "Everything matches: no differences." in earlier
    assert client.get(reverse("billing_admin:reconciliation") + "?run=999999").status_code == 404
