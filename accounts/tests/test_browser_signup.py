"""A visitor becomes a customer in Chromium: pricing → signup → (verify, card) → billing; and the team page."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Account, Membership, User
from conftest import browser_login, screenshot
from subscriptions import activity, lifecycle
from subscriptions.models import Invoice, Subscription
from subscriptions.tests.factories import PASSWORD, PlanFactory, PriceFactory
from subscriptions.tests.pages import customer
from subscriptions.tests.test_browser_pages import fill_card, mobile

from .conftest import link_in_last_email

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_up(page, email: str, account_name: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill("plum-orchard-1987")
    page.get_by_label("Company or account name").fill(account_name)


def test_a_visitor_buys_a_plan_without_a_trial_with_a_card(browser_page, trial_plans, stripe_fake):
    page = browser_page
    studio_plan = PlanFactory(code="studio", name="Studio", rank=3, trial_days=0, features=["Everything", "Support"])
    studio = PriceFactory(plan=studio_plan, cycle=lifecycle.MONTHLY, amount_minor=9900)
    page.goto("/")
    expect(page.get_by_role("heading", name="Plans and pricing")).to_be_visible()
    expect(page.get_by_role("link", name="Try Pro free for 14 days")).to_be_visible()
    screenshot(page, "pricing")
    mobile(page, "pricing-390")
    page.get_by_role("link", name="Annual", exact=True).click()
    expect(page.get_by_text("Billed once a year: €190.00")).to_be_visible()
    screenshot(page, "pricing-annual")
    page.get_by_role("link", name="Monthly", exact=True).click()

    page.get_by_role("link", name="Get Studio").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    sign_up(page, "ada@lovelace.example", "Analytical Engines")
    screenshot(page, "signup")
    mobile(page, "signup-390")
    page.get_by_role("button", name="Create account and continue").click()

    expect(page.get_by_role("heading", name="Verify your email address")).to_be_visible()
    expect(page.locator("#card-element")).to_have_count(0)
    screenshot(page, "signup-verify-email")
    assert mail.outbox[-1].to == ["ada@lovelace.example"]
    page.goto(link_in_last_email("verify"))

    expect(page.get_by_text("Thank you: your email address is verified.")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)
    fill_card(page, "4242424242424242")
    screenshot(page, "signup-pay")
    mobile(page, "signup-pay-390")
    page.get_by_role("button", name="Pay €99.00 and start").click()

    page.wait_for_url("**/billing/")
    expect(page.locator(".badge-active")).to_have_text("Active")
    expect(page.get_by_text("Welcome to Studio! Your payment went through")).to_be_visible()
    screenshot(page, "signup-paid-billing")
    account = Account.objects.get(name="Analytical Engines")
    sub = Subscription.objects.get(account=account)
    assert (sub.status, sub.price) == (lifecycle.ACTIVE, studio)
    assert Invoice.objects.get(account=account).status == Invoice.PAID
    assert account.memberships.get().role == Membership.OWNER
    assert len(stripe_fake.succeeded_payment_intents()) == 1

    page.get_by_role("link", name="Change plan").click()
    page.goto("/pricing/")
    expect(page.locator("#plan-studio")).to_contain_text("Your current plan")
    expect(page.get_by_role("link", name="Downgrade to Business")).to_be_visible()
    screenshot(page, "pricing-customer")


def test_a_visitor_starts_a_trial_without_a_card(browser_page, trial_plans, stripe_fake):
    page = browser_page
    page.goto("/pricing/")
    page.get_by_role("link", name="Try Pro free for 14 days").click()
    expect(page.get_by_text("Free for 14 days, no card needed.")).to_be_visible()
    sign_up(page, "grace@hopper.example", "Hopper Computing")
    page.get_by_role("button", name="Create account and start trial").click()

    page.wait_for_url("**/billing/")
    expect(page.locator(".badge-trialing")).to_have_text("Trial")
    account = Account.objects.get(name="Hopper Computing")
    sub = Subscription.objects.get(account=account)
    assert sub.status == lifecycle.TRIALING and not account.has_payment_method
    trial_end = activity.date_in(sub.trial_end, ZoneInfo(account.timezone))
    expect(page.locator(".summary-grid")).to_contain_text(f"Trial ends on{trial_end}")
    expect(page.get_by_test_id("verify-notice")).to_be_visible()
    screenshot(page, "signup-trial-billing")
    mobile(page, "signup-trial-billing-390")


def test_an_owner_invites_a_teammate_who_joins(browser_page, chromium, live_server, trial_plans, stripe_fake):
    page = browser_page
    owner, account = customer(card=False, name="Lovelace & Co")
    browser_login(page, owner.email, PASSWORD)
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Team", exact=True)).to_be_visible()
    page.get_by_label("Email address").fill("charles@babbage.example")
    page.get_by_label("Role", exact=True).select_option(Membership.BILLING_ADMIN)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("We emailed an invitation to charles@babbage.example.")).to_be_visible()
    screenshot(page, "team")
    mobile(page, "team-390")

    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844}, locale="en-US")
    invitee = context.new_page()
    invitee.goto(link_in_last_email("invitation"))
    expect(invitee.get_by_role("heading", name="Join Lovelace & Co")).to_be_visible()
    invitee.get_by_label("Your name").fill("Charles Babbage")
    invitee.get_by_label("Choose a password").fill("difference-engine-1822")
    screenshot(invitee, "invitation-390")
    invitee.get_by_role("button", name="Join the team").click()
    invitee.wait_for_url("**/billing/")
    expect(invitee.get_by_text("Welcome to Lovelace & Co!")).to_be_visible()
    context.close()

    page.reload()
    expect(page.get_by_test_id("member-charles@babbage.example")).to_contain_text("Charles Babbage")
    expect(page.get_by_text("No invitations are waiting.")).to_be_visible()
    screenshot(page, "team-with-member")
    mobile(page, "team-with-member-390")
    charles = User.objects.get(email="charles@babbage.example")
    assert charles.membership.role == Membership.BILLING_ADMIN and charles.is_email_verified
    page.get_by_role("button", name=re.compile("^Remove Charles Babbage")).click()
    expect(page.get_by_text("Charles Babbage was removed from your team.")).to_be_visible()
    assert not Membership.objects.filter(user=charles).exists()
