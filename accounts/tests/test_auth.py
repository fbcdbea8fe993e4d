"""Email login, logout, password reset, and each user reaching only their own account."""

import re

import pytest
from django.core import mail

from subscriptions.tests.factories import PASSWORD, UserFactory, owner_with_account

pytestmark = pytest.mark.django_db


def test_login_by_email_lands_on_the_billing_page(client):
    owner, account = owner_with_account(name="Acme Rockets")
    response = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/billing/"
    assert "Acme Rockets" in response.content.decode()


def test_wrong_password_is_refused_with_a_message(client):
    owner, _account = owner_with_account()
    response = client.post("/accounts/login/", {"username": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert "Please try again" in response.content.decode()


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/billing/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_logout_needs_post_and_ends_the_session(client):
    owner, _account = owner_with_account()
    client.force_login(owner)
    assert client.get("/accounts/logout/").status_code == 405
    client.post("/accounts/logout/")
    assert client.get("/billing/").status_code == 302


def test_password_reset_does_not_reveal_whether_an_email_exists(client):
    owner, _account = owner_with_account()
    known = client.post("/accounts/password-reset/", {"email": owner.email}, follow=True)
    unknown = client.post("/accounts/password-reset/", {"email": "nobody@example.com"}, follow=True)
    without_tokens = [re.sub(rb'value="[^"]{40,}"', b"", page.content) for page in (known, unknown)]
    assert without_tokens[0] == without_tokens[1]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.email]


def test_each_user_sees_only_their_own_account(client):
    owner, account = owner_with_account(name="Mine Ltd")
    _other_owner, _other = owner_with_account(name="Theirs Ltd")
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert "Mine Ltd" in page
    assert "Theirs Ltd" not in page


def test_a_user_without_an_account_is_told_so(client):
    client.force_login(UserFactory())
    assert "not part of any account" in client.get("/billing/").content.decode()
