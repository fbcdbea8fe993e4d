"""Invoices: the list and the printable invoice page, only for the account's billing managers."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from subscriptions import services
from subscriptions.models import CreditEntry, Invoice

from .pages import NOW, T0, subscribed, teammate

pytestmark = pytest.mark.django_db


def test_the_invoice_list_shows_number_date_amount_and_status_newest_first(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_change(subscription=sub, price=plans["business"]["monthly"], actor=owner, now=NOW)
    first, change = Invoice.objects.filter(account=account).order_by("created_at")
    client.force_login(owner)
    html = client.get("/billing/invoices/").content.decode()
    assert html.index(change.number) < html.index(first.number)
    assert "€19.00" in html and "€39.50" in html
    assert html.count(">Paid<") == 2
    assert f'href="/billing/invoices/{change.pk}/"' in html


def test_the_invoice_list_pages_through_a_long_history_in_few_queries(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    first = Invoice.objects.get(account=account)
    Invoice.objects.bulk_create(
        Invoice(
            account=account,
            subscription=None,
            billing_reason=Invoice.CYCLE,
            price=sub.price,
            status=Invoice.PAID,
            currency="eur",
            period_start=T0 - timedelta(days=31 * n),
            period_end=T0 - timedelta(days=31 * (n - 1)),
            amount_due_minor=1900,
            created_at=first.created_at - timedelta(days=31 * n),
        )
        for n in range(1, 60)
    )
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/billing/invoices/?page=2")
    assert len(response.context["page"].object_list) == 25
    assert "Page 2 of 3" in response.content.decode()
    assert len(queries) <= 6


def test_an_invoice_page_shows_its_lines_with_the_proration_credit_and_totals(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    services.subscription_change(subscription=sub, price=plans["business"]["monthly"], actor=owner, now=NOW)
    invoice = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    client.force_login(owner)
    html = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert f"Invoice {invoice.number}" in html
    assert "Plan change" in html and ">Paid<" in html
    assert "Business (Monthly)" in html and "€49.00" in html
    assert "Unused time on Pro (Monthly)" in html and "-€9.50" in html
    assert "Total paid" in html and "€39.50" in html
    assert "Paid on" in html and "April 16, 2026" in html
    assert "April 16, 2026 – May 16, 2026" in re.sub(r"<[^>]+>", "", html)  # each date kept on one line
    assert account.billing_email in html
    assert "/static/js/print.js" in html


def test_an_invoice_names_the_seller_as_it_was_when_the_invoice_was_made(client, plans, stripe_fake, frozen, settings):
    settings.INVOICE_ISSUER = "Example SaaS B.V.\nKeizersgracht 1\nVAT NL123456789B01"
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    invoice = Invoice.objects.get(account=account)
    # The company moves: new invoices name the new address, the issued one stays as it was.
    settings.INVOICE_ISSUER = "Example SaaS B.V.\nHerengracht 2\nVAT NL123456789B01"
    client.force_login(owner)
    html = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert "Issued by" in html
    assert "Example SaaS B.V.<br>Keizersgracht 1<br>VAT NL123456789B01" in html
    assert "Herengracht" not in html


def test_an_invoice_paid_partly_with_credit_shows_the_credit_applied(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    CreditEntry.objects.create(
        account=account, amount_minor=1000, currency="eur", kind=CreditEntry.GRANT, created_at=NOW
    )
    services.subscription_change(subscription=sub, price=plans["business"]["monthly"], actor=owner, now=NOW)
    invoice = Invoice.objects.get(account=account, billing_reason=Invoice.UPDATE)
    client.force_login(owner)
    html = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert "Credit balance applied" in html and "-€10.00" in html
    assert "€29.50" in html


def test_another_accounts_invoice_is_a_404(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    other_owner, other_account, other_sub = subscribed(plans["business"]["monthly"])
    foreign = Invoice.objects.get(account=other_account)
    client.force_login(owner)
    response = client.get(f"/billing/invoices/{foreign.pk}/")
    assert response.status_code == 404
    assert foreign.number not in response.content.decode()
    assert client.get("/billing/invoices/999999/").status_code == 404


@pytest.mark.parametrize("role", [Membership.OWNER, Membership.BILLING_ADMIN])
def test_owners_and_billing_admins_read_invoices(client, plans, stripe_fake, frozen, role):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner if role == Membership.OWNER else teammate(account, role))
    invoice = Invoice.objects.get(account=account)
    assert client.get("/billing/invoices/").status_code == 200
    assert client.get(f"/billing/invoices/{invoice.pk}/").status_code == 200


def test_a_member_cannot_read_invoices_and_is_told_who_can(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(teammate(account, Membership.MEMBER))
    invoice = Invoice.objects.get(account=account)
    for url in ["/billing/invoices/", f"/billing/invoices/{invoice.pk}/"]:
        response = client.get(url)
        assert response.status_code == 403
        assert owner.get_full_name() in response.content.decode()


def test_anonymous_visitors_go_to_login(client, db):
    assert client.get("/billing/invoices/")["Location"].startswith("/accounts/login/")
    assert client.get("/billing/invoices/1/")["Location"].startswith("/accounts/login/")


def test_an_invoice_in_dutch_uses_dutch_dates_and_money(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    invoice = Invoice.objects.get(account=account)
    client.force_login(owner)
    client.cookies["django_language"] = "nl"
    html = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert "€\xa019,00" in html
    assert "1 april 2026" in html
