"""The billing page's cache (subscriptions/page_cache.py): served again while nothing it shows
changed, drawn anew the moment anything did, whoever changed it and however."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Membership, User
from subscriptions.models import CreditEntry, Invoice, Payment, Plan, Price, Subscription, SubscriptionEvent

from .pages import NOW, past_due, subscribed, teammate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uses_postgres")]


@pytest.fixture
def served_from_cache(settings):
    """Hits are served as stored (the suite's check draws every hit again, which would hide them)."""
    settings.BILLING_PAGE_CACHE_CHECK = False


def _page(client) -> str:
    return _page_of(client.get("/billing/"))


def _page_of(response) -> str:
    """The billing page, without its CSRF tokens (masked anew for every response)."""
    assert response.status_code == 200
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "csrf", response.content.decode())


def test_a_second_view_is_served_from_the_cache_with_one_query_for_the_fingerprint(
    client, plans, stripe_fake, frozen, served_from_cache
):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    first = _page(client)
    with CaptureQueriesContext(connection) as drawn_again:
        second = _page(client)
    assert second == first
    fingerprint_queries = [q["sql"] for q in drawn_again.captured_queries if "billing_page_fingerprint" in q["sql"]]
    page_queries = [q["sql"] for q in drawn_again.captured_queries if q["sql"] not in fingerprint_queries]
    assert fingerprint_queries == [f"EXECUTE billing_page_fingerprint({account.pk}, {owner.pk})"]
    # What is left is the request's own: session, user, membership; none of the page's.
    assert not any("subscriptions_" in sql for sql in page_queries), page_queries


# Each change is made the way that skips Django's signals and save(): a queryset update, a raw
# create or a delete. The page must show it on the next view all the same.
CHANGES = [
    (
        "the card on the account",
        lambda ctx: Account.objects.filter(pk=ctx["account"].pk).update(card_last4="1881"),
        "···· 1881",
    ),
    (
        "a credit entry",
        lambda ctx: CreditEntry.objects.create(
            account=ctx["account"], amount_minor=1234, currency="eur", kind=CreditEntry.GRANT, created_at=NOW
        ),
        "€12.34",
    ),
    (
        "an invoice's status",
        lambda ctx: Invoice.objects.filter(account=ctx["account"]).update(status=Invoice.VOID),
        "badge-invoice-void",
    ),
    (
        "the plan's name",
        lambda ctx: Plan.objects.filter(pk=ctx["sub"].price.plan_id).update(name="Pro Deluxe"),
        "Pro Deluxe",
    ),
    (
        "the subscription",
        lambda ctx: Subscription.objects.filter(pk=ctx["sub"].pk).update(cancel_at=NOW + timedelta(days=15)),
        "Undo cancellation",
    ),
    (
        "an audit event",
        lambda ctx: SubscriptionEvent.objects.create(
            subscription=ctx["sub"],
            kind="credit_granted",
            actor_kind=SubscriptionEvent.OPERATOR,
            data={"amount_minor": 777, "currency": "eur"},
            created_at=NOW,
        ),
        "Support team",
    ),
    (
        "the user's email verification",
        lambda ctx: User.objects.filter(pk=ctx["owner"].pk).update(email_verified_at=None),
        'data-testid="verify-notice"',
    ),
    (
        "the user's role",
        lambda ctx: Membership.objects.filter(user=ctx["owner"]).update(role=Membership.MEMBER),
        "only these people can change",
    ),
    (
        "a price of the catalogue",
        lambda ctx: (
            Price.objects.filter(plan=ctx["sub"].price.plan_id, cycle="annual").update(is_active=False),
            Price.objects.filter(pk=ctx["sub"].price_id).update(cycle="annual"),
        ),
        "Annual",
    ),
    (
        "a deleted credit entry",
        lambda ctx: CreditEntry.objects.filter(account=ctx["account"]).delete(),
        "€0.00",
    ),
]


@pytest.mark.parametrize("what, change, shown", CHANGES, ids=[c[0] for c in CHANGES])
def test_any_change_to_what_the_summary_shows_is_on_the_next_view(
    client, plans, stripe_fake, frozen, served_from_cache, what, change, shown
):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    if what == "a deleted credit entry":
        CreditEntry.objects.create(
            account=account, amount_minor=500, currency="eur", kind=CreditEntry.GRANT, created_at=NOW
        )
    client.force_login(owner)
    before = _page(client)
    assert _page(client) == before  # now cached
    assert shown not in before
    change({"owner": owner, "account": account, "sub": sub})
    assert shown in _page(client)


def test_a_payment_attempt_changed_behind_the_pages_back_is_shown(client, plans, stripe_fake, served_from_cache):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number="4000000000000341")
    with time_machine.travel(sub.past_due_since + timedelta(days=1), tick=False):
        client.force_login(owner)
        before = _page(client)
        Payment.objects.filter(invoice__account=account).update(failure_code="stolen_card")
        assert "the card is blocked" not in before
        assert "the card is blocked" in _page(client)


def test_each_browser_gets_its_own_csrf_token_in_a_cached_page(plans, stripe_fake, frozen, served_from_cache):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    Subscription.objects.filter(pk=sub.pk).update(cancel_at=NOW + timedelta(days=15))
    laptop, phone = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    for browser in (laptop, phone):
        browser.force_login(owner)
    laptop.get("/billing/")
    phone_page = phone.get("/billing/").content.decode()  # served from the cache the laptop filled
    undo_form = phone_page.split('action="/billing/undo-cancel/"')[1]
    token = undo_form.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = phone.post("/billing/undo-cancel/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Subscription.objects.get(pk=sub.pk).cancel_at is None


def test_messages_languages_and_people_are_never_mixed_up(client, plans, stripe_fake, frozen, served_from_cache):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    member = teammate(account, Membership.MEMBER)
    client.force_login(owner)
    english = _page(client)
    response = client.post("/billing/pause/", {"months": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == "/billing/"
    with_message = _page_of(response)
    assert "Done:" in with_message  # drawn and not stored: a message is shown once
    assert "Done:" not in _page(client)
    assert "Done:" not in _page(client)  # this one from the cache
    client.cookies.load({"django_language": "nl"})
    dutch = _page(client)
    assert "Betaalmethode" in dutch and "Betaalmethode" not in english
    other = Client()
    other.force_login(member)
    member_page = _page(other)
    assert "only these people can change" in member_page
    assert "Change plan" not in member_page


def test_the_page_follows_the_clock_within_a_minute(client, plans, stripe_fake, served_from_cache):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    with time_machine.travel(NOW, tick=False):
        before = _page(client)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        with CaptureQueriesContext(connection) as queries:
            assert _page(client) == before
    assert any("subscriptions_subscription" in q["sql"] for q in queries.captured_queries)  # drawn anew


def test_of_the_long_lists_only_the_rows_the_page_shows_count(client, plans, stripe_fake, frozen, served_from_cache):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    first_invoice = Invoice.objects.get(account=account)
    for n in range(1, 8):  # older paid invoices, and an audit event for each: more than either list shows
        Invoice.objects.create(
            account=account,
            subscription=sub,
            billing_reason=Invoice.CYCLE,
            price=sub.price,
            status=Invoice.PAID,
            currency="eur",
            period_start=first_invoice.period_start - timedelta(days=31 * n),
            period_end=first_invoice.period_start - timedelta(days=31 * (n - 1)),
            subtotal_minor=1900,
            amount_due_minor=1900,
            created_at=first_invoice.created_at - timedelta(days=31 * n),
            paid_at=first_invoice.created_at - timedelta(days=31 * n),
        )
        SubscriptionEvent.objects.create(
            subscription=sub,
            kind="payment_succeeded",
            actor_kind=SubscriptionEvent.JOB,
            data={"amount_minor": 1900, "price": sub.price_id},
            created_at=sub.created_at - timedelta(days=31 * n),
        )
    client.force_login(owner)
    before = _page(client)
    oldest = Invoice.objects.filter(account=account).order_by("created_at").first()
    with CaptureQueriesContext(connection) as queries:
        Invoice.objects.filter(pk=oldest.pk).update(status=Invoice.VOID)  # not on the page
        assert _page(client) == before
    assert not any("subscriptions_invoice" in q["sql"] for q in queries.captured_queries[1:])  # served
    SubscriptionEvent.objects.create(
        subscription=sub, kind="credit_granted", actor_kind=SubscriptionEvent.OPERATOR, created_at=NOW
    )
    assert "Support team" in _page(client)  # a new event enters the list at once
