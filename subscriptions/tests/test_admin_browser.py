"""The operators' pages in Chromium: the dashboard, and a price change previewed before it is confirmed."""

from datetime import timedelta

import pytest

from billing_portal.lib import clock
from conftest import browser_login, screenshot
from subscriptions import lifecycle, reconciliation, services
from subscriptions.models import Payment, Subscription

from .factories import PASSWORD, PlanFactory, PriceFactory, UserFactory, give_card, owner_with_account
from .test_dashboard import history  # noqa: F401 (the known history, as a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in_as_operator(page) -> None:
    operator = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    browser_login(page, operator.email, PASSWORD)


def test_the_dashboard_shows_mrr_movement_and_plans_as_charts(browser_page, history):  # noqa: F811
    page = browser_page
    log_in_as_operator(page)
    page.goto("/admin/")
    page.get_by_role("link", name="Revenue dashboard").click()
    page.wait_for_url("**/admin/billing/dashboard/")
    assert page.locator("svg.billing-chart").count() == 3
    assert page.locator(".billing-kpi-value").first.inner_text() == "€231.84"
    screenshot(page, "admin-dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "admin-dashboard-390")


def test_a_price_change_is_previewed_with_its_money_then_confirmed(browser_page, stripe_fake):
    page = browser_page
    owner, account = owner_with_account(name="Acme Rockets")
    give_card(account)
    pro = PriceFactory(plan=PlanFactory(name="Pro", rank=1), amount_minor=5000)
    business = PriceFactory(plan=PlanFactory(name="Business", rank=2), amount_minor=10000)
    PriceFactory(plan=business.plan, cycle=lifecycle.ANNUAL, amount_minor=100000)
    sub = services.subscription_start(account=account, price=pro, actor=owner, now=clock.now() - timedelta(days=10))
    log_in_as_operator(page)
    page.goto(f"/admin/subscriptions/subscription/{sub.pk}/change/")
    page.get_by_role("button", name="Change price…").click()
    page.get_by_label("New price").select_option(str(business.pk))
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("heading", name="Preview: change to Business Monthly €100.00").wait_for()
    preview = page.locator("table.billing-preview").inner_text()
    assert "Acme Rockets" in preview and "€100.00" in preview
    screenshot(page, "admin-change-price-preview")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "admin-change-price-preview-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Confirm the change").click()
    page.wait_for_url(f"**/admin/subscriptions/subscription/{sub.pk}/change/")
    assert "1 subscription changed to Business Monthly €100.00." in page.locator("ul.messagelist").inner_text()
    assert Subscription.objects.get(pk=sub.pk).price == business
    screenshot(page, "admin-subscription-after-change")
    page.goto("/admin/subscriptions/subscription/?q=Acme")
    assert "Acme Rockets" in page.locator("#result_list").inner_text()
    screenshot(page, "admin-subscriptions-list")


def test_refund_account_and_reconciliation_pages(browser_page, stripe_fake):
    page = browser_page
    owner, account = owner_with_account(name="Globex")
    give_card(account)
    price = PriceFactory(plan=PlanFactory(name="Pro"), amount_minor=1900)
    services.subscription_start(account=account, price=price, actor=owner, now=clock.now() - timedelta(days=3))
    payment = Payment.objects.get()
    log_in_as_operator(page)

    page.goto(f"/admin/subscriptions/payment/{payment.pk}/change/")
    page.get_by_role("button", name="Refund…").click()
    page.get_by_label("Amount to refund").fill("4.50")
    page.get_by_label("Reason").fill("Charged twice for one seat")
    screenshot(page, "admin-refund")
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(f"**/admin/subscriptions/payment/{payment.pk}/change/")
    assert "Refunded €4.50" in page.locator("ul.messagelist").inner_text()
    screenshot(page, "admin-payment-after-refund")

    page.goto(f"/admin/accounts/account/{account.pk}/change/")
    page.locator("input[name$='-0-amount']").fill("10")
    page.locator("input[name$='-0-reason']").fill("Sorry for the outage")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "Credit granted: €10.00." in page.locator("ul.messagelist").inner_text()
    screenshot(page, "admin-account")

    Payment.objects.filter(pk=payment.pk).update(amount_minor=1234)
    reconciliation.reconciliation_run()
    page.goto("/admin/billing/reconciliation/")
    assert "Amount mismatch" in page.locator("table.billing-table").inner_text()
    screenshot(page, "admin-reconciliation")
