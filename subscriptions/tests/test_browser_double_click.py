"""A double click on "Pay now" in Chromium: the button says it is paying, and one request, one charge."""

import json
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from billing_portal.lib import clock
from conftest import browser_login, screenshot
from subscriptions import lifecycle, services
from subscriptions.models import Invoice

from .factories import DECLINING_CARD, PASSWORD, give_card_number
from .pages import customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def past_due_with_a_good_card(plans):
    """A customer whose renewal failed; the card on file now works, so "Pay now" will succeed."""
    owner, account = customer(name="Bakkerij Bolder")
    now = clock.now()
    sub = services.subscription_start(
        account=account, price=plans["pro"]["monthly"], actor=owner, now=now - timedelta(days=31)
    )
    give_card_number(account, DECLINING_CARD)
    services.subscriptions_renew_due(now=now)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    give_card_number(account, "4242424242424242")
    return owner, Invoice.objects.get(subscription=sub, status=Invoice.OPEN)


PAY_NOW = "form[action$='/billing/pay-now/'] button"
# Notes what the button looks like once its form is sent, in sessionStorage (which outlives the
# page): while a navigation is pending Playwright cannot evaluate in the page.
WATCH_BUTTON = """button => {
  new MutationObserver(() => {
    sessionStorage.setItem("payNow", JSON.stringify(
      {disabled: button.disabled, busy: button.getAttribute("aria-busy"), label: button.textContent.trim()}));
  }).observe(button, {attributes: true, childList: true, subtree: true, characterData: true});
}"""


def double_click_then_click_again(page) -> tuple[list, list]:
    """Double-click "Pay now" with the mouse, hold the request at the browser's edge, click once
    more while it is on its way; the POSTs the page sent are counted with page.on("request")."""
    posts, held = [], []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.route("**/billing/pay-now/", lambda route: held.append(route))
    button = page.locator(PAY_NOW)
    button.evaluate(WATCH_BUTTON)
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.dblclick(x, y)
    page.wait_for_timeout(400)  # the first request is on its way (held); the page still shows
    page.mouse.click(x, y)  # the impatient third click
    page.wait_for_timeout(400)
    return posts, held


def button_seen(page) -> dict | None:
    return json.loads(page.evaluate("sessionStorage.getItem('payNow')") or "null")


def charges_for(stripe_fake, invoice) -> int:
    return len(
        [i for i in stripe_fake.succeeded_payment_intents() if i["metadata"].get("invoice_id") == str(invoice.pk)]
    )


def release(page, held) -> None:
    page.unroute("**/billing/pay-now/")
    for route in held:
        try:
            route.continue_()
        except Exception:  # a request the browser gave up for a later one
            pass


def test_double_clicking_pay_now_shows_paying_and_sends_one_request(browser_page, plans, stripe_fake):
    page = browser_page
    owner, invoice = past_due_with_a_good_card(plans)
    browser_login(page, owner.email, PASSWORD)
    expect(page.get_by_role("button", name=re.compile(r"^Pay .* now$"))).to_be_enabled()

    posts, held = double_click_then_click_again(page)
    assert [url.split("/", 3)[-1] for url in posts] == ["billing/pay-now/"]

    release(page, held)
    expect(page.get_by_text("Thank you: the open invoice is paid and your subscription is active.")).to_be_visible()
    screenshot(page, "pay-now-after-double-click")
    assert button_seen(page) == {"disabled": True, "busy": "true", "label": "Paying…"}
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert charges_for(stripe_fake, invoice) == 1


def test_without_the_busy_button_the_same_clicks_send_more_requests(browser_page, plans, stripe_fake):
    """The control of the test above: on a form that forms.js leaves alone (data-no-busy), the same
    clicks reach the server more than once, so the count above measures the script. The server
    still charges once (test_double_posts)."""
    page = browser_page
    owner, invoice = past_due_with_a_good_card(plans)
    browser_login(page, owner.email, PASSWORD)
    page.locator(PAY_NOW).evaluate("button => { button.form.dataset.noBusy = ''; }")

    posts, held = double_click_then_click_again(page)
    assert len(posts) >= 2

    release(page, held)
    expect(page.locator(".messages")).to_be_visible()
    assert button_seen(page) is None  # nothing made it busy
    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID
    assert charges_for(stripe_fake, invoice) == 1
