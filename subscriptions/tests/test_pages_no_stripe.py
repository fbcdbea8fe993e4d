"""Page views never call Stripe: what they show (the card, the invoices) is kept in our database.

bench/pages.py checks the same under load, with Stripe's address pointing at a trap.
"""

from datetime import timedelta

import pytest
import time_machine

from subscriptions import gateway

from .factories import DECLINING_CARD
from .pages import past_due, subscribed

pytestmark = pytest.mark.django_db

PAGES = ["/billing/", "/billing/plans/", "/billing/invoices/"]


def refuse_stripe(monkeypatch) -> list:
    """From now on, record and refuse every use of the Stripe SDK (all of it goes through
    gateway.client(), and every request through gateway._call)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError("a page view called Stripe")

    monkeypatch.setattr(gateway, "client", refuse)
    monkeypatch.setattr(gateway, "_call", refuse)
    return calls


def test_the_billing_page_plan_picker_and_invoice_list_make_no_stripe_call(
    client, plans, stripe_fake, frozen, monkeypatch
):
    owner, account, sub = subscribed(plans["pro"]["monthly"])  # a customer and a card, through localstripe
    calls = refuse_stripe(monkeypatch)
    client.force_login(owner)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
    assert calls == []


def test_a_past_due_account_sees_its_pages_without_a_stripe_call(client, plans, stripe_fake, monkeypatch):
    owner, account, sub = past_due(plans["pro"]["monthly"], card_number=DECLINING_CARD)
    calls = refuse_stripe(monkeypatch)
    client.force_login(owner)
    with time_machine.travel(sub.current_period_end + timedelta(hours=2), tick=False):
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200, path
        assert b"Past due" in client.get("/billing/").content
    assert calls == []
