"""Logging in with a real browser (Chromium)."""

import pytest

from conftest import browser_login, screenshot
from subscriptions.tests.factories import PASSWORD, owner_with_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_logs_in_with_email_and_sees_the_billing_page(browser_page):
    owner, _account = owner_with_account(name="Browser Bakery")
    browser_page.goto("/billing/")
    screenshot(browser_page, "login")
    browser_login(browser_page, owner.email, PASSWORD)
    assert browser_page.get_by_role("heading", name="Billing settings").is_visible()
    assert browser_page.get_by_text("Browser Bakery").is_visible()
    screenshot(browser_page, "billing-empty")
