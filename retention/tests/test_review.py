"""Before you go: what ends and when, what is lost, and the blockers (balance, commitment, trial)."""

from datetime import timedelta

import pytest
from django.core import mail

from retention.models import CancellationFlow, Reason
from subscriptions import lifecycle
from subscriptions import services as subscription_services
from subscriptions.models import Invoice
from subscriptions.tests.factories import DECLINING_CARD, PASSWORD, give_card_number

from .conftest import T0, make_customer, snapshot

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=10)


def open_review(client, customer, reason=Reason.OTHER, skip=True):
    client.login(username=customer.owner.email, password=PASSWORD)
    data = {"reason": reason} | ({"skip": "1"} if skip else {})
    client.post("/billing/cancel/", data)
    flow = CancellationFlow.objects.get(account=customer.account)
    page = client.get(f"/billing/cancel/{flow.pk}/before-you-go/")
    assert page.status_code == 200
    return flow, page.content.decode()


def test_a_monthly_subscription_ends_at_the_period_end_with_no_more_charges(client, customer, frozen):
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    assert "Business stays active until May 1, 2026, the end of the period you paid for." in page
    assert "You will not be charged again." in page
    for feature in ("Unlimited projects", "Priority support", "SSO", "Access for everyone in Acme Studio"):
        assert feature in page
    assert "Download or copy anything you want to keep before May 1, 2026." in page
    assert "Cancel my subscription on May 1, 2026" in page


def test_an_open_invoice_blocks_online_cancellation_with_a_pay_now_path(client, customer, frozen):
    sub = customer.subscription
    Invoice.objects.create(
        account=customer.account,
        subscription=sub,
        billing_reason=Invoice.CYCLE,
        price=sub.price,
        currency="eur",
        period_start=sub.current_period_end,
        period_end=sub.current_period_end + timedelta(days=31),
        subtotal_minor=4900,
        amount_due_minor=4900,
        created_at=T0 + timedelta(days=1),
    )
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    assert "There is an unpaid balance" in page
    assert "Your account has €49.00 outstanding." in page
    assert 'id="pay-now" href="/billing/"' in page
    assert 'id="confirm-cancel"' not in page
    before = snapshot(sub)
    response = client.post(f"/billing/cancel/{flow.pk}/confirm/", follow=True)
    assert response.redirect_chain == [(f"/billing/cancel/{flow.pk}/before-you-go/", 302)]
    assert "Please pay the outstanding balance before canceling." in response.content.decode()
    assert snapshot(sub) == before
    flow.refresh_from_db()
    assert flow.outcome == "open"
    assert not mail.outbox


def test_a_past_due_customer_gets_no_paid_offer_and_must_pay_first(client, catalog, stripe_fake, frozen):
    customer = make_customer(catalog["business"][lifecycle.MONTHLY])
    give_card_number(customer.account, DECLINING_CARD)
    subscription_services.subscriptions_renew_due(now=T0.replace(month=5))
    assert customer.refresh().status == lifecycle.PAST_DUE
    frozen.set(T0.replace(month=5) + timedelta(hours=1))
    client.login(username=customer.owner.email, password=PASSWORD)
    response = client.post("/billing/cancel/", {"reason": Reason.TOO_EXPENSIVE})
    flow = CancellationFlow.objects.get()
    assert flow.offer_kind == ""  # no discount for a past-due subscription
    assert response["Location"] == f"/billing/cancel/{flow.pk}/before-you-go/"
    page = client.get(response["Location"]).content.decode()
    assert "Your account has €49.00 outstanding." in page
    assert 'id="confirm-cancel"' not in page


def test_a_paused_subscription_must_be_resumed_before_canceling(client, customer, frozen):
    subscription_services.subscription_pause(subscription=customer.subscription, actor=customer.owner, months=1, now=T0)
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    assert "Your subscription is paused" in page
    assert 'id="confirm-cancel"' not in page


def test_a_commitment_ends_at_its_end_and_says_how_many_payments_remain(
    client, catalog, stripe_fake, frozen, django_capture_on_commit_callbacks
):
    customer = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY])
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    assert "Business is a 12-month commitment that ends on April 1, 2027." in page
    # Renewals on May 1 … March 1: 11 more payments of €44.00.
    assert "11 more payments of €44.00, €484.00 in total." in page
    assert "Cancel my subscription on April 1, 2027" in page

    with django_capture_on_commit_callbacks(execute=True):  # the email is queued after the commit
        done = client.post(f"/billing/cancel/{flow.pk}/confirm/", follow=True).content.decode()
    assert "Your 12-month commitment runs until then: 11 more monthly payments are charged, €484.00 in total." in done
    sub = customer.refresh()
    assert sub.cancel_at == T0.replace(year=2027)
    (message,) = mail.outbox
    assert "until then 11 more monthly payments are charged, €484.00 in total" in " ".join(message.body.split())


def test_commitment_payments_include_a_running_discount(client, catalog, stripe_fake, frozen):
    customer = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY])
    subscription_services.subscription_apply_discount(
        subscription=customer.subscription, percent=30, periods=3, actor=customer.owner, now=T0
    )
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    # 3 × €30.80 + 8 × €44.00
    assert "11 more payments of €44.00, €444.40 in total." in page
    assert "The total includes your current discount." in page


def test_the_last_commitment_month_has_no_payments_left(client, catalog, stripe_fake, frozen):
    customer = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY])
    sub = customer.subscription
    for month in range(1, 12):
        subscription_services.subscriptions_renew_due(now=sub.billing_anchor_at + timedelta(days=31 * month))
    sub.refresh_from_db()
    assert sub.current_period_end == sub.commitment_end_at
    frozen.set(sub.current_period_start + timedelta(days=3))
    flow, page = open_review(client, customer)
    assert "The last month of your commitment is already paid; nothing more will be charged." in page


def test_a_trial_ends_at_trial_end_with_no_charge(
    client, catalog, stripe_fake, frozen, django_capture_on_commit_callbacks
):
    customer = make_customer(catalog["studio"][lifecycle.MONTHLY], card=False)
    assert customer.subscription.status == lifecycle.TRIALING
    frozen.set(T0 + timedelta(days=2))
    flow, page = open_review(client, customer)
    assert "Your trial of Studio ends on April 15, 2026. Nothing will be charged." in page
    with django_capture_on_commit_callbacks(execute=True):  # the email is queued after the commit
        client.post(f"/billing/cancel/{flow.pk}/confirm/")
    sub = customer.refresh()
    assert (sub.status, sub.cancel_at) == (lifecycle.TRIALING, T0 + timedelta(days=14))
    (message,) = mail.outbox
    assert "Your trial ends on April 15, 2026. Nothing will be charged." in " ".join(message.body.split())
    # At the trial end the job ends it, and nothing is charged.
    subscription_services.subscriptions_renew_due(now=sub.cancel_at)
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert not Invoice.objects.filter(account=customer.account).exists()


def test_dates_follow_the_account_timezone(client, catalog, stripe_fake, frozen):
    # 23:30 UTC on April 30 is already May 1 in Auckland.
    customer = make_customer(
        catalog["pro"][lifecycle.MONTHLY],
        now=T0.replace(hour=23, minute=30) - timedelta(days=1),
        timezone="Pacific/Auckland",
    )
    frozen.set(NOW)
    flow, page = open_review(client, customer)
    assert "stays active until May 1, 2026" in page
