"""Email verification: a signed link that expires; unverified users may trial but not start paying."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client

from accounts import services, tokens
from accounts.models import User
from billing_portal.lib import clock
from subscriptions import lifecycle
from subscriptions import services as subscription_services
from subscriptions.models import EmailSent, Invoice, Subscription
from subscriptions.tests.pages import customer, messages_of, snapshot

from .conftest import link_in_last_email

pytestmark = pytest.mark.django_db


def unverified_owner(*, card: bool = True):
    owner, account = customer(card=card)
    User.objects.filter(pk=owner.pk).update(email_verified_at=None)
    owner.refresh_from_db()
    return owner, account


def send_link(owner, next_url: str = "") -> str:
    services.user_verification_send(user=owner, next_url=next_url)
    return link_in_last_email("verify")


# --- The link -------------------------------------------------------------------------------------------
def test_the_link_verifies_the_address_once_and_a_reused_link_says_so(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    link = send_link(owner)
    assert mail.outbox[-1].to == [owner.email]
    client.force_login(owner)
    response = client.get(link, follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    assert messages_of(response) == ["Thank you: your email address is verified."]
    owner.refresh_from_db()
    verified_at = owner.email_verified_at
    assert verified_at is not None
    again = client.get(link, follow=True)
    assert messages_of(again) == ["Your email address is already verified. This link cannot be used again."]
    owner.refresh_from_db()
    assert owner.email_verified_at == verified_at


def test_the_link_works_without_being_logged_in_and_then_asks_to_log_in(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    response = client.get(send_link(owner, next_url="/billing/plans/"))
    assert response["Location"] == "/accounts/login/?next=%2Fbilling%2Fplans%2F"
    owner.refresh_from_db()
    assert owner.is_email_verified


def test_the_link_expires_after_the_configured_days(client, plans, stripe_fake, settings):
    owner, _account = unverified_owner()
    link = send_link(owner)
    with time_machine.travel(clock.now() + timedelta(days=3, minutes=1)):
        response = client.get(link)
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    assert "Verification links work for 3 days." in response.content.decode()
    owner.refresh_from_db()
    assert not owner.is_email_verified
    settings.ACCOUNTS_VERIFY_DAYS = 7
    with time_machine.travel(clock.now() + timedelta(days=6)):
        assert client.get(link).status_code == 302
    owner.refresh_from_db()
    assert owner.is_email_verified


def test_an_expired_link_offers_a_new_one_to_a_logged_in_user(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    link = send_link(owner)
    client.force_login(owner)
    with time_machine.travel(clock.now() + timedelta(days=4)):
        html = client.get(link).content.decode()
    assert 'action="/accounts/verify/resend/"' in html and "Send a new link" in html


@pytest.mark.parametrize("mangle", [lambda t: t[:-3] + "abc", lambda t: t[:10], lambda t: "x" + t])
def test_a_tampered_link_is_refused_and_verifies_nothing(client, plans, stripe_fake, mangle):
    owner, _account = unverified_owner()
    token = send_link(owner).split("/")[-2]
    response = client.get(f"/accounts/verify/{mangle(token)}/")
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    owner.refresh_from_db()
    assert not owner.is_email_verified


def test_a_link_for_an_address_the_user_no_longer_has_is_refused(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    link = send_link(owner)
    User.objects.filter(pk=owner.pk).update(email="new@example.com")
    assert client.get(link).status_code == 400
    owner.refresh_from_db()
    assert not owner.is_email_verified


def test_a_link_only_signs_what_it_says():
    now = clock.now()
    token = tokens.verify_token_make(user_id=7, email="a@example.com", now=now, next_url="/billing/")
    link = tokens.verify_token_read(token, now=now)
    assert (link.user_id, link.email, link.next_url) == (7, "a@example.com", "/billing/")
    with pytest.raises(tokens.LinkInvalid):
        tokens.verify_token_read(tokens.invitation_token_make(invitation_id=7), now=now)


def test_an_outside_next_address_in_a_link_is_ignored(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    link = send_link(owner, next_url="https://evil.example/")
    client.force_login(owner)
    assert client.get(link)["Location"] == "/billing/"


def test_the_email_is_in_the_account_language_and_keyed_per_link(plans, stripe_fake):
    owner, account = unverified_owner()
    account.language = "nl"
    account.save()
    services.user_verification_send(user=owner)
    sent = EmailSent.objects.get(kind="verify-email")
    assert sent.key.startswith(f"user-{owner.pk}:") and sent.recipients == owner.email
    assert mail.outbox[-1].alternatives[0][1] == "text/html"


# --- Resend ----------------------------------------------------------------------------------------------
def test_resend_sends_a_new_link_and_waits_a_minute_before_the_next(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    client.force_login(owner)
    response = client.post("/accounts/verify/resend/", {"next": "/billing/plans/"}, follow=True)
    assert response.redirect_chain == [("/billing/plans/", 302)]
    assert messages_of(response)[0] == f"We sent a new link to {owner.email}. It works for 3 days."
    assert len(mail.outbox) == 1
    response = client.post("/accounts/verify/resend/", follow=True)
    assert messages_of(response)[0].startswith("We sent you a link less than a minute ago.")
    assert len(mail.outbox) == 1
    with time_machine.travel(clock.now() + timedelta(seconds=61)):
        client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 2
    assert mail.outbox[0].body != mail.outbox[1].body  # a new link each time


def test_resend_stops_after_five_links_a_day(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    client.force_login(owner)
    start = clock.now()
    for n in range(5):
        with time_machine.travel(start + timedelta(minutes=2 * n)):
            client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 5
    with time_machine.travel(start + timedelta(minutes=30)):
        response = client.post("/accounts/verify/resend/", follow=True)
    assert messages_of(response)[-1].startswith("We have sent you several links today.")
    assert len(mail.outbox) == 5
    with time_machine.travel(start + timedelta(days=1, minutes=30)):
        client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 6


def test_resend_for_a_verified_address_sends_nothing(client, plans, stripe_fake):
    owner, _account = customer(card=False)
    client.force_login(owner)
    response = client.post("/accounts/verify/resend/", follow=True)
    assert messages_of(response) == ["Your email address is already verified."]
    assert mail.outbox == []


def test_resend_needs_a_post_a_login_and_a_csrf_token(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    assert client.post("/accounts/verify/resend/")["Location"].startswith("/accounts/login/")
    client.force_login(owner)
    assert client.get("/accounts/verify/resend/").status_code == 405
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    assert csrf_client.post("/accounts/verify/resend/").status_code == 403
    assert mail.outbox == []


# --- What an unverified user may do ----------------------------------------------------------------------
def test_the_billing_page_asks_an_unverified_user_to_verify(client, plans, stripe_fake):
    owner, _account = unverified_owner()
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert 'data-testid="verify-notice"' in html and 'action="/accounts/verify/resend/"' in html
    User.objects.filter(pk=owner.pk).update(email_verified_at=clock.now())
    assert 'data-testid="verify-notice"' not in client.get("/billing/").content.decode()


def test_an_unverified_user_cannot_start_a_paid_plan(client, plans, stripe_fake):
    owner, account = unverified_owner()
    price = plans["pro"]["monthly"]
    client.force_login(owner)
    page = client.get(f"/billing/subscribe/{price.pk}/").content.decode()
    assert 'data-testid="verify-required"' in page and "Subscribe and pay" not in page
    before = snapshot(account)
    response = client.post(f"/billing/subscribe/{price.pk}/", follow=True)
    assert messages_of(response) == [
        "Please verify your email address before starting a paid plan. We can send you a new link."
    ]
    assert snapshot(account) == before
    assert stripe_fake.payment_intents() == []


def test_an_unverified_user_can_start_a_trial_and_a_free_plan(client, trial_plans, stripe_fake):
    owner, account = unverified_owner(card=False)
    client.force_login(owner)
    client.post(f"/billing/subscribe/{trial_plans['pro']['monthly'].pk}/")
    assert Subscription.objects.get(account=account).status == lifecycle.TRIALING
    other, other_account = unverified_owner(card=False)
    client.force_login(other)
    client.post(f"/billing/subscribe/{trial_plans['free']['monthly'].pk}/")
    assert Subscription.objects.get(account=other_account).status == lifecycle.ACTIVE


def test_an_unverified_user_cannot_change_to_a_paid_plan(client, plans, stripe_fake):
    owner, account = unverified_owner()
    subscription_services.subscription_start(account=account, price=plans["free"]["monthly"], actor=owner)
    price = plans["pro"]["monthly"]
    client.force_login(owner)
    page = client.get(f"/billing/plans/{price.pk}/").content.decode()
    assert 'data-testid="verify-required"' in page and "Confirm and pay" not in page
    before = snapshot(account)
    for when in ("now", "period_end"):
        response = client.post(f"/billing/plans/{price.pk}/confirm/", {"when": when}, follow=True)
        assert response.redirect_chain == [(f"/billing/plans/{price.pk}/", 302)]
        assert messages_of(response)[0].startswith("Please verify your email address before starting a paid plan.")
    assert snapshot(account) == before


def test_an_unverified_user_may_change_plan_within_the_trial_and_move_to_free(client, trial_plans, stripe_fake):
    owner, account = unverified_owner(card=False)
    sub = subscription_services.subscription_start(account=account, price=trial_plans["pro"]["monthly"], actor=owner)
    client.force_login(owner)
    client.post(f"/billing/plans/{trial_plans['pro']['annual'].pk}/confirm/", {"when": "now"})
    sub.refresh_from_db()
    assert sub.price == trial_plans["pro"]["annual"] and sub.status == lifecycle.TRIALING
    client.post(f"/billing/plans/{trial_plans['free']['monthly'].pk}/confirm/", {"when": "now"})
    sub.refresh_from_db()
    assert sub.price == trial_plans["free"]["monthly"]
    assert not Invoice.objects.filter(account=account).exclude(amount_due_minor=0).exists()


def test_after_verifying_the_same_change_goes_through(client, plans, stripe_fake):
    owner, account = unverified_owner()
    subscription_services.subscription_start(account=account, price=plans["free"]["monthly"], actor=owner)
    price = plans["pro"]["monthly"]
    client.force_login(owner)
    client.get(send_link(owner, next_url=f"/billing/plans/{price.pk}/"))
    client.post(f"/billing/plans/{price.pk}/confirm/", {"when": "now"})
    assert Subscription.objects.get(account=account).price == price
