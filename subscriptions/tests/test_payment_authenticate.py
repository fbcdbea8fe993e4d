"""A renewal the bank wants authenticated (SCA): email, banner, and the on-session page."""

import re
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.models import Membership
from conftest import browser_login, screenshot
from subscriptions import lifecycle, selectors, services
from subscriptions.models import Invoice, Payment, SubscriptionEvent

from .factories import (
    AUTHENTICATION_CARD,
    PASSWORD,
    MembershipFactory,
    PriceFactory,
    give_card,
    give_saved_card_number,
    owner_with_account,
)

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def renewal_needing_authentication(capture=None, now=None):
    """A paid subscription whose renewal the bank wants the customer to authenticate.

    `capture` runs the emails queued on commit (django_capture_on_commit_callbacks); a
    transactional test needs none: they run at the commit itself.
    """
    capture = capture or (lambda execute: nullcontext())
    owner, account = owner_with_account(name="Acme")
    give_card(account)
    start = now or T0
    sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=1900), actor=owner, now=start)
    give_saved_card_number(account, AUTHENTICATION_CARD)
    with capture(execute=True):
        services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    payment = Payment.objects.get(invoice__subscription=sub, invoice__billing_reason=Invoice.CYCLE)
    return owner, account, sub, payment


def authenticate_at_stripe(fake_stripe, payment: Payment, success: bool = True) -> None:
    """What the customer does in Stripe.js's 3-D Secure box (localstripe's fake of it)."""
    intent = requests.get(
        f"{fake_stripe.url}/v1/payment_intents/{payment.stripe_payment_intent_id}",
        auth=(settings.STRIPE_SECRET_KEY, ""),
        timeout=10,
    ).json()
    response = requests.post(
        f"{fake_stripe.url}/v1/payment_intents/{payment.stripe_payment_intent_id}/_authenticate",
        params={"success": "true" if success else "false"},
        json={"key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": intent["client_secret"]},
        timeout=10,
    )
    response.raise_for_status()


def url(invoice_id: int) -> str:
    return f"/billing/pay/{invoice_id}/authenticate/"


@pytest.mark.django_db
def test_a_renewal_needing_authentication_goes_past_due_emails_a_link_and_shows_a_banner(
    stripe_fake, django_capture_on_commit_callbacks, client
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    assert (sub.status, payment.status) == (lifecycle.PAST_DUE, Payment.REQUIRES_ACTION)
    assert [message.subject for message in mail.outbox] == ["Your bank asks you to confirm a payment"]
    assert f"http://127.0.0.1:8000{url(payment.invoice_id)}" in mail.outbox[0].body
    assert selectors.payment_requiring_action_for_account(account=account) == payment
    client.login(username=owner.email, password=PASSWORD)
    page = client.get("/billing/").content.decode()
    assert "Your bank asks you to confirm the payment of <strong>€19.00</strong>" in page
    assert f'href="{url(payment.invoice_id)}"' in page
    assert "Waiting for your bank" in page  # the attempt, in the dunning list


@pytest.mark.django_db
def test_the_page_loads_stripe_js_with_the_client_secret_and_no_inline_script(
    stripe_fake, django_capture_on_commit_callbacks, client
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    client.login(username=owner.email, password=PASSWORD)
    response = client.get(url(payment.invoice_id))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<script src="{stripe_fake.url}/js.stripe.com/v3/"></script>' in page
    assert "/static/js/payment-authenticate.js" in page
    assert re.search(r'data-client-secret="pi_\w+_secret_\w+"', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script is a file
    assert "€19.00" in page


@pytest.mark.django_db
def test_after_authenticating_the_server_asks_stripe_settles_and_the_subscription_is_active(
    stripe_fake, django_capture_on_commit_callbacks, client
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    client.login(username=owner.email, password=PASSWORD)
    authenticate_at_stripe(stripe_fake, payment)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(payment.invoice_id), follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    assert "the payment is confirmed and your subscription is active" in response.content.decode()
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, payment.invoice.status, sub.status) == (Payment.SUCCEEDED, Invoice.PAID, lifecycle.ACTIVE)
    assert sub.events.first().kind == "payment_recovered"
    assert sub.events.first().actor == owner
    assert mail.outbox[-1].subject == f"Receipt for invoice {payment.invoice.number}"
    assert selectors.payment_requiring_action_for_account(account=account) is None
    # Posting again (a double click, the back button) changes nothing.
    events = SubscriptionEvent.objects.count()
    client.post(url(payment.invoice_id))
    assert SubscriptionEvent.objects.count() == events
    assert len(stripe_fake.succeeded_payment_intents()) == 2


@pytest.mark.django_db
def test_posting_before_authenticating_changes_nothing(stripe_fake, django_capture_on_commit_callbacks, client):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    client.login(username=owner.email, password=PASSWORD)
    response = client.post(url(payment.invoice_id))
    assert response.status_code == 302 and response["Location"] == url(payment.invoice_id)
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, sub.status) == (Payment.REQUIRES_ACTION, lifecycle.PAST_DUE)


@pytest.mark.django_db
def test_a_failed_authentication_charges_nothing_and_keeps_the_dunning_schedule(
    stripe_fake, django_capture_on_commit_callbacks, client
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    client.login(username=owner.email, password=PASSWORD)
    authenticate_at_stripe(stripe_fake, payment, success=False)
    response = client.post(url(payment.invoice_id), follow=True)
    assert "Your bank did not confirm the payment, so nothing was charged" in response.content.decode()
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert payment.status == Payment.FAILED
    assert (sub.status, sub.retries_done, sub.next_retry_at) == (
        lifecycle.PAST_DUE,
        0,
        sub.past_due_since + timedelta(days=1),
    )


@pytest.mark.django_db
def test_only_owners_and_billing_admins_of_the_account_reach_the_page(
    stripe_fake, django_capture_on_commit_callbacks, client
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    member = MembershipFactory(account=account, role=Membership.MEMBER).user
    admin = MembershipFactory(account=account, role=Membership.BILLING_ADMIN).user
    stranger, _other = owner_with_account()
    authenticate_at_stripe(stripe_fake, payment)

    assert client.get(url(payment.invoice_id))["Location"].startswith("/accounts/login/")
    client.login(username=member.email, password=PASSWORD)
    refused = client.get(url(payment.invoice_id))
    assert refused.status_code == 403 and owner.name in refused.content.decode()
    assert client.post(url(payment.invoice_id)).status_code == 403
    client.login(username=stranger.email, password=PASSWORD)
    assert client.get(url(payment.invoice_id)).status_code == 404
    assert client.post(url(payment.invoice_id)).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.login(username=admin.email, password=PASSWORD)
    assert strict.post(url(payment.invoice_id)).status_code == 403  # no CSRF token
    payment.refresh_from_db()
    assert payment.status == Payment.REQUIRES_ACTION  # nothing changed so far
    client.login(username=admin.email, password=PASSWORD)
    assert client.get(url(payment.invoice_id)).status_code == 200


@pytest.mark.django_db
def test_a_retry_cancels_the_intent_still_waiting_so_an_old_link_can_never_charge_twice(
    stripe_fake, django_capture_on_commit_callbacks
):
    owner, account, sub, old = renewal_needing_authentication(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.subscriptions_renew_due(now=sub.next_retry_at)
    old.refresh_from_db()
    new = Payment.objects.filter(invoice=old.invoice).exclude(pk=old.pk).get()
    assert (old.status, old.failure_code) == (Payment.FAILED, "superseded")
    assert new.status == Payment.REQUIRES_ACTION
    intents = {intent["id"]: intent["status"] for intent in stripe_fake.payment_intents()}
    assert intents[old.stripe_payment_intent_id] == "canceled"
    assert selectors.payment_requiring_action(invoice=old.invoice) == new
    assert len(mail.outbox) == 2  # one request to authenticate per attempt


@pytest.mark.django_db
def test_a_retry_after_the_customer_authenticated_settles_instead_of_charging_again(
    stripe_fake, django_capture_on_commit_callbacks
):
    owner, account, sub, payment = renewal_needing_authentication(django_capture_on_commit_callbacks)
    authenticate_at_stripe(stripe_fake, payment)  # ...but never came back to our page
    services.subscriptions_renew_due(now=sub.next_retry_at)
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, sub.status) == (Payment.SUCCEEDED, lifecycle.ACTIVE)
    assert Payment.objects.filter(invoice=payment.invoice).count() == 1
    assert len(stripe_fake.succeeded_payment_intents()) == 2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_customer_confirms_the_payment_in_the_browser_and_is_active_again(browser_page, stripe_fake):
    owner, account, sub, payment = renewal_needing_authentication()
    page = browser_page
    browser_login(page, owner.email, PASSWORD)
    screenshot(page, "sca-billing-banner")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "sca-billing-banner-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Confirm payment").click()
    page.wait_for_url(f"**{url(payment.invoice_id)}")
    button = page.get_by_role("button", name="Confirm payment")
    button.wait_for()
    page.wait_for_function("!document.getElementById('payment-authenticate-button').disabled")
    screenshot(page, "sca-authenticate-page")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "sca-authenticate-page-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    button.click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure box
    page.wait_for_url("**/billing/")
    assert "the payment is confirmed and your subscription is active" in page.content()
    screenshot(page, "sca-confirmed")
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, sub.status) == (Payment.SUCCEEDED, lifecycle.ACTIVE)
