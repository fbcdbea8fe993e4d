"""The public pricing page: plans side by side, a cycle switch without JavaScript, one call to action each."""

import re

import pytest

from accounts.models import Membership
from subscriptions.models import Price
from subscriptions.tests.factories import PlanFactory, PriceFactory
from subscriptions.tests.pages import FORMS_SCRIPT, customer, subscribed, teammate

pytestmark = pytest.mark.django_db


def cards(html: str) -> dict[str, str]:
    """Each plan card's HTML by plan code."""
    return dict(re.findall(r'<section class="pricing-card[^"]*" id="plan-(\w+)".*?>(.*?)</section>', html, re.S))


def test_visitors_see_the_active_plans_side_by_side_with_features_and_monthly_prices(client, trial_plans):
    html = client.get("/pricing/").content.decode()
    plans = cards(html)
    assert list(plans) == ["free", "pro", "business"]
    assert "€19.00" in plans["pro"] and "per month" in plans["pro"] and "Pro feature" in plans["pro"]
    assert "€49.00" in plans["business"] and "Billed monthly, cancel any time" in plans["business"]
    assert "14-day free trial, no card needed" in plans["pro"]
    assert "free trial" not in plans["business"] and "free trial" not in plans["free"]
    assert "Save up to 17 % with annual billing" in html
    assert '<a href="?cycle=monthly" aria-current="page">Monthly</a>' in html


def test_the_annual_switch_shows_the_price_per_month_and_the_saving(client, plans):
    plans_html = cards(client.get("/pricing/?cycle=annual").content.decode())
    assert "€15.83" in plans_html["pro"]  # 190.00 / 12, rounded half up
    assert "Billed once a year: €190.00" in plans_html["pro"]
    assert "Save €38.00 a year (17 %)" in plans_html["pro"]
    assert "Save €98.00 a year (17 %)" in plans_html["business"]
    assert "€0.00" in plans_html["free"] and "Save" not in plans_html["free"]


def test_the_commitment_switch_shows_the_monthly_price_and_the_saving(client, plans):
    html = client.get("/pricing/?cycle=annual_commitment_monthly").content.decode()
    plans_html = cards(html)
    assert "€17.00" in plans_html["pro"] and "12-month commitment" in plans_html["pro"]
    assert "Save €24.00 a year (11 %)" in plans_html["pro"]
    assert 'aria-current="page">Commit annually, pay monthly</a>' in html


def test_an_unknown_cycle_shows_the_monthly_prices(client, plans):
    html = client.get("/pricing/?cycle=weekly").content.decode()
    assert 'aria-current="page">Monthly</a>' in html
    assert "€19.00" in cards(html)["pro"]


def test_each_call_to_action_leads_to_signup_with_the_price_of_the_chosen_cycle(client, trial_plans):
    plans = trial_plans
    monthly = cards(client.get("/pricing/").content.decode())
    assert f'href="/accounts/signup/?price={plans["pro"]["monthly"].pk}"' in monthly["pro"]
    assert "Try Pro free for 14 days" in monthly["pro"]
    assert f'href="/accounts/signup/?price={plans["business"]["monthly"].pk}"' in monthly["business"]
    assert "Get Business" in monthly["business"]
    assert "Start with Free" in monthly["free"]
    annual = cards(client.get("/pricing/?cycle=annual").content.decode())
    assert f'href="/accounts/signup/?price={plans["business"]["annual"].pk}"' in annual["business"]


def test_inactive_plans_prices_and_other_currencies_are_not_offered(client, plans):
    hidden = PlanFactory(code="legacy", name="Legacy", rank=5, is_active=False)
    PriceFactory(plan=hidden)
    PriceFactory(plan=PlanFactory(code="dollars", name="Dollars", rank=6), currency="usd")
    Price.objects.filter(pk=plans["business"]["annual"].pk).update(is_active=False)
    html = client.get("/pricing/?cycle=annual").content.decode()
    assert "Legacy" not in html and "Dollars" not in html
    business = cards(html)["business"]
    assert "Not offered with this billing cycle" in business and "signup" not in business


def test_the_home_page_shows_pricing_to_visitors_and_sends_customers_to_billing(client, plans, stripe_fake):
    response = client.get("/")
    assert response.status_code == 200
    assert "Plans and pricing" in response.content.decode()
    owner, _account = customer(card=False)
    client.force_login(owner)
    assert client.get("/")["Location"] == "/billing/"


def test_the_pricing_page_has_no_script_and_needs_no_login(client, plans):
    response = client.get("/pricing/")
    assert response.status_code == 200
    # Only the busy-button script every page has (docs/rules.md, "Feedback"); the page needs none.
    assert re.findall(r"<script[^>]*>", response.content.decode()) == [FORMS_SCRIPT]


def test_a_customer_sees_their_plan_marked_and_buttons_into_the_change_preview(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    html = client.get("/pricing/").content.decode()
    plans_html = cards(html)
    assert "Your plan" in plans_html["pro"] and "Your current plan" in plans_html["pro"]
    assert 'class="pricing-card is-current"' in html
    assert "/accounts/signup/" not in html
    assert f'href="/billing/plans/{plans["business"]["monthly"].pk}/"' in plans_html["business"]
    assert "Upgrade to Business" in plans_html["business"]
    assert "Downgrade to Free" in plans_html["free"]
    annual = cards(client.get("/pricing/?cycle=annual").content.decode())
    assert f'href="/billing/plans/{plans["pro"]["annual"].pk}/"' in annual["pro"]
    assert "Switch to annual" in annual["pro"]


def test_a_customer_on_an_annual_price_sees_annual_prices_first(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["annual"])
    client.force_login(owner)
    html = client.get("/pricing/").content.decode()
    assert 'aria-current="page">Annual</a>' in html


def test_a_member_sees_the_plans_without_buttons_and_who_can_change_them(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(teammate(account, Membership.MEMBER))
    html = client.get("/pricing/").content.decode()
    assert "/billing/plans/" not in html and "/accounts/signup/" not in html
    assert owner.get_full_name() in html


def test_an_account_that_had_its_trial_is_offered_none(client, trial_plans, stripe_fake):
    owner, account = customer(card=False)
    from subscriptions import services

    sub = services.subscription_start(account=account, price=trial_plans["pro"]["monthly"], actor=owner)
    services.subscription_cancel_now(subscription=sub, actor=owner)
    client.force_login(owner)
    assert "free trial" not in client.get("/pricing/").content.decode()


def test_the_pricing_page_uses_a_constant_number_of_queries(client, plans, django_assert_max_num_queries):
    for n in range(10):
        plan = PlanFactory(code=f"extra{n}", rank=10 + n)
        PriceFactory(plan=plan)
    with django_assert_max_num_queries(3):
        client.get("/pricing/")
