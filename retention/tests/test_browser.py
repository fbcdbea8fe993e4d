"""The cancellation flow in Chromium: the full path in English and in Italian, an accepted offer,
and screenshots of every page (desktop and 390 px) under test-output/screenshots/."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import formats, translation

from billing_portal.lib import clock
from conftest import browser_login, screenshot
from retention.models import CancellationFlow, SessionRequest
from subscriptions import lifecycle
from subscriptions.models import Invoice
from subscriptions.tests.factories import PASSWORD

from .conftest import add_member, make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offers(transactional_db):
    """The default offers (a transactional test starts from an empty database)."""
    importlib.import_module("retention.migrations.0002_seed_default_offers").seed(apps, None)


def shots(page, name: str) -> None:
    """A desktop and a phone-sized screenshot of the current page."""
    screenshot(page, name)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, f"{name}-390")
    page.set_viewport_size(size)


def local_date(moment, account, language: str) -> str:
    from zoneinfo import ZoneInfo

    with translation.override(language):
        return formats.date_format(moment.astimezone(ZoneInfo(account.timezone)), "DATE_FORMAT")


def switch_language(page, code: str) -> None:
    page.select_option("#language-select", code)
    page.locator(".language-switcher button").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("language", ["en", "it"])
def test_a_customer_cancels_in_four_clicks_sees_the_end_date_and_undoes_it(
    browser_page, catalog, offers, stripe_fake, language
):
    page = browser_page
    customer = make_customer(catalog["business"][lifecycle.MONTHLY], now=clock.now() - timedelta(days=10))
    browser_login(page, customer.owner.email, PASSWORD)
    if language != "en":
        switch_language(page, language)
    assert page.locator("html").get_attribute("lang") == language

    page.goto("/billing/")
    page.click("a[href='/billing/cancel/']")  # click 1: the billing page's "Cancel subscription" link
    page.locator("label[for=id_reason_0]").click()  # too expensive
    page.fill("#id_reason_text", "Il budget è finito." if language == "it" else "Our budget was cut.")
    shots(page, f"retention-1-reason-{language}")
    page.click("#continue")  # click 2

    page.wait_for_selector("#accept-offer")
    offer_text = page.locator("main").inner_text()
    assert ("34,30\xa0€" if language == "it" else "€34.30") in offer_text  # 30 % off €49
    shots(page, f"retention-2-offer-discount-{language}")
    page.click("#skip-to-cancel")  # click 3

    page.wait_for_selector("#confirm-cancel")
    shots(page, f"retention-3-before-you-go-{language}")
    page.click("#confirm-cancel")  # click 4

    page.wait_for_selector("#undo-cancel")
    sub = customer.refresh()
    assert sub.cancel_at == sub.current_period_end
    assert local_date(sub.cancel_at, customer.account, language) in page.locator("#ends-on").inner_text()
    assert page.locator("html").get_attribute("lang") == language
    flow = CancellationFlow.objects.get()
    assert (flow.outcome, flow.reason, flow.offer_kind, flow.offer_accepted_at) == (
        "canceled",
        "too_expensive",
        "discount",
        None,
    )
    shots(page, f"retention-4-canceled-{language}")

    page.click("#undo-cancel")
    page.wait_for_url("**/billing/")
    assert customer.refresh().cancel_at is None
    flow.refresh_from_db()
    assert flow.outcome == "saved" and flow.undone_at is not None
    shots(page, f"retention-5-undone-{language}")


def test_a_customer_asks_for_a_session_instead_of_canceling(browser_page, catalog, offers, stripe_fake):
    page = browser_page
    customer = make_customer(catalog["business"][lifecycle.MONTHLY], now=clock.now() - timedelta(days=3))
    browser_login(page, customer.owner.email, PASSWORD)
    page.goto("/billing/cancel/")
    page.locator("label[for=id_reason_1]").click()  # missing features
    page.click("#continue")
    page.wait_for_selector("#id_proposed_1")
    soon = (clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT10:00")
    page.fill("#id_proposed_1", soon)
    page.fill("#id_note", "We need single sign-on for the whole team.")
    shots(page, "retention-2-offer-session")
    page.click("#accept-offer")
    page.wait_for_selector("#proposed-times")
    request = SessionRequest.objects.get()
    assert request.note == "We need single sign-on for the whole team."
    assert len(request.proposed_times) == 1
    assert CancellationFlow.objects.get().outcome == "saved"
    shots(page, "retention-kept-session")


def test_screenshots_of_the_other_offers_blockers_and_roles(browser_page, catalog, offers, stripe_fake, admin_user):
    page = browser_page
    now = clock.now()
    customer = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY], now=now - timedelta(days=40))
    sub = customer.subscription
    Invoice.objects.create(
        account=customer.account,
        subscription=sub,
        billing_reason=Invoice.CYCLE,
        price=sub.price,
        currency="eur",
        period_start=sub.current_period_end,
        period_end=sub.current_period_end + timedelta(days=30),
        subtotal_minor=4400,
        amount_due_minor=4400,
        created_at=now,
    )
    browser_login(page, customer.owner.email, PASSWORD)
    page.goto("/billing/cancel/")
    page.locator("label[for=id_reason_2]").click()  # not using it enough: a cheaper plan
    page.click("#continue")
    page.wait_for_selector("#accept-offer")
    shots(page, "retention-2-offer-cheaper-plan")
    page.click("#skip-to-cancel")
    page.wait_for_selector("#blocker-balance")
    assert page.locator("#confirm-cancel").count() == 0
    assert page.locator("#commitment-payments").is_visible()
    shots(page, "retention-3-before-you-go-blocked-commitment")
    page.click("#pay-now")
    page.wait_for_url("**/billing/")

    monthly = make_customer(catalog["pro"][lifecycle.MONTHLY], now=now - timedelta(days=5), name="Pause Co")
    member = add_member(monthly.account, name="Max Member")
    context = page.context
    context.clear_cookies()
    browser_login(page, monthly.owner.email, PASSWORD)
    page.goto("/billing/cancel/")
    page.locator("label[for=id_reason_4]").click()  # only needed it for a while: a pause
    page.click("#continue")
    page.wait_for_selector("#accept-offer")
    shots(page, "retention-2-offer-pause")
    page.click("#accept-offer")
    page.wait_for_selector("#kept")
    assert monthly.refresh().status == lifecycle.PAUSED
    shots(page, "retention-kept-pause")

    context.clear_cookies()
    browser_login(page, member.email, PASSWORD)
    response = page.goto("/billing/cancel/")
    assert response.status == 403
    assert monthly.owner.email in page.locator("#not-allowed").inner_text()
    shots(page, "retention-member-not-allowed")

    context.clear_cookies()
    admin_user.set_password(PASSWORD)
    admin_user.save()
    page.goto("/admin/login/")
    page.fill("#id_username", admin_user.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto("/admin/retention/cancellationflow/report/")
    page.wait_for_selector("#figure-started")
    assert page.locator("#figure-started strong").inner_text() == "2"
    screenshot(page, "retention-admin-report")
