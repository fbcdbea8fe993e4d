"""Pause and resume, undo a cancellation, pay now when past due, resubscribe after the end."""

from datetime import timedelta

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.test import Client

from accounts.models import Membership
from subscriptions import lifecycle, services
from subscriptions.models import Invoice, Subscription, SubscriptionEvent

from .factories import DECLINING_CARD, UserFactory, give_card
from .pages import NOW, T0, customer, messages_of, past_due, snapshot, subscribed, teammate

pytestmark = pytest.mark.django_db


# --- Pause and resume ----------------------------------------------------------------------------------
def test_the_pause_page_offers_one_to_three_months_with_their_resume_dates(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    html = client.get("/billing/pause/").content.decode()
    for months, date in [(1, "May 16, 2026"), (2, "June 16, 2026"), (3, "July 16, 2026")]:
        assert f'name="months" value="{months}"' in html
        assert f"Resumes on {date}" in html


def test_pausing_for_two_months_pauses_at_once_and_says_when_it_resumes(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    response = client.post("/billing/pause/", {"months": "2"}, follow=True)
    sub.refresh_from_db()
    assert (sub.status, sub.paused_at, sub.resume_at) == (lifecycle.PAUSED, NOW, NOW + relativedelta(months=2))
    event = SubscriptionEvent.objects.filter(subscription=sub).first()
    assert (event.kind, event.actor) == ("paused", owner)
    assert "It resumes on June 16, 2026" in messages_of(response)[0]


def test_resuming_now_moves_the_billing_date_by_the_time_paused(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_pause(subscription=sub, actor=owner, months=3, now=NOW - timedelta(days=10))
    client.force_login(owner)
    response = client.post("/billing/resume/", follow=True)
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_end) == (lifecycle.ACTIVE, T0 + relativedelta(months=1) + timedelta(days=10))
    assert SubscriptionEvent.objects.filter(subscription=sub).first().kind == "resumed"
    assert "Next billing date: May 11, 2026." in messages_of(response)[0]


@pytest.mark.parametrize("months", ["0", "4", "two", "", "1.5"])
def test_a_pause_of_a_tampered_length_is_a_400_and_changes_nothing(client, plans, stripe_fake, frozen, months):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    assert client.post("/billing/pause/", {"months": months}).status_code == 400
    assert snapshot(account) == before


def test_an_annual_subscription_cannot_pause_and_the_page_says_why(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["annual"])
    client.force_login(owner)
    assert "Only monthly subscriptions can be paused." in client.get("/billing/pause/").content.decode()
    before = snapshot(account)
    response = client.post("/billing/pause/", {"months": "1"}, follow=True)
    assert "Only monthly subscriptions can be paused." in messages_of(response)
    assert snapshot(account) == before


def test_resuming_a_running_subscription_is_refused_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post("/billing/resume/", follow=True)
    assert messages_of(response) == ["This change is not possible for a subscription in this state."]
    assert snapshot(account) == before


# --- Undo a cancellation ------------------------------------------------------------------------------
def test_undoing_a_cancellation_keeps_the_subscription(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=NOW)
    client.force_login(owner)
    response = client.post("/billing/undo-cancel/", follow=True)
    sub.refresh_from_db()
    assert sub.cancel_at is None
    assert SubscriptionEvent.objects.filter(subscription=sub).first().kind == "cancel_undone"
    assert "The cancellation was undone." in messages_of(response)[0]
    assert ">Active<" in response.content.decode()


def test_undo_without_a_cancellation_says_so_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post("/billing/undo-cancel/", follow=True)
    assert messages_of(response) == ["There is no cancellation to undo."]
    assert snapshot(account) == before


# --- Pay now -----------------------------------------------------------------------------------------------
def test_pay_now_with_the_same_declining_card_fails_and_keeps_past_due(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        response = client.post("/billing/pay-now/", follow=True)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    assert "The payment failed again" in messages_of(response)[0]


def test_pay_now_after_fixing_the_card_pays_the_open_invoice(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    give_card(account)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        response = client.post("/billing/pay-now/", follow=True)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert not Invoice.objects.filter(account=account, status=Invoice.OPEN).exists()
    assert SubscriptionEvent.objects.filter(subscription=sub).first().kind == "payment_recovered"
    assert "the open invoice is paid" in messages_of(response)[0]


def test_pay_now_with_nothing_to_pay_says_so_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post("/billing/pay-now/", follow=True)
    assert messages_of(response) == ["There is nothing to pay."]
    assert snapshot(account) == before


# --- Resubscribe -------------------------------------------------------------------------------------------
def ended(plans):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_cancel_now(subscription=sub, actor=UserFactory(is_staff=True), now=NOW - timedelta(days=1))
    return owner, account, sub


def test_resubscribe_previews_todays_charge_and_restores_the_plan_in_one_click(client, plans, stripe_fake, frozen):
    owner, account, old = ended(plans)
    client.force_login(owner)
    url = f"/billing/subscribe/{plans['pro']['monthly'].pk}/"
    html = client.get(url).content.decode()
    assert "<h1>Resubscribe</h1>" in html
    assert 'data-testid="due-today">€19.00<' in html
    assert "Then €19.00 per month; your next renewal is on May 16, 2026." in html
    response = client.post(url, follow=True)
    new = Subscription.objects.live().get(account=account)
    assert (new.price, new.status) == (plans["pro"]["monthly"], lifecycle.ACTIVE)
    assert Subscription.objects.get(pk=old.pk).status == lifecycle.CANCELED  # kept as history
    assert Invoice.objects.get(subscription=new).amount_due_minor == 1900
    assert "Welcome to Pro. Your next billing date is May 16, 2026." in messages_of(response)


def test_resubscribe_applies_the_credit_balance_in_the_preview(client, plans, stripe_fake, frozen):
    from subscriptions.models import CreditEntry

    owner, account, old = ended(plans)
    CreditEntry.objects.create(
        account=account, amount_minor=500, currency="eur", kind=CreditEntry.GRANT, created_at=NOW
    )
    client.force_login(owner)
    html = client.get(f"/billing/subscribe/{plans['pro']['monthly'].pk}/").content.decode()
    assert "Credit balance applied" in html and "-€5.00" in html
    assert 'data-testid="due-today">€14.00<' in html


def test_resubscribe_without_a_card_asks_for_one(client, plans, stripe_fake, frozen):
    owner, account = customer(card=False)
    client.force_login(owner)
    url = f"/billing/subscribe/{plans['pro']['monthly'].pk}/"
    assert "Add a card first" in client.get(url).content.decode()
    response = client.post(url)
    assert response["Location"].startswith("/billing/card/?next=")
    assert not Subscription.objects.filter(account=account).exists()


def test_subscribing_with_a_running_subscription_is_refused_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post(f"/billing/subscribe/{plans['business']['monthly'].pk}/", follow=True)
    assert "This account already has a subscription. Change its plan instead." in messages_of(response)
    assert snapshot(account) == before


def test_subscribing_to_a_price_of_another_currency_is_a_404(client, plans, stripe_fake, frozen):
    from .factories import PriceFactory

    owner, account, old = ended(plans)
    usd = PriceFactory(plan=plans["pro"]["monthly"].plan, currency="usd")
    client.force_login(owner)
    before = snapshot(account)
    assert client.get(f"/billing/subscribe/{usd.pk}/").status_code == 404
    assert client.post(f"/billing/subscribe/{usd.pk}/").status_code == 404
    assert snapshot(account) == before


# --- Roles, CSRF and methods for all of these actions ---------------------------------------------------------
ACTIONS = ["/billing/pause/", "/billing/resume/", "/billing/undo-cancel/", "/billing/pay-now/"]


def test_a_member_cannot_pause_resume_undo_pay_or_resubscribe(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_pause(subscription=sub, actor=owner, months=1, now=NOW)
    client.force_login(teammate(account, Membership.MEMBER))
    before = snapshot(account)
    for url in ACTIONS + [f"/billing/subscribe/{plans['pro']['monthly'].pk}/"]:
        response = client.post(url, {"months": "1"})
        assert response.status_code == 403, url
        assert owner.get_full_name() in response.content.decode()
    assert client.get("/billing/pause/").status_code == 403
    assert snapshot(account) == before


def test_a_billing_admin_can_pause_and_resume(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    admin = teammate(account, Membership.BILLING_ADMIN)
    client.force_login(admin)
    client.post("/billing/pause/", {"months": "1"})
    client.post("/billing/resume/")
    kinds = list(SubscriptionEvent.objects.filter(subscription=sub, actor=admin).values_list("kind", flat=True))
    assert kinds == ["resumed", "paused"]


def test_these_actions_need_a_csrf_token(plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=NOW)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = snapshot(account)
    for url in ACTIONS:
        assert client.post(url, {"months": "1"}).status_code == 403, url
    assert snapshot(account) == before


def test_a_get_on_these_actions_is_refused(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=NOW)
    client.force_login(owner)
    before = snapshot(account)
    for url in ["/billing/resume/", "/billing/undo-cancel/", "/billing/pay-now/"]:
        assert client.get(url).status_code == 405, url
    assert snapshot(account) == before


def test_anonymous_visitors_go_to_login(client, plans, db):
    for url in ACTIONS:
        assert client.post(url)["Location"].startswith("/accounts/login/")
    assert client.get("/billing/pause/")["Location"].startswith("/accounts/login/")


def test_paying_now_again_and_again_never_uses_up_the_dunning_schedule(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    schedule = (sub.retries_done, sub.next_retry_at)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=1), tick=False):
        for _attempt in range(len(settings.BILLING_DUNNING_RETRY_DAYS) + 1):
            client.post("/billing/pay-now/")
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    assert (sub.retries_done, sub.next_retry_at) == schedule
    failed = SubscriptionEvent.objects.filter(subscription=sub, kind="payment_retry_failed", actor=owner)
    assert failed.count() == len(settings.BILLING_DUNNING_RETRY_DAYS) + 1
