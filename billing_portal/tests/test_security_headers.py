"""Security headers on every page, and login throttling."""

import pytest

from subscriptions.tests.factories import PASSWORD, owner_with_account

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/password-reset/"])
def test_pages_send_a_strict_csp_and_frame_and_referrer_headers(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_logged_in_pages_have_the_csp_too(client):
    owner, _account = owner_with_account()
    client.force_login(owner)
    assert "script-src 'self'" in client.get("/billing/")["Content-Security-Policy"]


def test_login_is_locked_after_five_failures_with_a_clear_message(client, login_throttling):
    owner, _account = owner_with_account()
    for _ in range(5):
        client.post("/accounts/login/", {"username": owner.email, "password": "wrong"})
    response = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_good_password_before_the_limit_logs_in(client, login_throttling):
    owner, _account = owner_with_account()
    for _ in range(3):
        client.post("/accounts/login/", {"username": owner.email, "password": "wrong"})
    response = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302
