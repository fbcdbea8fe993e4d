"""Choose a plan, preview the exact money, confirm or schedule the change, withdraw it."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.test import Client

from accounts.models import Membership
from subscriptions import lifecycle, services
from subscriptions.models import Invoice, InvoiceLine, Payment, Subscription, SubscriptionEvent

from .factories import DECLINING_CARD, PriceFactory, give_card_number
from .pages import NOW, T0, customer, messages_of, past_due, snapshot, subscribed, teammate

pytestmark = pytest.mark.django_db


def change_url(price) -> str:
    return f"/billing/plans/{price.pk}/"


def confirm_url(price) -> str:
    return f"/billing/plans/{price.pk}/confirm/"


# --- Choose a plan ------------------------------------------------------------------------------------
def test_the_plans_page_shows_plans_side_by_side_with_the_current_one_marked(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    html = client.get("/billing/plans/").content.decode()
    for name in ["Free", "Pro", "Business", "Business feature"]:
        assert name in html
    assert "Your plan" in html and ">Current<" in html
    assert "€490.00 per year" in html
    # 12 × €49 = €588 a year monthly against €490 annually.
    assert "Save €98.00 a year (17%)" in html
    assert f'href="{change_url(plans["business"]["monthly"])}"' in html
    assert f'href="{change_url(plans["pro"]["monthly"])}"' not in html


def test_the_plans_page_of_a_past_due_account_says_why_nothing_can_change(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    client.force_login(owner)
    html = client.get("/billing/plans/").content.decode()
    assert "A payment failed. Update your card to pay the open invoice first." in html
    assert "/billing/plans/" + str(plans["business"]["monthly"].pk) not in html


def test_the_plans_page_without_a_subscription_leads_to_subscribing(client, plans, stripe_fake, frozen):
    owner, account = customer()
    client.force_login(owner)
    html = client.get("/billing/plans/").content.decode()
    assert f'href="/billing/subscribe/{plans["pro"]["monthly"].pk}/"' in html


def test_prices_in_another_currency_are_not_offered(client, plans, stripe_fake, frozen):
    usd = PriceFactory(plan=plans["pro"]["monthly"].plan, cycle=lifecycle.MONTHLY, currency="usd", amount_minor=2100)
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    html = client.get("/billing/plans/").content.decode()
    assert f"/billing/plans/{usd.pk}/" not in html and "$21.00" not in html


# --- Preview -------------------------------------------------------------------------------------------
def test_an_upgrade_preview_shows_credit_due_today_and_the_new_renewal(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    response = client.get(change_url(plans["business"]["monthly"]))
    html = response.content.decode()
    assert response.status_code == 200
    # Halfway through a €19 month: €9.50 credit, €49 − €9.50 due today.
    assert "Credit for unused time on Pro" in html and "-€9.50" in html
    assert 'data-testid="due-today">€39.50<' in html
    assert "Then €49.00 per month; your next renewal is on May 16, 2026." in html
    assert "Confirm and pay €39.50" in html
    assert "forfeit" not in html


def test_a_downgrade_that_would_forfeit_money_offers_to_switch_at_the_period_end(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    client.force_login(owner)
    html = client.get(change_url(plans["pro"]["monthly"])).content.decode()
    # €24.50 unused against a €19 plan: €0 today and €5.50 lost, unless the switch waits.
    assert "-€24.50" in html
    assert 'data-testid="due-today">€0.00<' in html
    assert "€5.50 would be forfeited" in html
    assert "Switch at the end of the current period" in html and "Switch on May 1, 2026" in html
    assert "Switch now and forfeit €5.50" in html


def test_a_change_in_a_trial_is_just_a_swap(client, plans, stripe_fake, frozen):
    price = plans["pro"]["monthly"]
    price.plan.trial_days = 14
    price.plan.save()
    owner, account, sub = subscribed(price, now=NOW)
    client.force_login(owner)
    html = client.get(change_url(plans["business"]["monthly"])).content.decode()
    assert 'data-testid="due-today">€0.00<' in html
    assert "your trial still ends on April 30, 2026. Then you pay €49.00 per month." in html
    response = client.post(confirm_url(plans["business"]["monthly"]), {"when": "now"})
    sub.refresh_from_db()
    assert (sub.status, sub.price, sub.trial_end) == (
        lifecycle.TRIALING,
        plans["business"]["monthly"],
        NOW + timedelta(days=14),
    )
    assert not Invoice.objects.filter(account=account).exists()
    assert "Your trial continues on Business (monthly) until April 30, 2026." in messages_of(
        client.get(response["Location"])
    )


def test_a_commitment_downgrade_is_scheduled_for_the_commitment_end(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["annual_commitment_monthly"])
    client.force_login(owner)
    cheaper = plans["pro"]["annual_commitment_monthly"]
    html = client.get(change_url(cheaper)).content.decode()
    assert "You are committed to your current plan until April 1, 2027." in html
    assert "Schedule change" in html
    client.post(confirm_url(cheaper), {"when": "period_end"})
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price) == (plans["business"]["annual_commitment_monthly"], cheaper)


# --- Confirm -------------------------------------------------------------------------------------------
def test_confirming_an_upgrade_charges_the_card_and_switches_at_once(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    business = plans["business"]["monthly"]
    response = client.post(confirm_url(business), {"when": "now"}, follow=True)
    sub.refresh_from_db()
    assert (sub.price, sub.current_period_start, sub.current_period_end) == (business, NOW, NOW + timedelta(days=30))
    invoice = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    assert (invoice.status, invoice.amount_due_minor) == (Invoice.PAID, 3950)
    assert invoice.lines.get(kind=InvoiceLine.PRORATION_CREDIT).amount_minor == -950
    event = SubscriptionEvent.objects.filter(subscription=sub).first()
    assert (event.kind, event.actor, event.actor_kind) == ("price_changed", owner, SubscriptionEvent.CUSTOMER)
    assert "You are now on Business (monthly). We charged €39.50 to your card." in messages_of(response)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [1900, 3950]


def test_confirm_ignores_any_posted_amount_and_computes_again(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    client.post(
        confirm_url(plans["business"]["monthly"]),
        {"when": "now", "amount_due_minor": "1", "credit_minor": "999999", "price": plans["free"]["monthly"].pk},
    )
    invoice = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    assert (invoice.amount_due_minor, invoice.price) == (3950, plans["business"]["monthly"])


def test_switching_at_the_period_end_schedules_the_change_without_charging(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    client.force_login(owner)
    pro = plans["pro"]["monthly"]
    response = client.post(confirm_url(pro), {"when": "period_end"}, follow=True)
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price) == (plans["business"]["monthly"], pro)
    assert Invoice.objects.filter(account=account).count() == 1
    assert SubscriptionEvent.objects.filter(subscription=sub).first().kind == "price_change_scheduled"
    assert "Your plan changes to Pro (monthly) on May 1, 2026." in messages_of(response)[0]
    assert "On May 1, 2026 your plan changes to Pro" in response.content.decode()


def test_switching_now_despite_the_forfeit_charges_nothing_and_loses_the_excess(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    client.force_login(owner)
    response = client.post(confirm_url(plans["pro"]["monthly"]), {"when": "now"}, follow=True)
    sub.refresh_from_db()
    assert sub.price == plans["pro"]["monthly"]
    event = SubscriptionEvent.objects.filter(subscription=sub).first()
    assert (event.kind, event.data["forfeited_minor"]) == ("price_changed", 550)
    assert "Nothing was charged today." in messages_of(response)[0]
    assert len(stripe_fake.payment_intents()) == 1


def test_withdrawing_a_scheduled_change_keeps_the_plan(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    services.subscription_change(
        subscription=sub, price=plans["pro"]["monthly"], actor=owner, now=NOW, at_period_end=True
    )
    client.force_login(owner)
    response = client.post("/billing/scheduled-change/withdraw/", follow=True)
    sub.refresh_from_db()
    assert sub.scheduled_price is None
    assert SubscriptionEvent.objects.filter(subscription=sub).first().kind == "price_change_withdrawn"
    assert "The scheduled change was withdrawn." in messages_of(response)[0]


def test_withdrawing_when_nothing_is_scheduled_says_so_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post("/billing/scheduled-change/withdraw/", follow=True)
    assert "There is no scheduled change to withdraw." in messages_of(response)
    assert snapshot(account) == before


def test_a_declined_card_changes_nothing_and_says_so(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    give_card_number(account, DECLINING_CARD)
    client.force_login(owner)
    row = Subscription.objects.filter(pk=sub.pk).values().get()
    events = SubscriptionEvent.objects.filter(subscription=sub).count()
    business = plans["business"]["monthly"]
    response = client.post(confirm_url(business), {"when": "now"})
    assert response["Location"] == change_url(business)
    assert Subscription.objects.filter(pk=sub.pk).values().get() == row
    assert SubscriptionEvent.objects.filter(subscription=sub).count() == events
    attempt = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    assert attempt.status == Invoice.VOID
    assert not attempt.payments.filter(status=Payment.SUCCEEDED).exists()
    [message] = messages_of(client.get(response["Location"]))
    assert "declined" in message and "Nothing was changed." in message


def test_an_upgrade_without_a_card_asks_for_one_first(client, plans, stripe_fake, frozen):
    free_owner, free_account, free_sub = subscribed(plans["free"]["monthly"], card=False)
    client.force_login(free_owner)
    business = plans["business"]["monthly"]
    html = client.get(change_url(business)).content.decode()
    assert "Add a card first" in html and "Confirm and pay" not in html
    before = snapshot(free_account)
    response = client.post(confirm_url(business), {"when": "now"})
    assert response["Location"].startswith("/billing/card/?next=")
    assert snapshot(free_account) == before


# --- Bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["other_currency", "inactive", "inactive_plan", "missing"])
def test_a_price_that_cannot_be_chosen_is_a_404_and_changes_nothing(client, plans, stripe_fake, frozen, kind):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    if kind == "other_currency":
        price_id = PriceFactory(plan=plans["business"]["monthly"].plan, currency="usd", amount_minor=5500).pk
    elif kind == "inactive":
        price_id = PriceFactory(plan=plans["business"]["monthly"].plan, amount_minor=5500, is_active=False).pk
    elif kind == "inactive_plan":
        plan = plans["business"]["monthly"].plan
        plan.is_active = False
        plan.save()
        price_id = plans["business"]["monthly"].pk
    else:
        price_id = 999999
    client.force_login(owner)
    before = snapshot(account)
    assert client.get(f"/billing/plans/{price_id}/").status_code == 404
    assert client.post(f"/billing/plans/{price_id}/confirm/", {"when": "now"}).status_code == 404
    assert snapshot(account) == before


def test_choosing_the_current_price_says_so_and_changes_nothing(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    response = client.post(confirm_url(plans["pro"]["monthly"]), {"when": "now"}, follow=True)
    assert "You are already on this plan and cycle." in messages_of(response)
    response = client.get(change_url(plans["pro"]["monthly"]), follow=True)
    assert "You are already on this plan and cycle." in messages_of(response)
    assert snapshot(account) == before


def test_a_change_while_past_due_is_refused_with_the_reason(client, plans, stripe_fake):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    client.force_login(owner)
    before = snapshot(account)
    response = client.post(confirm_url(plans["business"]["monthly"]), {"when": "now"}, follow=True)
    assert "A payment failed. Update your card to pay the open invoice first." in messages_of(response)
    assert snapshot(account) == before


def test_a_change_while_paused_is_refused_with_the_reason(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_pause(subscription=sub, actor=owner, months=1, now=NOW)
    client.force_login(owner)
    before = snapshot(account)
    response = client.get(change_url(plans["business"]["monthly"]), follow=True)
    assert "Your subscription is paused. Resume it first." in messages_of(response)
    response = client.post(confirm_url(plans["business"]["monthly"]), {"when": "now"}, follow=True)
    assert "Your subscription is paused. Resume it first." in messages_of(response)
    assert snapshot(account) == before


@pytest.mark.parametrize("when", ["tomorrow", "", "now; drop table", None])
def test_a_tampered_or_missing_when_field_is_a_400_and_changes_nothing(client, plans, stripe_fake, frozen, when):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    data = {} if when is None else {"when": when}
    assert client.post(confirm_url(plans["business"]["monthly"]), data).status_code == 400
    assert snapshot(account) == before


def test_a_confirm_without_csrf_token_is_refused(plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = snapshot(account)
    assert client.post(confirm_url(plans["business"]["monthly"]), {"when": "now"}).status_code == 403
    assert client.post("/billing/scheduled-change/withdraw/").status_code == 403
    assert snapshot(account) == before


def test_a_get_on_an_action_is_refused(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    before = snapshot(account)
    assert client.get(confirm_url(plans["business"]["monthly"])).status_code == 405
    assert client.get("/billing/scheduled-change/withdraw/").status_code == 405
    assert snapshot(account) == before


def test_a_member_cannot_preview_or_confirm_and_is_told_who_can(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    member = teammate(account, Membership.MEMBER)
    client.force_login(member)
    before = snapshot(account)
    for response in [
        client.get("/billing/plans/"),
        client.get(change_url(plans["business"]["monthly"])),
        client.post(confirm_url(plans["business"]["monthly"]), {"when": "now"}),
        client.post("/billing/scheduled-change/withdraw/"),
    ]:
        assert response.status_code == 403
        assert owner.get_full_name() in response.content.decode()
    assert snapshot(account) == before


def test_the_owner_of_another_account_cannot_touch_this_one(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_change(
        subscription=sub, price=plans["business"]["monthly"], actor=owner, now=NOW, at_period_end=True
    )
    stranger, stranger_account = customer(card=False)
    client.force_login(stranger)
    before = snapshot(account)
    # Every action works on the stranger's own account (which has no subscription), never on this one.
    response = client.post(confirm_url(plans["business"]["annual"]), {"when": "now"}, follow=True)
    assert "You have no running subscription." in messages_of(response)
    client.post("/billing/scheduled-change/withdraw/")
    assert snapshot(account) == before


def test_anonymous_visitors_go_to_login_for_every_change_page(client, plans, db):
    price = plans["business"]["monthly"]
    for url in ["/billing/plans/", change_url(price)]:
        assert client.get(url)["Location"].startswith("/accounts/login/")
    for url in [confirm_url(price), "/billing/scheduled-change/withdraw/"]:
        assert client.post(url, {"when": "now"})["Location"].startswith("/accounts/login/")


def test_a_scheduled_commitment_downgrade_waits_through_the_monthly_renewals(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["business"]["annual_commitment_monthly"])
    cheaper = plans["pro"]["annual_commitment_monthly"]
    client.force_login(owner)
    client.post(confirm_url(cheaper), {"when": "period_end"})
    services.subscriptions_renew_due(now=sub.current_period_end + timedelta(minutes=1))
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price) == (plans["business"]["annual_commitment_monthly"], cheaper)
    assert sub.commitment_end_at == T0 + relativedelta(years=1)
    services.subscriptions_renew_due(now=sub.commitment_end_at + timedelta(minutes=1))
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price, sub.current_period_start) == (cheaper, None, T0 + relativedelta(years=1))
