"""The billing summary page (/billing/) in every role and every state."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings

from accounts.models import Membership
from subscriptions import lifecycle, page_cache, services
from subscriptions.models import Invoice, Payment, SubscriptionEvent

from .factories import DECLINING_CARD, UserFactory
from .pages import NOW, T0, customer, past_due, subscribed, teammate

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/billing/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_staff_without_an_account_are_told_they_have_none(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/billing/")
    assert response.status_code == 200
    assert b"No billing account" in response.content


def test_an_owner_sees_plan_cycle_amount_status_next_date_card_and_credit(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    response = client.get("/billing/")
    html = response.content.decode()
    assert response.status_code == 200
    for text in ["Pro", "Monthly", "€19.00 per month", ">Active<", "May 1, 2026", "···· 4242", "Expires 12/", "€0.00"]:
        assert text in html, text
    assert "Your subscription renews on May 1, 2026 for €19.00." in html
    assert 'href="/billing/plans/"' in html
    assert 'href="/billing/pause/"' in html
    assert 'href="/billing/cancel/"' in html  # the cancellation flow (its own feature)
    assert 'href="/billing/card/"' in html


@pytest.mark.parametrize("role", [Membership.OWNER, Membership.BILLING_ADMIN])
def test_owners_and_billing_admins_get_the_action_buttons_and_invoices(client, plans, stripe_fake, frozen, role):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    user = owner if role == Membership.OWNER else teammate(account, role)
    client.force_login(user)
    html = client.get("/billing/").content.decode()
    assert "Change plan" in html
    assert "Recent invoices" in html
    assert f'href="/billing/invoices/{Invoice.objects.get().pk}/"' in html


def test_a_member_sees_the_summary_read_only_and_who_can_act(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    admin = teammate(account, Membership.BILLING_ADMIN)
    member = teammate(account, Membership.MEMBER)
    client.force_login(member)
    html = client.get("/billing/").content.decode()
    assert "Pro" in html and "€19.00 per month" in html and ">Active<" in html
    assert "only these people can change" in html
    assert f"<strong>{owner.get_full_name()}</strong> (owner)" in html
    assert f"<strong>{admin.get_full_name()}</strong> (billing admin)" in html
    for action in [
        "Change plan",
        "/billing/pause/",
        "/billing/cancel/",
        "/billing/card/",
        '<form method="post" action="/billing/',
    ]:
        assert action not in html, action
    assert "Recent invoices" not in html


def test_the_state_line_of_a_trial_says_when_it_ends_and_asks_for_a_card(client, plans, stripe_fake, frozen):
    price = plans["pro"]["monthly"]
    price.plan.trial_days = 14
    price.plan.save()
    owner, account, sub = subscribed(price, card=False, now=NOW)
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert ">Trial<" in html
    assert "Your free trial ends on April 30, 2026. Add a card before then to keep your subscription." in html


def test_the_state_line_of_a_canceling_subscription_offers_undo(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=NOW)
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert ">Canceling<" in html
    assert "Your subscription ends on May 1, 2026." in html
    assert 'action="/billing/undo-cancel/"' in html
    assert 'href="/billing/cancel/"' not in html


def test_the_state_line_of_a_past_due_subscription_shows_the_dunning_schedule(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=2), tick=False):
        html = client.get("/billing/").content.decode()
    assert ">Past due<" in html
    # Retries 1, 3, 5 and 7 days after the failure on May 1; service stops after the last one.
    assert "Payment failed on May 1, 2026; we retry on May 2, 2026; service stops on May 8, 2026" in html
    assert "Amount due: €19.00" in html
    assert 'action="/billing/pay-now/"' in html and "Pay €19.00 now" in html
    assert "Update card" in html
    assert "Change plan" not in html


def test_the_state_line_of_a_paused_subscription_shows_the_resume_date(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_pause(subscription=sub, actor=owner, months=2, now=NOW)
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert ">Paused<" in html
    assert "Your subscription is paused until June 16, 2026." in html
    assert 'action="/billing/resume/"' in html


def test_the_state_line_of_an_ended_subscription_offers_to_resubscribe(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_cancel_now(subscription=sub, actor=UserFactory(is_staff=True), now=NOW)
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert ">Canceled<" in html
    assert "Your subscription ended on April 16, 2026." in html
    assert f'href="/billing/subscribe/{plans["pro"]["monthly"].pk}/"' in html


def test_a_scheduled_change_shows_with_a_withdraw_button(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    services.subscription_change(
        subscription=sub, price=plans["pro"]["monthly"], actor=owner, now=NOW, at_period_end=True
    )
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert "On May 1, 2026 your plan changes to Pro, €19.00 per month." in html
    assert 'action="/billing/scheduled-change/withdraw/"' in html


def test_a_commitment_downgrade_shows_the_commitment_end_as_its_date(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["annual_commitment_monthly"])
    services.subscription_change(
        subscription=sub, price=plans["pro"]["annual_commitment_monthly"], actor=owner, now=NOW
    )
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert "On April 1, 2027 your plan changes to Pro" in html
    assert "You are committed until April 1, 2027." not in html  # the change line replaces the renewal line
    assert "Committed until" in html


def test_recent_activity_lists_plan_changes_payments_and_cancellations(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_change(subscription=sub, price=plans["business"]["monthly"], actor=owner, now=NOW)
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=NOW + timedelta(minutes=1))
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert "Subscription started on Pro (monthly)" in html
    assert "Plan changed from Pro (monthly) to Business (monthly)" in html
    assert "Cancellation scheduled for May 16, 2026" in html
    assert owner.get_full_name() in html


def test_the_summary_is_shown_in_dutch_with_dutch_money(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    client.cookies["django_language"] = "nl"
    html = client.get("/billing/").content.decode()
    assert '<html lang="nl">' in html
    assert "€\xa019,00" in html  # Babel puts a no-break space between sign and amount
    assert "1 mei 2026" in html


def test_an_account_without_a_subscription_is_invited_to_choose_a_plan(client, plans, stripe_fake, frozen):
    owner, account = customer(card=False)
    client.force_login(owner)
    html = client.get("/billing/").content.decode()
    assert "You have no subscription yet." in html
    assert 'href="/billing/plans/"' in html


# --- A constant number of queries, whatever the history -------------------------------------------------
def _with_history(plans, invoices: int):
    """An active subscription with `invoices` paid invoices and as many audit events."""
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    first = Invoice.objects.get(account=account)
    Invoice.objects.bulk_create(
        Invoice(
            account=account,
            subscription=sub,
            billing_reason=Invoice.CYCLE,
            price=sub.price,
            status=Invoice.PAID,
            currency="eur",
            period_start=T0 - timedelta(days=31 * n),
            period_end=T0 - timedelta(days=31 * (n - 1)),
            subtotal_minor=1900,
            amount_due_minor=1900,
            created_at=first.created_at - timedelta(days=31 * n),
            paid_at=first.created_at - timedelta(days=31 * n),
        )
        for n in range(1, invoices)
    )
    SubscriptionEvent.objects.bulk_create(
        SubscriptionEvent(
            subscription=sub,
            kind="payment_succeeded",
            from_status=lifecycle.ACTIVE,
            to_status=lifecycle.ACTIVE,
            actor_kind=SubscriptionEvent.JOB,
            data={"amount_minor": 1900, "price": sub.price_id},
            created_at=T0 - timedelta(days=31 * n),
        )
        for n in range(1, invoices)
    )
    assert Invoice.objects.filter(account=account).count() == invoices
    return owner


# Session, user, membership with account, subscription, credit balance, activity (events, their
# prices), recent invoices. The number depends on the state shown, never on the history's size.
# With Redis the session comes from the cache (settings.SESSION_ENGINE), one query less. This is
# the page drawn: on PostgreSQL the page cache's fingerprint comes first (subscriptions/page_cache.py),
# one query more, and a view served from that cache makes none of the page's own queries.
BILLING_PAGE_QUERIES = 9  # incl. one for a payment waiting for authentication (SCA banner)


@pytest.mark.parametrize("invoices", [1, 200])
def test_the_billing_page_makes_the_same_few_queries_with_1_or_200_invoices(
    client, plans, stripe_fake, frozen, django_assert_num_queries, invoices
):
    owner = _with_history(plans, invoices=invoices)
    client.force_login(owner)
    session_from_cache = settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    fingerprint = page_cache.enabled()
    with django_assert_num_queries(BILLING_PAGE_QUERIES - session_from_cache + fingerprint):
        response = client.get("/billing/")
    assert response.status_code == 200
    assert len(response.context["invoices"]) == min(invoices, 5)


def test_a_declined_attempt_is_explained_in_the_pages_language_never_in_stripes_english(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    Payment.objects.filter(invoice__account=account).update(
        failure_code="insufficient_funds", failure_message="Your card has insufficient funds."
    )
    client.force_login(owner)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "nl"})
    with time_machine.travel(sub.past_due_since + timedelta(days=1), tick=False):
        html = client.get("/billing/").content.decode()
    assert "Geweigerd: onvoldoende saldo" in html
    assert "insufficient funds" not in html  # Stripe's message is for operators (admin)
