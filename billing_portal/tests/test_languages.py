"""Which language a page or an email speaks, and money, dates and plurals in it.

Pages: the language chosen with the switcher (a cookie kept for a year), else the browser's
Accept-Language, else English. Emails: the account's language, whoever triggers them.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import translation

from accounts.models import Account, Membership
from subscriptions.templatetags.billing import money
from subscriptions.tests.factories import PASSWORD
from subscriptions.tests.pages import T0, customer, messages_of, subscribed, teammate

pytestmark = pytest.mark.django_db


def page_language(response) -> str:
    html = response.content.decode()
    return html.split('<html lang="', 1)[1].split('"', 1)[0]


def test_a_visitor_gets_the_language_of_the_browser(client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    assert page_language(response) == "fr"
    assert "Se connecter" in response.content.decode()
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="it-IT,it;q=0.9")
    assert page_language(response) == "it"
    assert "Accedi" in response.content.decode()


def test_a_browser_language_the_portal_does_not_speak_falls_back_to_english(client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert page_language(response) == "en"
    assert "Log in" in response.content.decode()


def test_the_switcher_beats_the_browser_lasts_a_year_and_says_so_in_the_new_language(client):
    response = client.post("/i18n/setlang/", {"language": "nl", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "nl"
    assert int(cookie["max-age"]) == 365 * 24 * 60 * 60
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert page_language(response) == "nl"
    assert messages_of(response) == ["De pagina's worden nu in het Nederlands getoond."]


def test_the_switcher_refuses_a_language_the_portal_does_not_speak(client):
    response = client.post("/i18n/setlang/", {"language": "de", "next": "/accounts/login/"}, follow=True)
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert page_language(response) == "en"
    assert messages_of(response) == ["Choose one of the languages offered."]
    response = client.post("/i18n/setlang/", {"language": "de", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_the_switcher_needs_a_post(client):
    assert client.get("/i18n/setlang/?language=nl").status_code == 405


def test_money_and_dates_follow_the_page_language_in_the_account_timezone(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    # The period ends on May 1 at 09:00 UTC: April 30 at 22:00 in Pago Pago (UTC-11).
    Account.objects.filter(pk=account.pk).update(timezone="Pacific/Pago_Pago")
    assert sub.current_period_end == T0 + timedelta(days=30)
    client.force_login(owner)
    expected = {
        "en": ("€19.00", "April 30, 2026"),
        "nl": ("€\xa019,00", "30 april 2026"),
        "fr": ("19,00\xa0€", "30 avril 2026"),
        "it": ("19,00\xa0€", "30 aprile 2026"),
    }
    for language, (amount, date) in expected.items():
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = client.get("/billing/").content.decode()
        assert f'<html lang="{language}">' in html
        assert amount in html, language
        assert date in html, language


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        ("en", "1 month", "2 months"),
        ("nl", "1 maand", "2 maanden"),
        ("fr", "1 mois", "2 mois"),
        ("it", "1 mese", "2 mesi"),
    ],
)
def test_plurals_follow_the_language(client, plans, stripe_fake, frozen, language, one, two):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    html = client.get("/billing/pause/").content.decode()
    assert f"{one}\n" in html or f"{one}<" in html or f"{one} " in html
    assert two in html


def test_the_money_filter_formats_per_locale():
    for language, text in {
        "en": "€1,234.50",
        "nl": "€\xa01.234,50",
        "fr": "1\u202f234,50\xa0€",
        "it": "1.234,50\xa0€",
    }.items():
        with translation.override(language):
            assert money(123450, "eur") == text


# --- The language of the account's emails -----------------------------------------------------------
def test_an_owner_chooses_the_language_of_the_account_emails(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    html = client.get("/account/").content.decode()
    assert 'action="/accounts/email-language/"' in html
    response = client.post("/accounts/email-language/", {"language": "it"}, follow=True)
    account.refresh_from_db()
    assert account.language == "it"
    assert messages_of(response) == ["Emails about this account now go out in Italian."]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    response = client.post("/accounts/email-language/", {"language": "nl"}, follow=True)
    assert messages_of(response) == ["Les e-mails de ce compte partent désormais en néerlandais."]


def test_a_member_cannot_change_the_language_of_the_account_emails(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    member = teammate(account, Membership.MEMBER)
    client.force_login(member)
    assert 'action="/accounts/email-language/"' not in client.get("/account/").content.decode()
    response = client.post("/accounts/email-language/", {"language": "fr"})
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.language == "en"


def test_an_unknown_language_changes_nothing_and_says_why(client, plans, stripe_fake, frozen):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    response = client.post("/accounts/email-language/", {"language": "xx"}, follow=True)
    account.refresh_from_db()
    assert account.language == "en"
    assert "Choose one of the languages offered." in messages_of(response)


def test_the_email_language_form_needs_a_login_and_a_post(client, db):
    assert client.post("/accounts/email-language/", {"language": "nl"})["Location"].startswith("/accounts/login/")
    owner, account = customer(card=False)
    client.login(email=owner.email, password=PASSWORD)
    assert client.get("/accounts/email-language/").status_code == 405
