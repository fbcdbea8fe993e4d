"""Dunning on a travelled clock: declines, retries on schedule, emails, a new card, the final action.

The jobs run as in production (tasks.sweep fans out process_subscription; emails go out from
send_notice once the transaction commits), only inline and with the clock moved by time-machine.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from subscriptions import gateway, lifecycle, selectors, services, tasks
from subscriptions.models import EmailSent, Invoice, Payment

from .factories import (
    DECLINING_CARD,
    PASSWORD,
    PlanFactory,
    PriceFactory,
    UserFactory,
    give_card,
    give_card_number,
    owner_with_account,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
FAILED_AT = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)  # the first renewal of a subscription started at T0


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run the beat sweep at `moment`, with what it queues (emails) sent after each commit."""

    def run(moment: datetime) -> None:
        with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
            tasks.sweep.delay()

    return run


@pytest.fixture
def declining_subscription(stripe_fake):
    owner, account = owner_with_account(name="Acme", language="en")
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=1900), actor=owner, now=T0)
    give_card_number(account, DECLINING_CARD)
    assert sub.current_period_end == FAILED_AT
    return owner, account, sub


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def test_a_full_dunning_timeline_retries_on_schedule_emails_each_time_and_a_new_card_pays(
    declining_subscription, run_jobs, client, admin_client, django_capture_on_commit_callbacks, stripe_fake
):
    owner, account, sub = declining_subscription
    failed = "Your payment failed: please update your card"

    run_jobs(FAILED_AT)
    sub.refresh_from_db()
    assert (sub.status, sub.past_due_since, sub.next_retry_at) == (
        lifecycle.PAST_DUE,
        FAILED_AT,
        FAILED_AT + timedelta(days=1),
    )
    assert subjects() == [failed]
    first = mail.outbox[0]
    assert sorted(first.to) == sorted([account.billing_email, owner.email])
    assert "http://127.0.0.1:8000/billing/card/" in first.body
    assert 'href="http://127.0.0.1:8000/billing/card/"' in first.alternatives[0][0]
    assert "We will try again on May 2, 2026." in first.body

    run_jobs(FAILED_AT + timedelta(hours=23))  # not yet: nothing is charged, nobody is emailed
    assert Payment.objects.filter(invoice__period_start=FAILED_AT).count() == 1
    assert len(mail.outbox) == 1

    run_jobs(FAILED_AT + timedelta(days=1))
    run_jobs(FAILED_AT + timedelta(days=1, minutes=5))  # the next beat: the retry is not run twice
    run_jobs(FAILED_AT + timedelta(days=3))
    sub.refresh_from_db()
    assert (sub.status, sub.retries_done, sub.next_retry_at) == (
        lifecycle.PAST_DUE,
        2,
        FAILED_AT + timedelta(days=5),
    )
    assert subjects() == [failed] * 3
    attempts = Payment.objects.filter(invoice__period_start=FAILED_AT).order_by("attempt")
    assert [(p.attempt, p.status, p.created_at) for p in attempts] == [
        (1, Payment.FAILED, FAILED_AT),
        (2, Payment.FAILED, FAILED_AT + timedelta(days=1)),
        (3, Payment.FAILED, FAILED_AT + timedelta(days=3)),
    ]

    # The customer sees the attempts, the next retry and when service stops.
    dunning = selectors.subscription_dunning(subscription=sub)
    assert [p.attempt for p in dunning.attempts] == [1, 2, 3]
    assert dunning.upcoming_retries == [FAILED_AT + timedelta(days=5), FAILED_AT + timedelta(days=7)]
    assert (dunning.final_action, dunning.final_action_at) == ("cancel", FAILED_AT + timedelta(days=7))
    client.login(username=owner.email, password=PASSWORD)
    page = client.get("/billing/").content.decode()
    assert "Payment failed" in page
    assert page.count("Declined") == 3
    assert "We try again on May 6, 2026." in page
    assert "If the last attempt on May 8, 2026 fails, your subscription ends." in page
    assert 'href="/billing/card/"' in page
    # The operator sees every attempt with its outcome.
    admin_page = admin_client.get("/admin/subscriptions/payment/?status__exact=failed").content.decode()
    assert admin_page.count("card_declined") >= 3

    # Day 4: the customer saves a working card; the open invoice is charged at once.
    setup_intent_id, _secret = services.account_card_setup_start(account=account)
    gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id="pm_card_visa")
    with django_capture_on_commit_callbacks(execute=True):
        services.account_card_setup_finish(
            account=account, setup_intent_id=setup_intent_id, actor=owner, now=FAILED_AT + timedelta(days=4)
        )
    sub.refresh_from_db()
    invoice = Invoice.objects.get(period_start=FAILED_AT)
    assert (sub.status, sub.current_period_start, sub.next_retry_at, sub.retries_done) == (
        lifecycle.ACTIVE,
        FAILED_AT,
        None,
        0,
    )
    assert (invoice.status, invoice.paid_at) == (Invoice.PAID, FAILED_AT + timedelta(days=4))
    assert subjects() == [failed] * 3 + [f"Receipt for invoice {invoice.number}"]
    assert sub.events.first().kind == "payment_recovered"

    run_jobs(FAILED_AT + timedelta(days=5))  # the old retry date: nothing left to do
    assert Payment.objects.filter(invoice=invoice).count() == 4
    succeeded = stripe_fake.succeeded_payment_intents()
    assert sorted(intent["amount"] for intent in succeeded) == [1900, 1900]  # the start and this invoice, once
    assert selectors.subscription_dunning(subscription=sub) is None
    assert 'id="dunning-title"' not in client.get("/billing/").content.decode()


@pytest.mark.parametrize(
    ("final_action", "status", "last_email"),
    [
        ("cancel", lifecycle.CANCELED, "Your Pro subscription has ended"),
        ("pause", lifecycle.PAUSED, "Your subscription is paused: the payment failed"),
    ],
)
def test_when_the_last_retry_fails_the_final_action_runs_and_the_invoice_is_uncollectible(
    stripe_fake, run_jobs, settings, final_action, status, last_email
):
    settings.BILLING_DUNNING_FINAL_ACTION = final_action
    owner, account = owner_with_account()
    give_card_number(account, DECLINING_CARD)
    price = PriceFactory(plan=PlanFactory(name="Pro", code="pro-dunning"), amount_minor=1900)
    give_card(account)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=T0)
    give_card_number(account, DECLINING_CARD)
    for days in (0, 1, 3, 5):
        run_jobs(FAILED_AT + timedelta(days=days))
        sub.refresh_from_db()
        assert sub.status == lifecycle.PAST_DUE
    run_jobs(FAILED_AT + timedelta(days=7))
    sub.refresh_from_db()
    invoice = Invoice.objects.get(period_start=FAILED_AT)
    assert sub.status == status
    assert (invoice.status, invoice.closed_at) == (Invoice.UNCOLLECTIBLE, FAILED_AT + timedelta(days=7))
    assert sub.next_retry_at is None
    assert Payment.objects.filter(invoice=invoice, status=Payment.FAILED).count() == 5
    assert subjects() == ["Your payment failed: please update your card"] * 4 + [last_email]
    assert sub.events.first().kind == f"dunning_{'canceled' if final_action == 'cancel' else 'paused'}"
    run_jobs(FAILED_AT + timedelta(days=8))  # nothing more happens, nobody is emailed again
    assert len(mail.outbox) == 5
    assert Payment.objects.filter(invoice=invoice).count() == 5


def test_dunning_emails_are_sent_once_even_when_the_notice_task_runs_again(declining_subscription, run_jobs):
    owner, account, sub = declining_subscription
    run_jobs(FAILED_AT)
    payment = Payment.objects.get(invoice__period_start=FAILED_AT)
    assert tasks.send_notice.delay("payment-failed", payment.pk).get() is False
    assert len(mail.outbox) == 1
    assert EmailSent.objects.get(kind="payment-failed").key == f"payment-{payment.pk}"


def test_a_failed_payment_email_is_not_sent_if_the_invoice_was_paid_before_it_went_out(
    declining_subscription, run_jobs, django_capture_on_commit_callbacks
):
    owner, account, sub = declining_subscription
    with time_machine.travel(FAILED_AT, tick=False), django_capture_on_commit_callbacks(execute=False) as queued:
        tasks.sweep.delay()
    give_card(account)
    services.subscription_retry_now(subscription=sub, actor=owner, now=FAILED_AT + timedelta(minutes=1))
    for callback in queued:  # the payment-failed notice runs late, after the invoice was paid
        callback()
    assert subjects() == []


def test_dunning_emails_are_in_the_account_language_and_timezone(stripe_fake, run_jobs):
    owner, account = owner_with_account(language="nl", timezone="Pacific/Auckland")
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    give_card_number(account, DECLINING_CARD)
    run_jobs(sub.current_period_end)
    # The retry on May 2, 09:00 UTC is May 2, 21:00 in Auckland, written the Dutch way.
    assert "2 mei 2026" in mail.outbox[0].body
    assert "19,00" in mail.outbox[0].body
    # Why, in Dutch too: never the English message Stripe gave (that one is for operators).
    failure_message = Payment.objects.get(invoice__subscription=sub, status=Payment.FAILED).failure_message
    assert failure_message and failure_message not in mail.outbox[0].body
    assert "Reden: " in mail.outbox[0].body


def test_a_member_sees_the_dunning_schedule_but_not_the_card_button(declining_subscription, run_jobs, client):
    owner, account, sub = declining_subscription
    from accounts.models import Membership

    member = UserFactory()
    Membership.objects.create(account=account, user=member, role=Membership.MEMBER)
    run_jobs(FAILED_AT)
    client.login(username=member.email, password=PASSWORD)
    page = client.get("/billing/").content.decode()
    assert "Payment failed" in page and "Update card" not in page
