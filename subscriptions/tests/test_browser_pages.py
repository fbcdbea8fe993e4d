"""The billing pages in Chromium: what a customer clicks through, with screenshots to look at."""

import re
from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from playwright.sync_api import expect

from accounts.models import Membership
from billing_portal.lib import clock
from conftest import browser_login, screenshot
from subscriptions import lifecycle, services
from subscriptions.models import Invoice, Subscription

from .factories import DECLINING_CARD, PASSWORD, give_card_number
from .pages import customer, teammate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def started(price, *, days_ago: float, card: bool = True):
    """An owner whose account subscribed to `price` some days ago (by the real clock)."""
    owner, account = customer(card=card, name="Bakkerij Bolder")
    sub = services.subscription_start(
        account=account, price=price, actor=owner, now=clock.now() - timedelta(days=days_ago)
    )
    return owner, account, sub


def mobile(page, name: str) -> None:
    """A screenshot 390 px wide (a phone), then back to the desktop width."""
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_upgrade_with_a_preview_and_confirm(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["pro"]["monthly"], days_ago=10)
    teammate(account, Membership.BILLING_ADMIN)
    browser_login(page, owner.email, PASSWORD)
    expect(page.get_by_text("Your subscription renews on")).to_be_visible()
    screenshot(page, "billing-active")
    mobile(page, "billing-active-390")

    page.get_by_role("link", name="Change plan").click()
    expect(page.get_by_role("heading", name="Choose a plan")).to_be_visible()
    screenshot(page, "plans")
    mobile(page, "plans-390")

    page.get_by_role("link", name="Choose Business, Monthly").click()
    expect(page.get_by_role("heading", name="Review your change")).to_be_visible()
    expect(page.get_by_text("Credit for unused time on Pro")).to_be_visible()
    due_today = page.get_by_test_id("due-today").inner_text()
    screenshot(page, "change-preview-upgrade")
    mobile(page, "change-preview-upgrade-390")

    page.get_by_role("button", name=re.compile(r"^Confirm and pay")).click()
    expect(page.get_by_text("You are now on Business (monthly).")).to_be_visible()
    assert due_today in page.locator(".messages").inner_text()
    screenshot(page, "billing-after-upgrade")
    sub.refresh_from_db()
    assert sub.price == plans["business"]["monthly"]


def test_downgrade_at_the_period_end_and_withdraw_it(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["business"]["monthly"], days_ago=5)
    browser_login(page, owner.email, PASSWORD)
    page.get_by_role("link", name="Change plan").click()
    page.get_by_role("link", name="Choose Pro, Monthly").click()
    expect(page.get_by_text("would be forfeited")).to_be_visible()
    screenshot(page, "change-preview-forfeit")
    mobile(page, "change-preview-forfeit-390")

    page.get_by_role("button", name=re.compile(r"^Switch on ")).click()
    expect(page.get_by_text("Your plan changes to Pro (monthly) on")).to_be_visible()
    expect(page.get_by_text(re.compile(r"your plan changes to Pro, €19\.00 per month"))).to_be_visible()
    screenshot(page, "billing-scheduled-change")
    sub.refresh_from_db()
    assert sub.scheduled_price == plans["pro"]["monthly"]

    page.get_by_role("button", name="Withdraw change").click()
    expect(page.get_by_text("The scheduled change was withdrawn.")).to_be_visible()
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price) == (plans["business"]["monthly"], None)


def test_pause_and_resume(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["pro"]["monthly"], days_ago=3)
    browser_login(page, owner.email, PASSWORD)
    page.get_by_role("link", name="Pause", exact=True).click()
    expect(page.get_by_role("heading", name="Pause your subscription")).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"2 months")).check()
    screenshot(page, "pause")
    mobile(page, "pause-390")
    page.get_by_role("button", name="Pause subscription").click()
    expect(page.get_by_text("Your subscription is paused until")).to_be_visible()
    expect(page.locator(".badge-paused")).to_have_text("Paused")
    screenshot(page, "billing-paused")
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAUSED

    page.get_by_role("button", name="Resume now").click()
    expect(page.get_by_text("Your subscription is running again.")).to_be_visible()
    expect(page.locator(".badge-active")).to_have_text("Active")
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE


def fill_card(page, number="4242424242424242") -> None:
    """Type into the Card Element (localstripe's fake one: plain inputs inside #card-element)."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("34")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("1012")


def test_update_the_card_through_stripe_js(browser_page, plans, stripe_fake):
    page = browser_page
    price = plans["pro"]["monthly"]
    price.plan.trial_days = 14
    price.plan.save()
    owner, account, sub = started(price, days_ago=3, card=False)  # a trial needs no card yet
    browser_login(page, owner.email, PASSWORD)
    expect(page.get_by_text("Add a card before then to keep your subscription.")).to_be_visible()
    screenshot(page, "billing-trial-without-card")
    page.locator(".notice").get_by_role("link", name="Add a card").click()
    expect(page.get_by_role("heading", name="Payment method")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)
    fill_card(page)
    screenshot(page, "card")
    mobile(page, "card-390")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("card ending in 4242 is now your default payment method")).to_be_visible()
    expect(page.get_by_text("···· 4242")).to_be_visible()
    account.refresh_from_db()
    assert (account.card_last4, account.card_exp_year) == ("4242", 2034)


def test_a_past_due_customer_sees_the_schedule_and_a_new_card_pays_at_once(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account = customer(name="Bakkerij Bolder")
    sub = services.subscription_start(
        account=account,
        price=plans["pro"]["monthly"],
        actor=owner,
        now=clock.now() - relativedelta(months=1) - timedelta(hours=2),
    )
    give_card_number(account, DECLINING_CARD)
    services.subscriptions_renew_due(now=sub.current_period_end)
    browser_login(page, owner.email, PASSWORD)
    expect(page.get_by_text(re.compile(r"Payment failed on .*; we retry on .*; service stops on"))).to_be_visible()
    screenshot(page, "billing-past-due")
    mobile(page, "billing-past-due-390")

    page.get_by_role("button", name="Pay €19.00 now").click()
    expect(page.get_by_text("The payment failed again")).to_be_visible()

    page.locator(".notice-danger").get_by_role("link", name="Update card").click()
    expect(page.get_by_text("Your open invoice is charged to the new card")).to_be_visible()
    fill_card(page)
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("The open invoice is paid and your subscription is active again.")).to_be_visible()
    assert Subscription.objects.get(pk=sub.pk).status == lifecycle.ACTIVE


def test_read_an_invoice(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["pro"]["monthly"], days_ago=12)
    services.subscription_change(subscription=sub, price=plans["business"]["monthly"], actor=owner)
    browser_login(page, owner.email, PASSWORD)
    page.get_by_role("link", name="All invoices").click()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    screenshot(page, "invoices")
    mobile(page, "invoices-390")
    change = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    page.get_by_role("link", name=change.number).click()
    expect(page.get_by_role("heading", name=f"Invoice {change.number}")).to_be_visible()
    expect(page.get_by_text("Unused time on Pro (Monthly)")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    screenshot(page, "invoice")
    mobile(page, "invoice-390")
    page.emulate_media(media="print")
    screenshot(page, "invoice-print")
    expect(page.locator(".topbar")).to_be_hidden()


def test_a_member_sees_the_summary_read_only(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["pro"]["annual"], days_ago=40)
    services.subscription_schedule_cancel(subscription=sub, actor=owner)
    member = teammate(account, Membership.MEMBER)
    browser_login(page, member.email, PASSWORD)
    expect(page.get_by_text("only these people can change")).to_be_visible()
    expect(page.get_by_role("button", name="Undo cancellation")).to_have_count(0)
    screenshot(page, "billing-member")
    page.goto("/billing/plans/")
    expect(page.get_by_role("heading", name="Only billing managers can do this")).to_be_visible()
    screenshot(page, "forbidden")


def test_resubscribe_after_the_end(browser_page, plans, stripe_fake):
    page = browser_page
    owner, account, sub = started(plans["pro"]["annual"], days_ago=400)
    services.subscriptions_renew_due(now=sub.current_period_end - timedelta(days=1))
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=sub.current_period_end - timedelta(days=2))
    services.subscriptions_renew_due(now=sub.current_period_end + timedelta(minutes=1))
    assert Subscription.objects.get(pk=sub.pk).status == lifecycle.CANCELED
    browser_login(page, owner.email, PASSWORD)
    expect(page.get_by_text("Your subscription ended on")).to_be_visible()
    screenshot(page, "billing-canceled")
    page.get_by_role("link", name="Resubscribe").click()
    expect(page.get_by_test_id("due-today")).to_have_text("€190.00")
    screenshot(page, "resubscribe")
    page.get_by_role("button", name="Subscribe and pay €190.00").click()
    expect(page.get_by_text("Welcome to Pro.")).to_be_visible()
    assert Subscription.objects.live().get(account=account).price == plans["pro"]["annual"]


def test_in_dutch_the_pages_work_and_show_dutch_money(browser_page, plans, stripe_fake):
    """Without the lead's catalogues the words stay English, so this run finds things by address."""
    page = browser_page
    owner, account, sub = started(plans["pro"]["monthly"], days_ago=10)
    browser_login(page, owner.email, PASSWORD)
    page.locator("#language-select").select_option("nl")
    page.locator(".language-switcher button").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("main")).to_contain_text("€\xa019,00")
    screenshot(page, "nl-billing")
    mobile(page, "nl-billing-390")

    page.locator('a[href="/billing/plans/"]').first.click()
    expect(page.locator("main")).to_contain_text("€\xa049,00")
    page.locator(f'a[href="/billing/plans/{plans["business"]["monthly"].pk}/"]').click()
    expect(page.get_by_test_id("due-today")).to_contain_text(re.compile(r"^€\xa0\d+,\d\d$"))
    screenshot(page, "nl-change-preview")
    page.locator("form[action$='/confirm/'] button[type=submit]").click()
    expect(page.locator(".message-success")).to_be_visible()
    screenshot(page, "nl-billing-after-upgrade")
    sub.refresh_from_db()
    assert sub.price == plans["business"]["monthly"]
