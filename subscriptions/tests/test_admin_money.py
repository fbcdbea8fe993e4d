"""Invoices and payments in admin: read-only, refunds through Stripe, uncollectible invoices, Stripe links."""

from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from billing_portal.lib import clock
from subscriptions import gateway, lifecycle, services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import Invoice, InvoiceLine, Payment, Refund, Subscription, SubscriptionEvent

from .admin_support import (
    OPERATOR,
    change_url,
    changelist,
    messages_of,
    post_action,
    staff_in,
)
from .factories import DECLINING_CARD, PlanFactory, PriceFactory, give_card, give_card_number, owner_with_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = staff_in(OPERATOR)
    client.force_login(user)
    return user


def paid_payment(amount_minor=1900) -> Payment:
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(), amount_minor=amount_minor)
    services.subscription_start(account=account, price=price, actor=owner, now=clock.now() - timedelta(days=3))
    return Payment.objects.get(invoice__account=account, status=Payment.SUCCEEDED)


def stripe_refunds(stripe_fake, payment_intent_id: str) -> list[dict]:
    response = requests.get(
        f"{stripe_fake.url}/v1/refunds",
        params={"payment_intent": payment_intent_id, "limit": 100},
        auth=(settings.STRIPE_SECRET_KEY, ""),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["data"]


def refund(client, payment, **fields):
    fields.setdefault("refunds_seen", payment.refunds.count())  # as the refund page carries it
    return post_action(client, Payment, "refund", [payment], confirm="Refund", _from_object=payment.pk, **fields)


# --- refunds ---------------------------------------------------------------------------------------------
def test_the_refund_page_asks_amount_and_reason_and_shows_what_can_be_refunded(client, operator, stripe_fake):
    payment = paid_payment()
    page = post_action(client, Payment, "refund", [payment], follow=False)
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="amount"' in content and 'name="reason"' in content
    assert "€19.00" in content  # paid, and refundable
    assert stripe_refunds(stripe_fake, payment.stripe_payment_intent_id) == []


def test_partial_then_full_refund_through_stripe_with_a_credit_note(client, operator, stripe_fake):
    payment = paid_payment(1900)
    intent = payment.stripe_payment_intent_id
    response = refund(client, payment, amount="5.00", reason="Double booking")
    assert response.redirect_chain[-1][0] == change_url(payment)
    first = Refund.objects.get(payment=payment)
    assert f"Refunded €5.00 (Stripe refund {first.stripe_refund_id})." in messages_of(response)
    assert (first.status, first.amount_minor, first.reason, first.created_by) == (
        Refund.SUCCEEDED,
        500,
        "Double booking",
        operator,
    )
    assert first.idempotency_key == f"payment-{payment.pk}-refund-1"
    assert [(item["id"], item["amount"]) for item in stripe_refunds(stripe_fake, intent)] == [
        (first.stripe_refund_id, 500)
    ]
    line = InvoiceLine.objects.get(invoice=payment.invoice, kind=InvoiceLine.REFUND)
    assert line.amount_minor == -500 and first.invoice_line == line
    payment.refresh_from_db()
    assert payment.refunded_minor == 500
    event = SubscriptionEvent.objects.get(kind="payment_refunded")
    assert (event.actor, event.actor_kind, event.reason, event.data["amount_minor"]) == (
        operator,
        SubscriptionEvent.OPERATOR,
        "Double booking",
        500,
    )

    refund(client, payment, amount="14.00", reason="Customer left")
    payment.refresh_from_db()
    assert payment.refunded_minor == 1900
    assert Refund.objects.get(payment=payment, amount_minor=1400).idempotency_key == f"payment-{payment.pk}-refund-2"
    assert sorted(item["amount"] for item in stripe_refunds(stripe_fake, intent)) == [500, 1400]
    assert 'value="refund"' not in client.get(change_url(payment)).content.decode()  # nothing left
    assert Subscription.objects.get().status == lifecycle.ACTIVE  # a refund does not end the subscription


def test_refunding_more_than_paid_minus_refunded_is_refused_and_nothing_moves(client, operator, stripe_fake):
    payment = paid_payment(1900)
    refund(client, payment, amount="15.00", reason="Partial")
    response = refund(client, payment, amount="4.01", reason="Too much")
    assert "At most €4.00 can be refunded." in response.content.decode()
    payment.refresh_from_db()
    assert payment.refunded_minor == 1500
    assert len(stripe_refunds(stripe_fake, payment.stripe_payment_intent_id)) == 1
    with pytest.raises(InvalidTransition, match="At most €4.00"):
        services.payment_refund(payment=payment, amount_minor=401, reason="Too much", actor=operator)


def test_a_refund_needs_a_reason(client, operator, stripe_fake):
    payment = paid_payment()
    response = refund(client, payment, amount="1.00", reason="")
    assert "This field is required." in response.content.decode()
    assert not Refund.objects.exists()
    assert stripe_refunds(stripe_fake, payment.stripe_payment_intent_id) == []


def test_a_failed_payment_cannot_be_refunded(client, operator, stripe_fake):
    owner, account = owner_with_account()
    give_card_number(account, DECLINING_CARD)
    with pytest.raises(services.PaymentFailed):
        services.subscription_start(account=account, price=PriceFactory(), actor=owner)
    payment = Payment.objects.get()
    assert 'value="refund"' not in client.get(change_url(payment)).content.decode()
    response = refund(client, payment, amount="1.00", reason="Why not")
    assert "There is nothing left to refund on this payment." in messages_of(response)
    assert not Refund.objects.exists()


def test_a_refund_stripe_refuses_is_recorded_as_failed_with_no_credit_note(operator, stripe_fake):
    payment = paid_payment()
    Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id="pi_unknown_at_stripe")
    payment.refresh_from_db()
    with pytest.raises(services.RefundFailed):
        services.payment_refund(payment=payment, amount_minor=100, reason="Test", actor=operator)
    failed = Refund.objects.get()
    assert failed.status == Refund.FAILED and failed.failure_message
    assert not InvoiceLine.objects.filter(kind=InvoiceLine.REFUND).exists()
    payment.refresh_from_db()
    assert payment.refunded_minor == 0


def test_refunds_are_for_operators_only(stripe_fake):
    payment = paid_payment()
    customer = payment.invoice.account.memberships.get().user
    with pytest.raises(InvalidTransition):
        services.payment_refund(payment=payment, amount_minor=100, reason="Me", actor=customer)
    assert not Refund.objects.exists()


# --- mark uncollectible ---------------------------------------------------------------------------------
def past_due_subscription() -> Subscription:
    owner, account = owner_with_account()
    give_card(account)
    failed_at = clock.now() - timedelta(days=2)
    sub = services.subscription_start(
        account=account, price=PriceFactory(amount_minor=1900), actor=owner, now=failed_at - timedelta(days=31)
    )
    give_card_number(account, DECLINING_CARD)
    services.subscription_process_due(subscription_id=sub.pk, now=failed_at)
    sub.refresh_from_db()
    return sub


def test_marking_a_past_due_invoice_uncollectible_ends_dunning_as_the_final_action_would(client, operator, stripe_fake):
    sub = past_due_subscription()
    invoice = Invoice.objects.get(subscription=sub, status=Invoice.OPEN)
    assert 'value="mark_uncollectible"' in client.get(change_url(invoice)).content.decode()
    response = post_action(client, Invoice, "mark_uncollectible", [invoice], index=0, _from_object=invoice.pk)
    assert "1 invoice marked uncollectible." in messages_of(response)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.UNCOLLECTIBLE and invoice.closed_at
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED and sub.next_retry_at is None
    event = SubscriptionEvent.objects.filter(subscription=sub).first()
    assert (event.kind, event.actor, event.actor_kind) == ("dunning_canceled", operator, SubscriptionEvent.OPERATOR)


@override_settings(BILLING_DUNNING_FINAL_ACTION="pause")
def test_with_the_pause_final_action_the_subscription_is_paused_instead(client, operator, stripe_fake):
    sub = past_due_subscription()
    invoice = Invoice.objects.get(subscription=sub, status=Invoice.OPEN)
    post_action(client, Invoice, "mark_uncollectible", [invoice], index=0)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAUSED


def test_only_open_invoices_can_be_marked_uncollectible(client, operator, stripe_fake):
    payment = paid_payment()
    invoice = payment.invoice
    response = post_action(client, Invoice, "mark_uncollectible", [invoice], index=0)
    assert f"Invoice {invoice.number}: Only an open invoice can be marked uncollectible." in messages_of(response)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert 'value="mark_uncollectible"' not in client.get(change_url(invoice)).content.decode()


# --- read-only, links ------------------------------------------------------------------------------------
def test_invoices_and_payments_are_read_only(client, operator, stripe_fake):
    payment = paid_payment()
    assert client.post(change_url(payment.invoice), {"status": Invoice.VOID}).status_code == 403
    assert client.post(change_url(payment), {"status": Payment.FAILED}).status_code == 403
    assert client.get(changelist(Invoice) + "add/").status_code == 403
    payment.refresh_from_db()
    assert payment.status == Payment.SUCCEEDED and payment.invoice.status == Invoice.PAID
    page = client.get(change_url(payment.invoice)).content.decode()
    assert f"https://dashboard.stripe.com/test/payments/{payment.stripe_payment_intent_id}" in page


def test_the_stripe_link_is_the_test_dashboard_for_test_keys_and_the_live_one_for_live_keys():
    with override_settings(STRIPE_SECRET_KEY="sk_test_abc"):
        assert gateway.dashboard_url(payment_intent_id="pi_1") == "https://dashboard.stripe.com/test/payments/pi_1"
    with override_settings(STRIPE_SECRET_KEY="sk_live_abc"):
        assert gateway.dashboard_url(payment_intent_id="pi_1") == "https://dashboard.stripe.com/payments/pi_1"


def test_invoices_are_found_by_their_printed_number_or_a_payment_intent(client, operator, stripe_fake):
    payment = paid_payment()
    other = paid_payment()
    invoice = payment.invoice
    for query in (invoice.number, payment.stripe_payment_intent_id, invoice.account.name):
        found = client.get(changelist(Invoice), {"q": query}).context["cl"].result_list
        assert [row.pk for row in found] == [invoice.pk], query
    assert other.invoice.pk not in [
        row.pk for row in client.get(changelist(Invoice), {"q": invoice.number}).context["cl"].result_list
    ]
