"""The payment method page: Stripe.js card entry with a SetupIntent; the card never reaches us."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from accounts.models import Membership
from subscriptions import gateway, lifecycle, services
from subscriptions.models import Invoice

from .factories import DECLINING_CARD
from .pages import customer, messages_of, past_due, snapshot, subscribed, teammate

pytestmark = pytest.mark.django_db


MASTERCARD = "5555555555554444"


def confirmed_setup_intent(account, number=MASTERCARD) -> str:
    """What Stripe.js does in the browser: confirm the page's SetupIntent with the entered card."""
    setup_intent_id, _secret = services.account_card_setup_start(account=account)
    payment_method = (
        gateway.client()
        .v1.payment_methods.create(
            params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
        )
        .id
    )
    gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id=payment_method)
    return setup_intent_id


def test_the_card_page_loads_stripe_js_with_a_setup_intent_of_this_account(client, stripe_fake, settings):
    owner, account = customer(card=False)
    client.force_login(owner)
    html = client.get("/billing/card/").content.decode()
    assert f'<script src="{stripe_fake.url}/js.stripe.com/v3/"></script>' in html
    assert "/static/js/card.js" in html
    assert 'data-client-secret="seti_' in html
    assert f'data-publishable-key="{settings.STRIPE_PUBLISHABLE_KEY}"' in html
    account.refresh_from_db()
    assert account.stripe_customer_id  # created for the SetupIntent
    assert 'name="card' not in html and "cvc" not in html  # no card field of ours


def test_a_confirmed_setup_intent_makes_the_card_the_default(client, stripe_fake):
    owner, account = customer()
    client.force_login(owner)
    setup_intent_id = confirmed_setup_intent(account)
    response = client.post("/billing/card/finish/", {"setup_intent_id": setup_intent_id, "next": "/billing/"})
    assert response["Location"] == "/billing/"
    account.refresh_from_db()
    assert (account.card_brand, account.card_last4) == ("visa", "4444")  # localstripe calls every card a Visa
    assert messages_of(client.get("/billing/")) == ["Your Visa card ending in 4444 is now your default payment method."]


def test_a_new_card_pays_the_open_invoice_of_a_past_due_account_at_once(client, stripe_fake):
    owner, account, sub = past_due(_pro(), card_number=DECLINING_CARD)
    client.force_login(owner)
    setup_intent_id = confirmed_setup_intent(account, "4242424242424242")
    with time_machine.travel(sub.current_period_end + timedelta(hours=3), tick=False):
        response = client.post("/billing/card/finish/", {"setup_intent_id": setup_intent_id}, follow=True)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert not Invoice.objects.filter(account=account, status=Invoice.OPEN).exists()
    assert "The open invoice is paid and your subscription is active again." in messages_of(response)[0]


def test_another_customers_setup_intent_is_refused_and_the_card_stays(client, stripe_fake):
    owner, account = customer()
    other_owner, other_account = customer(card=False)
    client.force_login(owner)
    foreign = confirmed_setup_intent(other_account)
    before = (account.payment_method_id, account.card_last4)
    response = client.post("/billing/card/finish/", {"setup_intent_id": foreign}, follow=True)
    account.refresh_from_db()
    assert (account.payment_method_id, account.card_last4) == before
    assert "This card setup did not complete." in messages_of(response)[0]


def test_an_unconfirmed_or_unknown_setup_intent_is_refused(client, stripe_fake):
    owner, account = customer()
    client.force_login(owner)
    unconfirmed, _secret = services.account_card_setup_start(account=account)
    before = snapshot(account), account.payment_method_id
    for setup_intent_id in [unconfirmed, "seti_doesnotexist"]:
        response = client.post("/billing/card/finish/", {"setup_intent_id": setup_intent_id}, follow=True)
        assert "This card setup did not complete." in messages_of(response)[0]
    account.refresh_from_db()
    assert (snapshot(account), account.payment_method_id) == before


@pytest.mark.parametrize("value", ["", "pm_card_visa", "4242424242424242"])
def test_anything_but_a_setup_intent_id_is_a_400(client, stripe_fake, value):
    owner, account = customer()
    client.force_login(owner)
    before = account.payment_method_id
    assert client.post("/billing/card/finish/", {"setup_intent_id": value}).status_code == 400
    account.refresh_from_db()
    assert account.payment_method_id == before


def test_an_outside_next_address_is_ignored(client, stripe_fake):
    owner, account = customer()
    client.force_login(owner)
    html = client.get("/billing/card/?next=https://evil.example/steal").content.decode()
    assert '<input type="hidden" name="next" value="/billing/">' in html
    assert 'href="https://evil.example' not in html
    response = client.post(
        "/billing/card/finish/", {"setup_intent_id": confirmed_setup_intent(account), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/billing/"


def test_a_member_cannot_see_or_change_the_card(client, stripe_fake):
    owner, account = customer()
    client.force_login(teammate(account, Membership.MEMBER))
    setup_intent_id = confirmed_setup_intent(account)
    before = account.payment_method_id
    assert client.get("/billing/card/").status_code == 403
    assert client.post("/billing/card/finish/", {"setup_intent_id": setup_intent_id}).status_code == 403
    account.refresh_from_db()
    assert account.payment_method_id == before


def test_finishing_needs_a_csrf_token_and_a_post(stripe_fake):
    owner, account = customer()
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    setup_intent_id = confirmed_setup_intent(account)
    before = account.payment_method_id
    assert client.post("/billing/card/finish/", {"setup_intent_id": setup_intent_id}).status_code == 403
    assert client.get("/billing/card/finish/").status_code == 405
    account.refresh_from_db()
    assert account.payment_method_id == before


def test_anonymous_visitors_go_to_login(client, db):
    assert client.get("/billing/card/")["Location"].startswith("/accounts/login/")
    assert client.post("/billing/card/finish/")["Location"].startswith("/accounts/login/")


def test_the_card_page_says_so_when_stripe_cannot_be_reached(client, stripe_fake, settings):
    owner, account = customer(card=False)
    settings.LOCALSTRIPE_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client.force_login(owner)
    response = client.get("/billing/card/", follow=True)
    assert "Card entry is unavailable right now." in messages_of(response)[0]


def _pro():
    from .factories import PlanFactory, PriceFactory

    return PriceFactory(plan=PlanFactory(code="pro", name="Pro", rank=1), amount_minor=1900)


def test_subscribed_accounts_keep_their_subscription_when_the_card_changes(client, stripe_fake):
    owner, account, sub = subscribed(_pro())
    client.force_login(owner)
    client.post("/billing/card/finish/", {"setup_intent_id": confirmed_setup_intent(account)})
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
