"""Stripe webhooks: signature, once per event id, out of order, each handler's one effect."""

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery.exceptions import Retry
from django.core import mail
from django.test import Client

from accounts.models import Account
from subscriptions import gateway, lifecycle, services, tasks
from subscriptions.models import Invoice, Payment, StripeEvent, Subscription, SubscriptionEvent

from .factories import (
    AUTHENTICATION_CARD,
    DECLINING_CARD,
    PlanFactory,
    PriceFactory,
    give_card,
    give_card_number,
    give_saved_card_number,
    owner_with_account,
)
from .stripe_events import deliver, event, localstripe_object, localstripe_post, signed

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks):
    """Deliver a signed event and run what it queues (the processing task runs inline in tests)."""

    def post(payload: dict, **signing):
        with django_capture_on_commit_callbacks(execute=True):
            return deliver(client, payload, **signing)

    return post


def paid_subscription(amount_minor=1900, card="pm_card_visa"):
    owner, account = owner_with_account()
    give_card(account, card)
    price = PriceFactory(plan=PlanFactory(), amount_minor=amount_minor)
    return owner, account, services.subscription_start(account=account, price=price, actor=owner, now=T0)


def renewal_left_pending(sub, monkeypatch, card_number=None) -> Payment:
    """A renewal charged at Stripe by a worker that died before recording the outcome."""
    if card_number == AUTHENTICATION_CARD:
        give_saved_card_number(sub.account, card_number)
    elif card_number:
        give_card_number(sub.account, card_number)
    with monkeypatch.context() as patch:
        patch.setattr(services, "payment_settle", lambda **kwargs: kwargs["payment"])
        services.subscriptions_renew_due(now=sub.current_period_end)
    payment = Payment.objects.get(invoice__subscription=sub, invoice__billing_reason=Invoice.CYCLE)
    assert payment.status == Payment.PENDING and payment.stripe_payment_intent_id
    return payment


def intent_event(event_type: str, payment: Payment, fake_stripe, **extra) -> dict:
    """An event carrying the PaymentIntent as localstripe has it now."""
    return event(
        event_type, localstripe_object(fake_stripe, f"payment_intents/{payment.stripe_payment_intent_id}"), **extra
    )


def audit(sub: Subscription, kind: str) -> int:
    return SubscriptionEvent.objects.filter(subscription=sub, kind=kind).count()


# --- Signature and transport --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "tampered body", "missing header", "stale timestamp", "not json"],
)
def test_a_webhook_that_fails_verification_gets_400_and_records_nothing(client, tamper, stripe_fake):
    payload = event("payment_intent.succeeded", {"id": "pi_123", "object": "payment_intent"})
    body, header = signed(payload)
    if tamper == "wrong secret":
        body, header = signed(payload, secret="whsec_somebody_else")
    elif tamper == "tampered body":
        body = body.replace(b"pi_123", b"pi_999")
    elif tamper == "missing header":
        header = ""
    elif tamper == "stale timestamp":
        body, header = signed(payload, timestamp=int(time.time()) - 3600)
    elif tamper == "not json":
        body = b"not json"
        body, header = body, signed(payload)[1]
    response = client.post("/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_the_webhook_answers_only_post(client):
    assert client.get("/stripe/webhook/").status_code == 405
    assert not StripeEvent.objects.exists()


def test_the_webhook_needs_no_csrf_token_and_answers_ok_then_duplicate(django_capture_on_commit_callbacks):
    strict = Client(enforce_csrf_checks=True)
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(strict, payload)
        second = deliver(strict, payload)
    assert (first.status_code, first.content, second.status_code, second.content) == (200, b"ok", 200, b"duplicate")
    row = StripeEvent.objects.get()
    assert (row.event_id, row.type, row.outcome) == (payload["id"], "customer.created", "ignored: not a type we handle")
    assert row.processed_at is not None


def test_the_webhook_url_has_its_name():
    from django.urls import reverse

    assert reverse("subscriptions:stripe-webhook") == "/stripe/webhook/"


# --- payment_intent.* ------------------------------------------------------------------------------------
def test_payment_intent_succeeded_settles_a_renewal_whose_worker_died_before_recording_it(
    stripe_fake, monkeypatch, post_event
):
    owner, account, sub = paid_subscription()
    payment = renewal_left_pending(sub, monkeypatch)
    post_event(intent_event("payment_intent.succeeded", payment, stripe_fake))
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert payment.status == Payment.SUCCEEDED
    assert payment.invoice.status == Invoice.PAID
    assert (sub.status, sub.next_retry_at) == (lifecycle.ACTIVE, None)
    assert [message.subject for message in mail.outbox] == [f"Receipt for invoice {payment.invoice.number}"]
    assert audit(sub, "payment_succeeded") == 1
    assert SubscriptionEvent.objects.filter(subscription=sub, actor_kind=SubscriptionEvent.WEBHOOK).count() == 1


def test_a_late_payment_failed_event_never_moves_a_paid_subscription_backwards(stripe_fake, post_event):
    owner, account, sub = paid_subscription()
    services.subscriptions_renew_due(now=sub.current_period_end)
    payment = Payment.objects.get(invoice__billing_reason=Invoice.CYCLE)
    assert payment.status == Payment.SUCCEEDED
    stale = intent_event("payment_intent.payment_failed", payment, stripe_fake)
    stale["data"]["object"]["status"] = "requires_payment_method"  # what an old event would carry
    events_before = SubscriptionEvent.objects.count()
    post_event(stale)
    post_event(intent_event("payment_intent.requires_action", payment, stripe_fake))
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, sub.status) == (Payment.SUCCEEDED, lifecycle.ACTIVE)
    assert SubscriptionEvent.objects.count() == events_before
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2


def test_payment_failed_event_for_a_renewal_left_pending_starts_dunning_once(stripe_fake, monkeypatch, post_event):
    owner, account, sub = paid_subscription()
    payment = renewal_left_pending(sub, monkeypatch, card_number=DECLINING_CARD)
    post_event(intent_event("payment_intent.payment_failed", payment, stripe_fake))
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert payment.status == Payment.FAILED
    assert sub.status == lifecycle.PAST_DUE
    assert sub.next_retry_at == sub.past_due_since + timedelta(days=1)
    assert [message.subject for message in mail.outbox] == ["Your payment failed: please update your card"]


def test_payment_intent_requires_action_asks_the_customer_to_authenticate(stripe_fake, monkeypatch, post_event):
    owner, account, sub = paid_subscription()
    payment = renewal_left_pending(sub, monkeypatch, card_number=AUTHENTICATION_CARD)
    post_event(intent_event("payment_intent.requires_action", payment, stripe_fake))
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, sub.status) == (Payment.REQUIRES_ACTION, lifecycle.PAST_DUE)
    assert [message.subject for message in mail.outbox] == ["Your bank asks you to confirm a payment"]
    assert f"/billing/pay/{payment.invoice_id}/authenticate/" in mail.outbox[0].body


def test_an_event_for_a_payment_intent_that_is_not_ours_is_ignored(stripe_fake, post_event):
    post_event(event("payment_intent.succeeded", {"id": "pi_unknown", "object": "payment_intent"}))
    assert StripeEvent.objects.get().outcome == "ignored: no payment for this intent"


# --- setup_intent.succeeded, payment_method.* ----------------------------------------------------------------
def confirmed_setup_intent(account: Account, payment_method: str = "pm_card_visa") -> dict:
    setup_intent_id, _secret = services.account_card_setup_start(account=account)
    gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id=payment_method)
    return {"id": setup_intent_id, "object": "setup_intent", "customer": account.stripe_customer_id}


def test_setup_intent_succeeded_makes_the_card_default_and_pays_a_past_due_invoice(stripe_fake, post_event):
    owner, account, sub = paid_subscription()
    give_card_number(account, DECLINING_CARD)
    services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    declining_card = Account.objects.get(pk=account.pk).payment_method_id
    time.sleep(1.1)  # Stripe orders cards by their creation second
    post_event(event("setup_intent.succeeded", confirmed_setup_intent(account)))
    account.refresh_from_db()
    sub.refresh_from_db()
    assert account.payment_method_id != declining_card
    assert account.card_last4 == "4242"
    assert sub.status == lifecycle.ACTIVE
    assert Invoice.objects.get(period_start=sub.current_period_start).status == Invoice.PAID


def test_an_older_setup_intent_arriving_late_does_not_replace_a_newer_card(stripe_fake, post_event):
    owner, account = owner_with_account()
    services.account_ensure_stripe_customer(account=account)
    older = confirmed_setup_intent(account, "pm_card_visa")
    time.sleep(1.1)
    give_card_number(account, "5555555555554444")  # the customer then saved a newer card
    account.refresh_from_db()
    newer = account.payment_method_id
    post_event(event("setup_intent.succeeded", older))
    account.refresh_from_db()
    assert account.payment_method_id == newer
    assert StripeEvent.objects.get().outcome == "ignored: the default card is newer"


def test_payment_method_updated_refreshes_the_card_expiry(stripe_fake, post_event):
    owner, account = owner_with_account()
    give_card(account)
    account.refresh_from_db()
    method = localstripe_object(stripe_fake, f"payment_methods/{account.payment_method_id}")
    # The bank sent a new expiry date (Stripe's card updater), then Stripe tells us.
    card = {**method["card"], "exp_month": 3, "exp_year": 2031}
    updated = localstripe_post(stripe_fake, f"payment_methods/{account.payment_method_id}", {"card": card})
    post_event(event("payment_method.updated", updated))
    account.refresh_from_db()
    assert (account.card_exp_month, account.card_exp_year, account.card_last4) == (3, 2031, "4242")


def test_payment_method_detached_forgets_the_card_and_a_stale_update_does_not_bring_it_back(stripe_fake, post_event):
    owner, account = owner_with_account()
    give_card(account)
    account.refresh_from_db()
    pm = account.payment_method_id
    stale_update = event("payment_method.updated", localstripe_object(stripe_fake, f"payment_methods/{pm}"))
    detached = localstripe_post(stripe_fake, f"payment_methods/{pm}/detach", {})
    post_event(event("payment_method.detached", detached))
    account.refresh_from_db()
    assert (account.payment_method_id, account.card_last4, account.card_exp_year) == ("", "", None)
    post_event(stale_update)
    account.refresh_from_db()
    assert account.payment_method_id == ""


# --- charge.refunded, charge.dispute.created -------------------------------------------------------------
def charge_event(event_type: str, payment: Payment, **fields) -> dict:
    obj = {"id": f"ch_{payment.pk}", "object": "charge", "payment_intent": payment.stripe_payment_intent_id, **fields}
    return event(event_type, obj)


def test_charge_refunded_records_the_refunded_amount_and_never_lowers_it(stripe_fake, post_event):
    owner, account, sub = paid_subscription(amount_minor=1900)
    payment = Payment.objects.get()
    gateway.refund_create(payment_intent_id=payment.stripe_payment_intent_id, amount_minor=500, idempotency_key="r1")
    first = charge_event("charge.refunded", payment, amount=1900, amount_refunded=500)
    gateway.refund_create(payment_intent_id=payment.stripe_payment_intent_id, amount_minor=1400, idempotency_key="r2")
    second = charge_event("charge.refunded", payment, amount=1900, amount_refunded=1900)
    post_event(second)
    post_event(first)  # late, with the smaller running total
    payment.refresh_from_db()
    assert payment.refunded_minor == 1900
    assert audit(sub, "payment_refunded") == 1


def test_a_dispute_flags_the_payment_for_operators_once(stripe_fake, post_event, admin_client):
    owner, account, sub = paid_subscription()
    payment = Payment.objects.get()
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": payment.stripe_payment_intent_id,
        "reason": "fraudulent",
    }
    post_event(event("charge.dispute.created", dispute))
    post_event(event("charge.dispute.created", dispute))  # a second event about the same dispute
    payment.refresh_from_db()
    assert payment.disputed_at is not None and payment.dispute_reason == "fraudulent"
    assert audit(sub, "charge_disputed") == 1
    page = admin_client.get("/admin/subscriptions/payment/?disputed=yes")
    assert page.status_code == 200 and payment.stripe_payment_intent_id in page.content.decode()


# --- Duplicates, shuffled order, lost tasks ---------------------------------------------------------------
def test_every_event_delivered_three_times_in_shuffled_order_has_exactly_one_effect(
    stripe_fake, monkeypatch, post_event
):
    _o, _a, paid_sub = paid_subscription()
    paid = renewal_left_pending(paid_sub, monkeypatch)
    _o, _a, declined_sub = paid_subscription()
    declined = renewal_left_pending(declined_sub, monkeypatch, card_number=DECLINING_CARD)
    _o, _a, sca_sub = paid_subscription()
    sca = renewal_left_pending(sca_sub, monkeypatch, card_number=AUTHENTICATION_CARD)
    _o, card_account = owner_with_account()
    services.account_ensure_stripe_customer(account=card_account)
    _o, detach_account = owner_with_account()
    give_card(detach_account)
    detach_account.refresh_from_db()
    detached = localstripe_post(stripe_fake, f"payment_methods/{detach_account.payment_method_id}/detach", {})
    start = Payment.objects.get(invoice__subscription=paid_sub, invoice__billing_reason=Invoice.CREATE)
    dispute_of = Payment.objects.get(invoice__subscription=declined_sub, invoice__billing_reason=Invoice.CREATE)
    events = [
        intent_event("payment_intent.succeeded", paid, stripe_fake),
        intent_event("payment_intent.payment_failed", declined, stripe_fake),
        intent_event("payment_intent.requires_action", sca, stripe_fake),
        event("setup_intent.succeeded", confirmed_setup_intent(card_account)),
        event("payment_method.detached", detached),
        charge_event("charge.refunded", start, amount=1900, amount_refunded=700),
        event("charge.dispute.created", {"id": "dp_9", "payment_intent": dispute_of.stripe_payment_intent_id}),
    ]
    deliveries = events * 3
    random.Random(20260401).shuffle(deliveries)
    answers = [post_event(payload).status_code for payload in deliveries]
    assert answers == [200] * len(deliveries)

    assert StripeEvent.objects.count() == len(events)
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()
    paid.refresh_from_db()
    declined.refresh_from_db()
    sca.refresh_from_db()
    start.refresh_from_db()
    dispute_of.refresh_from_db()
    card_account.refresh_from_db()
    detach_account.refresh_from_db()
    assert (paid.status, declined.status, sca.status) == (Payment.SUCCEEDED, Payment.FAILED, Payment.REQUIRES_ACTION)
    assert audit(paid_sub, "payment_succeeded") == 1
    assert audit(declined_sub, "renewal_failed") == 1
    assert audit(sca_sub, "renewal_failed") == 1
    assert card_account.card_last4 == "4242"
    assert detach_account.payment_method_id == ""
    assert start.refunded_minor == 700 and audit(paid_sub, "payment_refunded") == 1
    assert dispute_of.disputed_at is not None and audit(declined_sub, "charge_disputed") == 1
    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects == sorted(
        [
            f"Receipt for invoice {paid.invoice.number}",
            "Your payment failed: please update your card",
            "Your bank asks you to confirm a payment",
        ]
    )


def test_an_event_whose_processing_failed_is_processed_by_a_later_sweep(
    stripe_fake, monkeypatch, client, django_capture_on_commit_callbacks, settings
):
    owner, account, sub = paid_subscription()
    payment = renewal_left_pending(sub, monkeypatch)
    payload = intent_event("payment_intent.succeeded", payment, stripe_fake)

    def unreachable(**kwargs):
        raise gateway.GatewayError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(gateway, "payment_intent_status", unreachable)
        # Inline, Celery's automatic retry surfaces as Retry; on a worker it is queued a few seconds later.
        with pytest.raises(Retry), django_capture_on_commit_callbacks(execute=True):
            deliver(client, payload)
    row = StripeEvent.objects.get()
    assert row.processed_at is None and row.attempts >= 1 and row.outcome.startswith("error: GatewayError")
    assert deliver(client, payload).content == b"duplicate"  # Stripe's retry is not needed
    later = row.received_at + timedelta(seconds=settings.BILLING_CLAIM_SECONDS + 1)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        tasks.sweep.delay()
    row.refresh_from_db()
    payment.refresh_from_db()
    assert row.processed_at is not None
    assert payment.status == Payment.SUCCEEDED
