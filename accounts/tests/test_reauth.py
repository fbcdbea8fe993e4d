"""Re-entering the password before card changes and the final cancellation step."""

from datetime import timedelta

import pytest
import time_machine

from billing_portal.lib import clock
from subscriptions import lifecycle, services
from subscriptions.tests.factories import PASSWORD, PlanFactory, PriceFactory, owner_with_account

pytestmark = pytest.mark.django_db


def logged_in_16_minutes_ago(client):
    owner, account = owner_with_account()
    with time_machine.travel(clock.now() - timedelta(minutes=16), tick=False):
        client.force_login(owner)
    return owner, account


def test_a_fresh_login_reaches_the_card_page_without_a_password_prompt(client, stripe_fake):
    owner, _account = owner_with_account()
    client.force_login(owner)
    assert client.get("/billing/card/").status_code == 200


def test_an_old_login_must_re_enter_the_password_before_the_card_page(client, stripe_fake):
    logged_in_16_minutes_ago(client)
    response = client.get("/billing/card/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-password/?next=%2Fbilling%2Fcard%2F"
    wrong = client.post("/accounts/confirm-password/", {"password": "nope", "next": "/billing/card/"})
    assert "not your password" in wrong.content.decode()
    assert client.get("/billing/card/").status_code == 302
    right = client.post("/accounts/confirm-password/", {"password": PASSWORD, "next": "/billing/card/"})
    assert right["Location"] == "/billing/card/"
    assert client.get("/billing/card/").status_code == 200


def test_a_stale_card_finish_post_changes_nothing_and_returns_to_the_card_page(client, stripe_fake):
    _owner, account = logged_in_16_minutes_ago(client)
    response = client.post("/billing/card/finish/", {"setup_intent": "seti_123"})
    assert response["Location"] == "/accounts/confirm-password/?next=%2Fbilling%2Fcard%2F"
    account.refresh_from_db()
    assert account.payment_method_id == ""


def test_an_old_login_must_re_enter_the_password_before_confirming_a_cancellation(client, stripe_fake):
    owner, account = logged_in_16_minutes_ago(client)
    sub = services.subscription_start(
        account=account, price=PriceFactory(amount_minor=0, plan=PlanFactory()), actor=owner
    )
    start = client.post("/billing/cancel/", {"reason": "other"})
    flow_url = start["Location"]
    flow_id = int(flow_url.strip("/").split("/")[2])
    review = client.get(f"/billing/cancel/{flow_id}/before-you-go/")
    assert review["Location"].startswith("/accounts/confirm-password/")
    confirm = client.post(f"/billing/cancel/{flow_id}/confirm/")
    assert confirm["Location"] == f"/accounts/confirm-password/?next=%2Fbilling%2Fcancel%2F{flow_id}%2Fbefore-you-go%2F"
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_at) == (lifecycle.ACTIVE, None)


def test_the_password_page_never_redirects_to_another_site(client):
    owner, _account = owner_with_account()
    client.force_login(owner)
    response = client.post("/accounts/confirm-password/", {"password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/billing/"
