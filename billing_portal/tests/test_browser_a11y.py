"""Accessibility and look of every page, in Chromium, on the demo data (`seed_demo`).

- axe-core (tools/axe, from npm) finds no violation on any page in any state;
- every page fits a phone: nothing is wider than 390 px, in English and in Dutch;
- every element the keyboard reaches shows where the focus is; badges carry words, not colour alone;
- the customer flows (plan change, pause, cancellation, card) work with the keyboard alone.

Screenshots of every page at 1280 and 390 px, in English and Dutch (the main billing pages in
Italian too), go to test-output/screenshots/a11y-*.jpg (not committed): look at them after a
change of markup or CSS. See docs/rules.md, "Accessibility".
"""

import importlib
import re
from datetime import timedelta
from io import StringIO
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.urls import Resolver404, resolve
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import expect

from accounts import tokens
from accounts.models import Account, Invitation, Membership, User
from billing_portal.lib import clock
from conftest import ROOT, browser_login, need, screenshot
from privacy.models import ExportJob
from subscriptions import lifecycle, services
from subscriptions.management.commands.seed_demo import PASSWORD as DEMO_PASSWORD
from subscriptions.management.commands.seed_demo import Command as SeedDemo
from subscriptions.models import Invoice, Payment, Plan, Price, Subscription
from subscriptions.tests.factories import (
    AUTHENTICATION_CARD,
    PASSWORD,
    give_card,
    give_saved_card_number,
    owner_with_account,
)

from .test_access_matrix import RULES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# GET views that are not pages a person reads, so neither axe nor a screenshot applies.
NOT_PAGES = {
    "privacy:export-status": "JSON polled by the progress bar's script",
    "privacy:export-download": "the export's zip file",
    "billing_admin:reconciliation-start": "a POST action (GET answers 405)",
}
# Django admin's own markup that our templates do not override: (axe rule, the elements it may
# flag, as a CSS selector, why). Anything else in admin must pass like the portal.
ADMIN_EXCLUSIONS: list[tuple[str, str, str]] = [
    (
        "empty-table-header",
        ".inline-group .tabular thead th",
        "Django's tabular inline (edit_inline/tabular.html) leaves the header over the object "
        "column, and over the delete column when deleting is off, empty",
    ),
    (
        "label",
        ".inline-group .tabular td input",
        "Django's tabular inline labels each row's fields by the column header only",
    ),
    ("select-name", ".inline-group .tabular td select", "the same, for select boxes"),
    (
        "label-title-only",
        "#changelist-search #searchbar",
        "Django's changelist search box is labelled by its magnifier image's alt text",
    ),
]


def portal_pages() -> set[str]:
    """Every URL name that answers a GET with a page: from the access matrix (itself checked
    against the URL conf), without the POST-only actions and NOT_PAGES."""
    post_only = {name for name, (get, _post) in RULES.items() if set(get.values()) == {405}}
    return set(RULES) - post_only - set(NOT_PAGES)


AXE_SCRIPT = """async (exclusions) => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  const excluded = (id, node) => {
    const element = document.querySelector(node.target[0]);
    return element && exclusions.some(([rule, selector]) => rule === id && element.matches(selector));
  };
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    targets: v.nodes.filter(n => !excluded(v.id, n)).map(n => n.target.join(' ')),
  })).filter(v => v.targets.length).map(v => ({...v, targets: v.targets.slice(0, 6)}));
}"""

# Every element the keyboard can reach, focused in turn after one real Tab (so that Chromium
# treats the later focus() calls as keyboard focus and applies :focus-visible): each must show a
# visible outline or shadow. Elements not rendered (hidden, display: none) are skipped.
FOCUS_SCRIPT = """() => {
  const selector = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), ' +
    'select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
  const problems = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.closest('[hidden], [inert]') || el.getClientRects().length === 0) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    el.focus();
    if (document.activeElement !== el) continue;
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
      && style.outlineColor !== 'rgba(0, 0, 0, 0)';
    const shadow = style.boxShadow && style.boxShadow !== 'none';
    if (!el.matches(':focus-visible') || !(outline || shadow)) {
      problems.push(el.outerHTML.slice(0, 120));
    }
  }
  document.activeElement && document.activeElement.blur();
  return problems;
}"""

# Status badges and pills: words, not only a colour.
BADGE_SCRIPT = """() => [...document.querySelectorAll('.badge, .pill, [class*="badge-"]')]
  .filter(el => el.getClientRects().length && !el.innerText.trim()).map(el => el.outerHTML.slice(0, 120))"""

# At phone width: the page is no wider than the screen, and nothing sticks out of its card (a
# table that scrolls inside its .table-wrap is fine).
OVERFLOW_SCRIPT = """() => {
  const width = document.documentElement.clientWidth;
  const describe = el => el.outerHTML.slice(0, 100);
  const visible = el => el.getBoundingClientRect().width > 1 && !el.closest('.table-wrap, .visually-hidden');
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => visible(el) && el.getBoundingClientRect().right > width + 1);
  const outside = [...document.querySelectorAll('.card *')].filter(el => {
    if (!visible(el)) return false;
    const card = el.closest('.card').getBoundingClientRect();
    return el.getBoundingClientRect().right > card.right + 0.5;
  });
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 3).map(describe),
          outside: outside.slice(0, 3).map(describe)};
}"""


def page_name(url: str) -> str:
    try:
        return resolve(urlparse(url).path).view_name
    except Resolver404:
        return "404"


class Walk:
    """Checks each page it is shown and collects every problem, so one run reports them all."""

    def __init__(self, chromium, live_server):
        self.chromium = chromium
        self.base_url = live_server.url
        self.covered: set[str] = set()
        self.problems: list[str] = []
        self.contexts = []

    def open(self, email: str | None = None, password: str = DEMO_PASSWORD):
        # axe is injected as an inline script, which the pages' CSP forbids: this context (and
        # only this one) bypasses CSP. The CSP itself is tested in test_security_headers.py.
        context = self.chromium.new_context(base_url=self.base_url, viewport=DESKTOP, locale="en-US", bypass_csp=True)
        context.add_init_script(path=str(AXE))
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        if email:
            browser_login(page, email, password)
        return page

    def close(self):
        for context in self.contexts:
            context.close()

    def _language(self, page, code: str) -> None:
        page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": code, "url": self.base_url}])

    def check(self, page, shot: str, *, languages=("en", "nl"), admin: bool = False) -> None:
        """The page as loaded (in English): axe, focus, badges; then, per language, screenshots at
        1280 and 390 px and the phone-width check. `languages=("en",)` for a page that answers a
        POST (a reload would post again)."""
        where = f"{shot} ({urlparse(page.url).path})"
        self.covered.add(page_name(page.url))
        exclusions = [[rule, selector] for rule, selector, _why in ADMIN_EXCLUSIONS] if admin else []
        for v in page.evaluate(AXE_SCRIPT, exclusions):
            self.problems.append(f"{where}: axe {v['id']} ({v['impact']}) {v['help']} {v['url']}\n    {v['targets']}")
        page.keyboard.press("Tab")
        for element in page.evaluate(FOCUS_SCRIPT):
            self.problems.append(f"{where}: no visible focus on {element}")
        for element in page.evaluate(BADGE_SCRIPT):
            self.problems.append(f"{where}: a badge without words: {element}")
        for language in languages:
            if language != "en":
                self._language(page, language)
                page.reload()
            screenshot(page, f"a11y-{shot}-{language}-1280")
            page.set_viewport_size(PHONE)
            screenshot(page, f"a11y-{shot}-{language}-390")
            if not admin:  # Django admin scrolls its own wide tables sideways
                fit = page.evaluate(OVERFLOW_SCRIPT)
                if fit["scroll"] > fit["width"]:
                    self.problems.append(
                        f"{where} [{language}]: {fit['scroll']} px wide on a {fit['width']} px phone: {fit['wide']}"
                    )
                if fit["outside"]:
                    self.problems.append(f"{where} [{language}]: sticks out of its card at 390 px: {fit['outside']}")
            page.set_viewport_size(DESKTOP)
        if languages != ("en",):  # the next page opens in English; this one stays as it is
            self._language(page, "en")

    def visit(self, page, url: str, shot: str, **options) -> None:
        page.goto(url)
        self.check(page, shot, **options)


MAIN = ("en", "nl", "it")  # the main billing pages, in Italian too


@pytest.fixture
def demo(transactional_db, stripe_fake):
    """The demo data (every subscription state), the default retention offers and the permission
    groups (a transactional test starts from an empty database), plus the states seed_demo lacks."""
    need(AXE.exists(), f"axe-core ({AXE}; run `make test` or `npm ci --prefix tools/axe`)")
    importlib.import_module("retention.migrations.0002_seed_default_offers").seed(apps, None)
    call_command("seed_demo", stdout=StringIO())
    now = clock.now()
    prices = {(p.plan.code, p.cycle): p for p in Price.objects.select_related("plan")}
    active = Account.objects.get(name="Active Agency")
    owner = User.objects.get(email="active@demo.test")
    invitation = Invitation.objects.create(
        account=active,
        email="new.colleague@example.com",
        role=Membership.BILLING_ADMIN,
        invited_by=owner,
        expires_at=now + timedelta(days=7),
    )
    job = ExportJob.objects.create(account=active, requested_by=owner, created_at=now, updated_at=now)
    # A renewal the bank wants authenticated (SCA), and a new account that has not paid yet.
    sca_owner, account = owner_with_account(name="Bakkerij Bolder")
    give_card(account)
    sub = services.subscription_start(
        account=account, price=prices[("pro", lifecycle.MONTHLY)], actor=sca_owner, now=now - timedelta(days=20)
    )
    give_saved_card_number(account, AUTHENTICATION_CARD)
    services.subscription_process_due(subscription_id=sub.pk, now=sub.trial_end)
    sca_payment = Payment.objects.get(invoice__subscription=sub, status=Payment.REQUIRES_ACTION)
    newcomer = User.objects.create_user("newcomer@demo.test", DEMO_PASSWORD, name="Nieuwe Klant")
    new_account = Account.objects.create(name="Nieuwe Onderneming", billing_email=newcomer.email)
    Membership.objects.create(account=new_account, user=newcomer, role=Membership.OWNER)
    return {
        "prices": prices,
        "invitation_token": tokens.invitation_token_make(invitation_id=invitation.pk),
        "export_job": job,
        "active_owner": owner,
        "sca_owner": sca_owner,
        "sca_invoice": sca_payment.invoice_id,
    }


@pytest.mark.long
def test_every_page_in_every_state_passes_axe_fits_a_phone_and_shows_focus(chromium, live_server, demo):
    walk = Walk(chromium, live_server)
    prices = demo["prices"]
    pro, business = prices[("pro", lifecycle.MONTHLY)], prices[("business", lifecycle.MONTHLY)]
    try:
        _visitor(walk, demo, pro)
        _active_owner(walk, demo, pro)
        _other_states(walk, demo, pro, business)
        _operator(walk)
    finally:
        walk.close()
    missing = sorted(portal_pages() - walk.covered)
    if missing:
        walk.problems.append(f"pages without an accessibility check (add them to the walk): {missing}")
    assert not walk.problems, f"{len(walk.problems)} problems:\n" + "\n".join(walk.problems)


def _visitor(walk: Walk, demo, pro) -> None:
    page = walk.open()
    walk.visit(page, "/", "home", languages=MAIN)
    assert "Supporto prioritario" in page.inner_text("main")  # features in the page's language (it, last)
    walk.visit(page, "/pricing/?cycle=annual", "pricing-annual")
    walk.visit(page, "/pricing/?cycle=annual_commitment_monthly", "pricing-commitment")
    walk.visit(page, f"/accounts/signup/?price={pro.pk}", "signup", languages=MAIN)
    assert "10 progetti" in page.inner_text("main")
    page.fill("#id_email", "new.customer@example.com")
    page.fill("#id_password", "short")
    page.fill("#id_account_name", "Bakkerij Bolder")
    page.click("main button[type=submit]")
    page.wait_for_selector(".field-errors")
    walk.check(page, "signup-errors", languages=("en",))
    walk.visit(page, "/accounts/login/", "login")
    page.fill("#id_username", "active@demo.test")
    page.fill("#id_password", "not-the-password")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    walk.check(page, "login-error", languages=("en",))
    walk.visit(page, "/accounts/password-reset/", "password-reset")
    page.fill("#id_email", "active@demo.test")
    page.click("main button[type=submit]")
    page.wait_for_url("**/password-reset/sent/")
    walk.check(page, "password-reset-sent")
    walk.visit(page, "/accounts/reset/MQ/set-password/", "password-reset-bad-link")
    owner = demo["active_owner"]
    uid = urlsafe_base64_encode(force_bytes(owner.pk))
    page.goto(f"/accounts/reset/{uid}/{default_token_generator.make_token(owner)}/")
    page.wait_for_url("**/set-password/")
    walk.check(page, "password-reset-form")
    walk.visit(page, "/accounts/reset/done/", "password-reset-done")
    walk.visit(page, "/accounts/verify/not-a-valid-token/", "verify-bad-link")
    walk.visit(page, f"/accounts/invitation/{demo['invitation_token']}/", "invitation")
    walk.visit(page, "/accounts/invitation/not-a-valid-token/", "invitation-bad-link")
    walk.visit(page, "/account/deleted/", "account-deleted")
    walk.visit(page, "/no-such-page/", "404")


def _active_owner(walk: Walk, demo, pro) -> None:
    """Business monthly, renewing, with a member and an open invitation; ends with the
    cancellation flow, which changes the state."""
    prices = demo["prices"]
    page = walk.open("active@demo.test")
    walk.visit(page, "/billing/", "billing-active", languages=MAIN)
    walk.visit(page, "/billing/plans/", "plans", languages=MAIN)
    walk.visit(page, f"/billing/plans/{pro.pk}/", "change-downgrade-forfeit", languages=MAIN)
    walk.visit(page, f"/billing/plans/{prices[('business', lifecycle.ANNUAL)].pk}/", "change-to-annual")
    walk.visit(page, f"/billing/plans/{prices[('free', lifecycle.MONTHLY)].pk}/", "change-to-free")
    walk.visit(page, "/billing/pause/", "pause", languages=MAIN)
    walk.visit(page, "/billing/card/", "card", languages=MAIN)
    walk.visit(page, "/billing/invoices/", "invoices", languages=MAIN)
    invoice = Invoice.objects.filter(account__name="Active Agency").order_by("-pk").first()
    walk.visit(page, f"/billing/invoices/{invoice.pk}/", "invoice", languages=MAIN)
    walk.visit(page, "/pricing/", "pricing-customer")
    walk.visit(page, "/accounts/team/", "team")
    walk.visit(page, "/account/", "account", languages=MAIN)
    walk.visit(page, f"/account/export/{demo['export_job'].pk}/", "export-progress")
    walk.visit(page, "/account/delete/", "delete")
    walk.visit(page, "/accounts/confirm-password/", "reauthenticate")

    walk.visit(page, "/billing/cancel/", "cancel-1-reason", languages=MAIN)
    page.locator("#skip-to-cancel").click()  # nothing chosen: the form says so or skips
    page.wait_for_load_state()
    page.goto("/billing/cancel/")
    page.locator("label[for=id_reason_1]").click()  # missing features: a 1:1 session
    page.click("#continue")
    page.wait_for_selector("#accept-offer")
    walk.check(page, "cancel-2-offer-session")
    page.click("#keep-subscription")
    page.wait_for_url("**/kept/")
    walk.check(page, "cancel-kept")
    page.goto("/billing/cancel/")
    page.locator("label[for=id_reason_0]").click()  # too expensive: a discount
    page.click("#continue")
    page.wait_for_selector("#accept-offer")
    walk.check(page, "cancel-2-offer-discount", languages=MAIN)
    page.click("#skip-to-cancel")
    page.wait_for_selector("#confirm-cancel")
    walk.check(page, "cancel-3-before-you-go", languages=MAIN)
    page.click("#confirm-cancel")
    page.wait_for_selector("#undo-cancel")
    walk.check(page, "cancel-4-canceled", languages=MAIN)


def _other_states(walk: Walk, demo, pro, business) -> None:
    for state in ("trialing", "canceling", "past_due", "paused", "canceled"):
        page = walk.open(f"{state}@demo.test")
        walk.visit(page, "/billing/", f"billing-{state}", languages=MAIN)
        walk.visit(page, "/billing/cancel/", f"cancel-1-{state}")
        if state == "trialing":
            walk.visit(page, f"/billing/plans/{business.pk}/", "change-in-trial")
            walk.visit(page, "/billing/card/", "card-trial-without-card")
        if state == "past_due":
            walk.visit(page, "/billing/card/", "card-past-due")
            walk.visit(page, "/billing/invoices/", "invoices-past-due")
            invoice = Invoice.objects.get(account__name="Past Due Partners", status=Invoice.OPEN)
            walk.visit(page, f"/billing/invoices/{invoice.pk}/", "invoice-open")
            walk.visit(page, "/account/delete/", "delete-blocked")
        if state == "paused":
            walk.visit(page, "/billing/plans/", "plans-paused")
        if state == "canceled":
            walk.visit(page, f"/billing/subscribe/{pro.pk}/", "subscribe-again", languages=MAIN)

    page = walk.open("member@demo.test")
    walk.visit(page, "/billing/", "billing-member", languages=MAIN)
    walk.visit(page, "/billing/plans/", "member-forbidden")
    walk.visit(page, "/accounts/team/", "team-forbidden")
    walk.visit(page, "/account/", "account-member")
    walk.visit(page, "/account/delete/", "delete-forbidden")

    page = walk.open(demo["sca_owner"].email, PASSWORD)
    walk.visit(page, "/billing/", "billing-authentication-needed")
    walk.visit(page, f"/billing/pay/{demo['sca_invoice']}/authenticate/", "payment-authenticate", languages=MAIN)

    page = walk.open("newcomer@demo.test")
    walk.visit(page, "/billing/", "billing-no-subscription")
    Plan.objects.filter(code="pro").update(trial_days=0)  # the pay step is for plans without a trial
    walk.visit(page, f"/accounts/signup/pay/{pro.pk}/", "signup-pay-unverified")
    walk.visit(page, f"/billing/subscribe/{pro.pk}/", "subscribe-unverified")
    User.objects.filter(email="newcomer@demo.test").update(email_verified_at=clock.now())
    walk.visit(page, f"/accounts/signup/pay/{pro.pk}/", "signup-pay", languages=MAIN)
    Plan.objects.filter(code="pro").update(trial_days=14)


def _operator(walk: Walk) -> None:
    page = walk.open("admin@demo.test")
    walk.visit(page, "/billing/", "billing-operator")
    walk.visit(page, "/admin/", "admin-index", admin=True)
    walk.visit(page, "/admin/billing/dashboard/", "admin-dashboard", admin=True)
    walk.visit(page, "/admin/billing/reconciliation/", "admin-reconciliation-empty", admin=True)
    page.click("main form[action$='/start/'] button")  # Check now
    page.wait_for_url("**/admin/billing/reconciliation/")
    walk.check(page, "admin-reconciliation", admin=True)
    walk.visit(page, "/admin/subscriptions/subscription/", "admin-subscriptions", admin=True)
    sub = Subscription.objects.get(account__name="Active Agency")
    walk.visit(page, f"/admin/subscriptions/subscription/{sub.pk}/change/", "admin-subscription", admin=True)
    page.click(".billing-action-change_price")
    page.wait_for_load_state()
    walk.check(page, "admin-change-price", admin=True, languages=("en",))
    sub = Subscription.objects.get(account__name="Trial Studio")
    walk.visit(page, f"/admin/subscriptions/subscription/{sub.pk}/change/", "admin-subscription-trial", admin=True)
    page.click(".billing-action-extend_trial")
    page.wait_for_load_state()
    walk.check(page, "admin-extend-trial", admin=True, languages=("en",))
    payment = Payment.objects.filter(status=Payment.SUCCEEDED).first()
    walk.visit(page, f"/admin/subscriptions/payment/{payment.pk}/change/", "admin-payment", admin=True)
    page.click(".billing-action-refund")
    page.wait_for_load_state()
    walk.check(page, "admin-refund", admin=True, languages=("en",))
    walk.visit(page, f"/admin/subscriptions/invoice/{payment.invoice_id}/change/", "admin-invoice", admin=True)
    account = Account.objects.get(name="Active Agency")
    walk.visit(page, f"/admin/accounts/account/{account.pk}/change/", "admin-account", admin=True)
    walk.visit(page, "/admin/retention/cancellationflow/report/", "admin-retention-figures", admin=True)
    for model in ("accounts/account", "subscriptions/invoice", "subscriptions/payment", "retention/cancellationflow"):
        walk.visit(page, f"/admin/{model}/", f"admin-{model.split('/')[1]}-list", admin=True)


# --- Keyboard only ---------------------------------------------------------------------------

NAME_SCRIPT = """() => { const el = document.activeElement;
  const label = el.labels && el.labels.length ? el.labels[0].innerText : '';
  return (el.getAttribute('aria-label') || label || el.innerText || el.value || el.placeholder || '').trim(); }"""
VISIBLE_FOCUS_SCRIPT = """() => { const s = getComputedStyle(document.activeElement);
  if (document.activeElement === document.body) return true;  // between the page and the browser's own UI
  return document.activeElement.matches(':focus-visible') &&
    ((s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || (s.boxShadow && s.boxShadow !== 'none')); }"""


def tab_to(page, name: str | re.Pattern, *, limit: int = 80) -> None:
    """Press Tab until the focused element's accessible name matches; each element passed on the
    way must show its focus."""
    pattern = name if isinstance(name, re.Pattern) else re.compile(rf"^{re.escape(name)}$")
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        current = page.evaluate(NAME_SCRIPT)
        seen.append(current)
        assert page.evaluate(VISIBLE_FOCUS_SCRIPT), f"no visible focus on {current!r} ({page.url})"
        if pattern.search(current):
            return
    raise AssertionError(f"Tab never reached {pattern.pattern!r} on {page.url}; passed {seen}")


def keyboard_login(page, email: str) -> None:
    page.goto("/accounts/login/")
    tab_to(page, "Email address")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing/")


@pytest.fixture
def keyboard_customer(transactional_db, stripe_fake):
    """An owner on Pro monthly (a trial that ended six days ago, paid), with a card, and the demo
    plans to move to."""
    importlib.import_module("retention.migrations.0002_seed_default_offers").seed(apps, None)
    seeded = SeedDemo()._plans()  # the demo plans, without the demo accounts
    prices = {(code, cycle): price for code, by_cycle in seeded.items() for cycle, price in by_cycle.items()}
    owner, account = owner_with_account(name="Toetsenbord Verzekeringen")
    give_card(account)
    sub = services.subscription_start(
        account=account, price=prices[("pro", lifecycle.MONTHLY)], actor=owner, now=clock.now() - timedelta(days=20)
    )
    services.subscription_process_due(subscription_id=sub.pk, now=sub.trial_end)  # paid since the trial ended
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    return owner, account, sub, prices


def test_a_plan_change_with_the_keyboard_only(browser_page, keyboard_customer):
    page = browser_page
    owner, account, sub, prices = keyboard_customer
    keyboard_login(page, owner.email)
    tab_to(page, "Change plan")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Choose a plan")).to_be_visible()
    tab_to(page, "Choose Business, Monthly")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Review your change")).to_be_visible()
    tab_to(page, re.compile("^Confirm and pay"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("You are now on Business (monthly).")).to_be_visible()
    sub.refresh_from_db()
    assert sub.price == prices[("business", lifecycle.MONTHLY)]


def test_a_pause_with_the_keyboard_only(browser_page, keyboard_customer):
    page = browser_page
    owner, account, sub, _prices = keyboard_customer
    keyboard_login(page, owner.email)
    tab_to(page, "Pause")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Pause your subscription")).to_be_visible()
    tab_to(page, re.compile(r"^1 month"))  # the radio group: arrows move the choice
    page.keyboard.press("ArrowDown")
    assert page.get_by_role("radio", name=re.compile(r"2 months")).is_checked()
    tab_to(page, "Pause subscription")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your subscription is paused until")).to_be_visible()
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAUSED
    assert sub.resume_at > clock.now() + timedelta(days=58)  # two months, not one


def test_a_cancellation_with_the_keyboard_only(browser_page, keyboard_customer):
    page = browser_page
    owner, account, sub, _prices = keyboard_customer
    keyboard_login(page, owner.email)
    tab_to(page, "Cancel subscription")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Why are you leaving?")).to_be_visible()
    tab_to(page, "It is too expensive")  # the first reason (a radio)
    page.keyboard.press("Space")
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    page.wait_for_selector("#accept-offer")
    tab_to(page, re.compile("^Skip, continue to cancel"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-cancel")
    tab_to(page, re.compile("^Cancel my subscription on"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#undo-cancel")
    sub.refresh_from_db()
    assert sub.cancel_at == sub.current_period_end


def test_a_card_update_with_the_keyboard_only(browser_page, keyboard_customer):
    """localstripe's Card Element is plain inputs in the page (Stripe's real one is an iframe,
    which the keyboard also enters with Tab)."""
    page = browser_page
    owner, account, _sub, _prices = keyboard_customer
    keyboard_login(page, owner.email)
    tab_to(page, re.compile("^(Update card|Change card|Update|Add a card)"))
    page.keyboard.press("Enter")
    expect(page.locator("#card-element input")).to_have_count(5)
    # A Visa debit card (last four 5556). Like Stripe's, the element may move on by itself once a
    # field is complete, so each field is reached with Tab only when it is not focused already.
    for field, value in (("number", "4000056655665556"), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123")):
        if page.evaluate(NAME_SCRIPT) != field:
            tab_to(page, field)
        page.keyboard.type(value)
    tab_to(page, "Save card")
    page.keyboard.press("Enter")
    expect(page.get_by_text("card ending in 5556 is now your default payment method")).to_be_visible()
    account.refresh_from_db()
    assert account.card_last4 == "5556"


def test_badges_say_the_status_in_words(browser_page, demo):
    """Each status badge on the billing page has its word, not only its colour."""
    expected = {
        "trialing": "Trial",
        "active": "Active",
        "canceling": "Canceling",
        "past_due": "Past due",
        "paused": "Paused",
        "canceled": "Canceled",
    }
    page = browser_page
    for state, word in expected.items():
        page.context.clear_cookies()
        browser_login(page, f"{state}@demo.test", DEMO_PASSWORD)
        expect(page.locator(f".badge-{state}").first).to_have_text(word)


def test_every_portal_page_is_in_the_walk():
    """The walk above must reach each page of the URL conf; the list comes from the access matrix."""
    pages = portal_pages()
    assert "subscriptions:billing" in pages and "subscriptions:pay-now" not in pages
    assert set(NOT_PAGES) <= set(RULES), "NOT_PAGES names a view that is gone"
