"""A money-moving form sent twice (a double click with JavaScript off, a browser retry) moves money once.

Each test posts the same form twice, as the browser would, and counts at Stripe (localstripe):
one charge (or one refund) for the two posts, and the second post says why it did nothing.
Covered elsewhere: the renewal job run twice (`test_services.test_renewal_run_twice_charges_once`),
an old authentication link after a retry (`test_payment_authenticate`), a double confirm of the
cancellation (`retention/tests/test_flow_bad_input`), a double deletion (`privacy/tests/test_deletion`).
"""

from datetime import timedelta

import pytest
import time_machine

from subscriptions import lifecycle, services
from subscriptions.models import Invoice, Payment, Refund, Subscription, SubscriptionEvent

from .admin_support import OPERATOR, post_action, staff_in
from .factories import DECLINING_CARD, PASSWORD, give_card_number, owner_with_account
from .pages import NOW, customer, messages_of, past_due, subscribed
from .test_admin_money import paid_payment, stripe_refunds
from .test_pages_card import confirmed_setup_intent
from .test_payment_authenticate import authenticate_at_stripe, renewal_needing_authentication

GOOD_CARD = "4242424242424242"
pytestmark = pytest.mark.django_db


def charges_for(stripe_fake, invoice: Invoice) -> int:
    """Succeeded PaymentIntents at Stripe for this invoice: the money that actually moved."""
    return sum(1 for i in stripe_fake.succeeded_payment_intents() if i["metadata"].get("invoice_id") == str(invoice.pk))


def post_twice(client, url: str, data: dict | None = None):
    first = client.post(url, data or {}, follow=True)
    second = client.post(url, data or {}, follow=True)
    assert first.status_code < 500 and second.status_code < 500
    return first, second


def test_pay_now_sent_twice_charges_the_open_invoice_once(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    invoice = Invoice.objects.get(subscription=sub, status=Invoice.OPEN)
    give_card_number(account, GOOD_CARD)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        first, second = post_twice(client, "/billing/pay-now/")
    assert "the open invoice is paid" in messages_of(first)[0]
    assert messages_of(second) and "is paid" not in messages_of(second)[0]  # says why it did nothing
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert charges_for(stripe_fake, invoice) == 1


def test_an_upgrade_sent_twice_is_charged_once(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = len(stripe_fake.succeeded_payment_intents())
    business = plans["business"]["monthly"]
    first, second = post_twice(client, f"/billing/plans/{business.pk}/confirm/", {"when": "now"})
    assert "We charged" in messages_of(first)[0]
    assert "We charged" not in " ".join(messages_of(second))
    sub.refresh_from_db()
    assert sub.price == business
    assert len(stripe_fake.succeeded_payment_intents()) == before + 1
    assert SubscriptionEvent.objects.filter(subscription=sub, kind="price_changed").count() == 1


def test_a_paid_start_sent_twice_starts_and_charges_once(client, plans, stripe_fake, frozen):
    owner, account = customer()
    client.force_login(owner)
    first, second = post_twice(client, f"/billing/subscribe/{plans['pro']['monthly'].pk}/")
    assert "Welcome to Pro" in messages_of(first)[0]
    assert messages_of(second)  # refused, and says so
    assert Subscription.objects.filter(account=account).count() == 1
    assert len(stripe_fake.succeeded_payment_intents()) == 1


def test_the_signup_pay_step_sent_twice_charges_once(client, plans, stripe_fake):
    owner, account = owner_with_account()
    client.force_login(owner)
    price = plans["pro"]["monthly"]
    setup_intent_id = confirmed_setup_intent(account, GOOD_CARD)
    first, second = post_twice(client, f"/accounts/signup/pay/{price.pk}/", {"setup_intent_id": setup_intent_id})
    assert "Your payment went through" in messages_of(first)[0]
    assert messages_of(second) == ["Your account already has a subscription."]
    assert Subscription.objects.filter(account=account).count() == 1
    assert len(stripe_fake.succeeded_payment_intents()) == 1


def test_a_new_card_sent_twice_while_past_due_pays_the_open_invoice_once(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    invoice = Invoice.objects.get(subscription=sub, status=Invoice.OPEN)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        setup_intent_id = confirmed_setup_intent(account, GOOD_CARD)
        first, _second = post_twice(
            client, "/billing/card/finish/", {"setup_intent_id": setup_intent_id, "next": "/billing/"}
        )
    assert any("open invoice is paid" in text for text in messages_of(first))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert charges_for(stripe_fake, invoice) == 1


def test_the_authentication_page_sent_twice_settles_the_payment_once(
    client, stripe_fake, django_capture_on_commit_callbacks
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    client.login(username=owner.email, password=PASSWORD)
    authenticate_at_stripe(stripe_fake, payment)
    with django_capture_on_commit_callbacks(execute=True):
        first, second = post_twice(client, f"/billing/pay/{payment.invoice_id}/authenticate/")
    assert "the payment is confirmed" in messages_of(first)[0]
    assert messages_of(second) == ["This invoice has no payment waiting for your confirmation."]
    assert charges_for(stripe_fake, payment.invoice) == 1
    assert SubscriptionEvent.objects.filter(subscription=sub, kind="payment_recovered").count() == 1


def test_resume_sent_twice_bills_the_new_period_once(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_pause(subscription=sub, actor=owner, months=1, now=NOW)
    client.force_login(owner)
    before = len(stripe_fake.payment_intents())
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        first, second = post_twice(client, "/billing/resume/")
    assert "running again" in messages_of(first)[0]
    assert messages_of(second)  # refused: it is not paused any more
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert len(stripe_fake.payment_intents()) - before <= 1
    assert SubscriptionEvent.objects.filter(subscription=sub, kind="resumed").count() == 1


@pytest.fixture
def operator(client):
    user = staff_in(OPERATOR)
    client.force_login(user)
    return user


def test_a_refund_form_sent_twice_refunds_once(client, operator, stripe_fake):
    payment = paid_payment(1900)
    form = {"confirm": "Refund", "amount": "5.00", "reason": "Double booking", "refunds_seen": "0"}
    first = post_action(client, Payment, "refund", [payment], _from_object=payment.pk, **form)
    second = post_action(client, Payment, "refund", [payment], _from_object=payment.pk, **form)
    assert any(text.startswith("Refunded €5.00") for text in messages_of(first))
    assert any("refunded meanwhile" in text for text in messages_of(second))
    payment.refresh_from_db()
    assert payment.refunded_minor == 500
    assert Refund.objects.filter(payment=payment).count() == 1
    assert [item["amount"] for item in stripe_refunds(stripe_fake, payment.stripe_payment_intent_id)] == [500]


def test_an_operator_retry_sent_twice_charges_once(client, operator, plans, stripe_fake):
    _owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    invoice = Invoice.objects.get(subscription=sub, status=Invoice.OPEN)
    give_card_number(account, GOOD_CARD)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        post_action(client, Subscription, "retry_payment", [sub])
        second = post_action(client, Subscription, "retry_payment", [sub])
    assert any("refused" in text for text in messages_of(second))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert charges_for(stripe_fake, invoice) == 1


def test_counting_charges_sees_every_succeeded_intent(stripe_fake, plans):
    """The counter above is not blind: two starts on two accounts are two charges at Stripe."""
    for _ in range(2):
        owner, account = customer()
        services.subscription_start(account=account, price=plans["pro"]["monthly"], actor=owner)
    assert len(stripe_fake.succeeded_payment_intents()) == 2
