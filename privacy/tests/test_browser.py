"""The account settings, deletion and export pages in Chromium (screenshots in test-output/)."""

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from billing_portal.lib import clock
from conftest import browser_login, screenshot
from privacy import services, tasks
from privacy.models import ExportJob
from subscriptions.tests.factories import PASSWORD, owner_with_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def csp_violations(browser_page):
    """Console messages about the Content Security Policy (there must be none)."""
    seen = []
    browser_page.on(
        "console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None
    )
    return seen


def test_an_owner_reads_what_deletion_means_confirms_it_and_can_undo_it(browser_page, known_account, csp_violations):
    page, k = browser_page, known_account
    browser_login(page, k.owner.email, PASSWORD)
    page.get_by_role("link", name="Account", exact=True).click()
    page.wait_for_url("**/account/")
    assert page.get_by_role("heading", name="Account settings").is_visible()
    assert page.get_by_role("button", name="Export my data").is_visible()
    screenshot(page, "privacy-account")

    page.get_by_role("link", name="Delete this account…").click()
    page.wait_for_url("**/account/delete/")
    assert page.get_by_role("heading", name="What happens").is_visible()
    screenshot(page, "privacy-delete")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "privacy-delete-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Type the account's name").fill("Verwijder")
    page.get_by_role("button", name="Delete this account").click()
    assert page.locator("#name-error").get_by_text("This is not the account's name.").is_visible()
    screenshot(page, "privacy-delete-wrong-name")
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at is None

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Type the account's name").fill("Verwijder Bakkerij")
    page.get_by_role("button", name="Delete this account").click()
    page.wait_for_url("**/account/")
    assert page.get_by_text("Your account will be deleted on").is_visible()
    screenshot(page, "privacy-account-deletion-pending")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "privacy-account-deletion-pending-390")

    page.get_by_role("button", name="Undo the deletion").click()
    assert page.get_by_text("The deletion is canceled").is_visible()
    assert Account.objects.get(pk=k.account.pk).deletion_requested_at is None
    assert csp_violations == []


def test_the_delete_page_shows_the_balance_that_blocks_it(browser_page, known_account):
    from datetime import timedelta

    from subscriptions import services as billing
    from subscriptions.tests.factories import DECLINING_CARD, give_card_number

    k = known_account
    give_card_number(k.account, DECLINING_CARD)
    billing.subscriptions_renew_due(now=k.subscription.current_period_end + timedelta(minutes=1))
    browser_login(browser_page, k.owner.email, PASSWORD)
    browser_page.goto("/account/delete/")
    assert browser_page.get_by_role("heading", name="First, pay the outstanding balance").is_visible()
    assert browser_page.get_by_role("button", name="Delete this account").is_disabled()
    screenshot(browser_page, "privacy-delete-blocked")


def test_the_progress_bar_follows_the_export_and_then_offers_the_download(browser_page, csp_violations):
    page = browser_page
    owner, account = owner_with_account(name="Progress Bakery")
    job = services.export_request(account=account, actor=owner)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.RUNNING, progress=40, updated_at=clock.now())
    browser_login(page, owner.email, PASSWORD)
    page.goto(f"/account/export/{job.pk}/")
    bar = page.locator("progress")
    assert bar.evaluate("bar => bar.value") == 40
    assert page.get_by_role("link", name="Refresh").is_hidden()  # the script polls instead
    screenshot(page, "privacy-export-progress")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "privacy-export-progress-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    ExportJob.objects.filter(pk=job.pk).update(progress=70)
    expect(bar).to_have_js_property("value", 70)  # moved by the script, without a reload
    expect(page.get_by_text("Preparing your export: 70%")).to_be_visible()

    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.PENDING)
    services.export_build(job_id=job.pk)
    page.get_by_role("heading", name="Your export is ready").wait_for()
    screenshot(page, "privacy-export-ready")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the ZIP file").click()
    assert download.value.suggested_filename.startswith(f"account-{account.pk}-export-")
    assert csp_violations == []


def test_without_javascript_the_progress_page_reloads_itself(chromium, live_server, localstripe_server, monkeypatch):
    # Tasks run inline in tests; keep this export waiting so the page shows its progress first.
    monkeypatch.setattr(tasks.build_export, "delay_on_commit", lambda *args, **kwargs: None)
    owner, account = owner_with_account(name="No Script Ltd")
    job = services.export_request(account=account, actor=owner)
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        browser_login(page, owner.email, PASSWORD)
        page.goto(f"/account/export/{job.pk}/")
        assert page.get_by_role("link", name="Refresh").is_visible()
        services.export_build(job_id=job.pk)
        # The <noscript> refresh reloads the page every 5 seconds.
        page.get_by_role("heading", name="Your export is ready").wait_for(timeout=12_000)
    finally:
        context.close()


def test_a_printable_invoice_from_the_export_reads_as_an_invoice(chromium, known_account, monkeypatch):
    import zipfile

    monkeypatch.setattr(tasks.build_export, "delay_on_commit", lambda *args, **kwargs: None)

    job = services.export_build(
        job_id=services.export_request(account=known_account.account, actor=known_account.owner).pk
    )
    invoice = known_account.invoices[0]
    html = zipfile.ZipFile(job.path).read(f"invoices/invoice-{invoice.number}.html").decode()
    page = chromium.new_page(viewport={"width": 900, "height": 900})
    try:
        page.set_content(html)
        # In the account's language (Dutch).
        assert page.get_by_role("heading", name=f"Factuur {invoice.number}").is_visible()
        assert page.locator("html").get_attribute("lang") == "nl"
        assert page.get_by_text("Verwijder Bakkerij").is_visible()
        screenshot(page, "privacy-export-invoice")
    finally:
        page.close()
