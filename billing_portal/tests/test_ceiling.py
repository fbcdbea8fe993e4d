"""The benchmark's ceiling page exists only when BENCH_CEILING_VIEW is set (bench/pages.py)."""

import importlib

import pytest
from django.urls import Resolver404, clear_url_caches, resolve

from billing_portal import urls
from subscriptions.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ceiling_setting(settings):
    """Rebuild the URL conf with BENCH_CEILING_VIEW as the test sets it, and as it was afterwards."""
    original = settings.BENCH_CEILING_VIEW

    def rebuild(enabled: bool) -> None:
        settings.BENCH_CEILING_VIEW = enabled
        importlib.reload(urls)
        clear_url_caches()

    yield rebuild
    rebuild(original)


def test_the_ceiling_page_does_not_exist_by_default(client, ceiling_setting):
    ceiling_setting(False)
    with pytest.raises(Resolver404):
        resolve("/bench/ceiling/")
    client.force_login(UserFactory())
    assert client.get("/bench/ceiling/").status_code == 404


def test_the_ceiling_page_answers_a_logged_in_user_when_enabled(client, ceiling_setting):
    ceiling_setting(True)
    assert client.get("/bench/ceiling/").status_code == 302  # anonymous: to the login page
    user = UserFactory()
    client.force_login(user)
    response = client.get("/bench/ceiling/")
    assert response.status_code == 200
    assert response.content.decode() == f"ceiling user={user.pk}"
    assert response["Content-Security-Policy"]  # through the same middleware as every page
