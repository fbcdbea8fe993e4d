"""The catalogues stay complete: every string translated, nothing fuzzy, nothing new left out,
the compiled .mo files in step with the .po files, and every email in every language.

When one of these fails after new strings were added: run `make messages`, translate every
empty or fuzzy entry of locale/{nl,fr,it}/LC_MESSAGES/django.po, run `make messages` again (it
compiles), and commit the .po and .mo files (docs/rules.md, "Languages").
"""

import html
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.utils import translation

from conftest import need
from subscriptions import emails

ROOT = Path(settings.BASE_DIR)
LANGUAGES = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
PLURAL_FORMS = {
    "nl": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "it": "nplurals=2; plural=(n != 1);",
}
EMAIL_KINDS = sorted(
    path.name.removesuffix("-subject.txt") for path in (ROOT / "templates/emails").glob("*-subject.txt")
)
# Words that are English and none of Dutch, French or Italian: one in a translated email or page
# is an English leftover (a string someone forgot to wrap, or a translation left in English).
ENGLISH_ONLY_WORDS = {"the", "your", "you", "and", "will", "has", "have", "with", "this", "when", "until", "please"}
ENGLISH_ONLY_WORDS |= {"our", "here", "been", "not", "can", "what", "which", "from", "there", "must", "would"}


def po_path(language: str) -> Path:
    return ROOT / "locale" / language / "LC_MESSAGES" / "django.po"


def read_catalogue(path: Path):
    # A fresh .pot says "nplurals=INTEGER; plural=EXPRESSION;", which Babel cannot parse.
    text = path.read_text(encoding="utf-8").replace(
        "nplurals=INTEGER; plural=EXPRESSION;", "nplurals=2; plural=(n != 1);"
    )
    return read_po(io.StringIO(text))


def key(message) -> tuple:
    context = message.context.decode() if isinstance(message.context, bytes) else message.context
    return (context, message.id if isinstance(message.id, str) else tuple(message.id))


def translated(message) -> bool:
    strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return all(strings)


def makefile_arguments(name: str) -> list[str]:
    """The options `make messages` uses (one place: the Makefile), so this test runs the same thing."""
    match = re.search(rf"^{name}\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"{name} is not set in the Makefile"
    return shlex.split(match.group(1))


# --- The catalogues ----------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_of_the_catalogue_is_translated_and_none_is_fuzzy(language):
    catalogue = read_catalogue(po_path(language))
    assert not catalogue.fuzzy, f"the header of {po_path(language)} is marked fuzzy"
    headers = dict(catalogue.mime_headers)
    assert headers.get("Language") == language
    assert headers.get("Plural-Forms") == PLURAL_FORMS[language]
    untranslated = [key(m) for m in catalogue if m.id and not translated(m)]
    fuzzy = [key(m) for m in catalogue if m.id and m.fuzzy]
    obsolete = list(catalogue.obsolete)
    assert not untranslated, f"{len(untranslated)} untranslated in {language}: {untranslated[:20]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {language} (check them, then drop the flag): {fuzzy[:20]}"
    assert not obsolete, f"obsolete entries in {language}: run `make messages` (it drops them)"


def test_the_catalogues_hold_the_same_strings_in_every_language():
    keys = {language: {key(m) for m in read_catalogue(po_path(language)) if m.id} for language in LANGUAGES}
    first = keys[LANGUAGES[0]]
    for language in LANGUAGES[1:]:
        assert keys[language] == first, f"{language} and {LANGUAGES[0]} differ: run `make messages`"


def test_makemessages_finds_no_string_that_is_not_in_the_catalogues(tmp_path):
    """`make messages` on a copy of the sources: its template (.pot) must equal the catalogues."""
    need(shutil.which("xgettext") is not None and shutil.which("msgmerge") is not None, "GNU gettext")
    copy = tmp_path / "src"
    skip = {".git", ".venv", "var", "test-output", "node_modules", "tools", "__pycache__", ".pytest_cache"}
    shutil.copytree(ROOT, copy, ignore=lambda folder, names: [n for n in names if n in skip or n.endswith(".pyc")])
    env = {**os.environ, "VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "billing_portal.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *makefile_arguments("MESSAGES_ARGS"), "--keep-pot"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = {key(m) for m in read_catalogue(copy / "locale" / "django.pot") if m.id}
    for language in LANGUAGES:
        known = {key(m) for m in read_catalogue(po_path(language)) if m.id}
        new, gone = sorted(found - known, key=str), sorted(known - found, key=str)
        assert not new, f"{len(new)} strings are not in the {language} catalogue; run `make messages`: {new[:20]}"
        assert not gone, (
            f"{len(gone)} strings of the {language} catalogue no longer exist; run `make messages`: {gone[:20]}"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_in_step_with_the_po_file(language):
    """The committed .mo holds exactly the translations of the .po (else: `make messages`)."""
    mo = po_path(language).with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: run `make messages` and commit it"
    with open(mo, "rb") as file:
        compiled = read_mo(file)
    expected = {key(m): m.string for m in read_catalogue(po_path(language)) if m.id and translated(m) and not m.fuzzy}
    actual = {key(m): m.string for m in compiled if m.id}
    normalize = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in actual.items()}
    expected = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in expected.items()}
    stale = sorted((k for k in expected.keys() | normalize.keys() if expected.get(k) != normalize.get(k)), key=str)
    assert not stale, f"{mo} is out of step with its .po for {len(stale)} entries; run `make messages`: {stale[:10]}"
    assert dict(compiled.mime_headers).get("Plural-Forms") == PLURAL_FORMS[language]


def test_django_uses_the_project_catalogues_for_status_words():
    """The badges of SPEC section 3 in Dutch, as the SPEC words them."""
    from subscriptions.templatetags.billing import BADGES

    with translation.override("nl"):
        assert {badge: str(label) for badge, label in BADGES.items()} == {
            "trialing": "Proefperiode",
            "active": "Actief",
            "canceling": "Wordt opgezegd",
            "past_due": "Achterstallig",
            "paused": "Gepauzeerd",
            "canceled": "Opgezegd",
        }


# --- Emails ------------------------------------------------------------------------------------
def english_leftovers(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z']+", re.sub(r"https?://\S+|\S+@\S+", " ", text))
    return sorted({word for word in words if word.lower() in ENGLISH_ONLY_WORDS})


def visible_text(markup: str) -> str:
    markup = re.sub(r"<(style|script)\b.*?</\1>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def sample_context(language: str) -> dict:
    """Everything an email template may use, filled with sample values (no database needed).

    A new kind of email that needs more: add its variables here.
    """
    account = SimpleNamespace(
        pk=7,
        name="Bakkerij Bolder",
        billing_email="geld@bolder.example",
        timezone="Europe/Amsterdam",
        currency="eur",
        language=language,
    )
    plan = SimpleNamespace(name="Pro", code="pro")
    price = SimpleNamespace(
        plan=plan,
        cycle="annual_commitment_monthly",
        amount_minor=1700,
        currency="eur",
        get_cycle_display=lambda: translation.gettext("Commit annually, pay monthly"),
    )
    # 23:30 UTC on May 31 is June 1 in Amsterdam: the dates must come out in the account's timezone.
    cancel_at = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)
    invoice = SimpleNamespace(
        pk=11,
        number="2026-000042",
        amount_due_minor=1234,
        currency="eur",
        period_start=cancel_at - timedelta(days=30),
        period_end=cancel_at,
        created_at=cancel_at - timedelta(days=30),
        status="open",
    )
    flow = SimpleNamespace(get_reason_display=lambda: translation.gettext("It is too expensive"), reason_text="Budget.")
    session_request = SimpleNamespace(pk=3, contact_email="zoe@bolder.example", flow=flow, note="Dinsdag graag.")
    return {
        "account": account,
        "site_url": "https://billing.example",
        "subscription": SimpleNamespace(pk=5, price=price, account=account, cancel_at=cancel_at, amount_minor=1700),
        "summary": SimpleNamespace(ends_with="commitment", payments_count=3, payments_total_minor=5100, currency="eur"),
        "cancel_at": cancel_at,
        "due_at": cancel_at,
        "account_url": "https://billing.example/account/",
        "retention_years": 10,
        "link_days": 7,
        "job": SimpleNamespace(pk=9, expires_at=cancel_at),
        "download_url": "https://billing.example/account/export/abc/",
        "session_request": session_request,
        "proposed": [cancel_at, cancel_at + timedelta(days=1)],
        "invoice": invoice,
        "payment": SimpleNamespace(pk=13, amount_minor=1234, currency="eur", failure_code="insufficient_funds"),
        "url": "https://billing.example/billing/",
        # Signup and team emails.
        "days": 3,
        "user": SimpleNamespace(email="zoe@bolder.example", get_full_name=lambda: "Zoë Bolder"),
        "verify_url": "https://billing.example/accounts/verify/abc/",
        "invitation": SimpleNamespace(expires_at=cancel_at),
        "inviter": SimpleNamespace(get_full_name=lambda: "Zoë Bolder"),
        "role": translation.gettext("Member"),
        "accept_url": "https://billing.example/accounts/invitation/abc/",
    }


@pytest.mark.parametrize("kind", EMAIL_KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_email_renders_in_every_language_without_english_leftovers(kind, language):
    subject, text, markup = emails.email_render(kind=kind, context=sample_context(language), language=language)
    assert subject and "\n" not in subject
    for part, content in (("subject", subject), ("text", text), ("html", visible_text(markup))):
        assert not english_leftovers(content), (
            f"{kind} ({part}) in {language} has English: {english_leftovers(content)}"
        )
    assert f'<html lang="{language}">' in markup
    english_subject, _text, _html = emails.email_render(kind=kind, context=sample_context("en"), language="en")
    assert subject != english_subject


@pytest.mark.django_db
def test_the_cancellation_email_speaks_dutch_with_dutch_money_and_the_account_timezone(settings):
    from subscriptions.tests.factories import owner_with_account

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _owner, account = owner_with_account(name="Bakkerij Bolder", language="nl", timezone="Europe/Amsterdam")
    context = sample_context("nl")
    del context["account"]
    with translation.override("en"):  # a job or a page in English: the email still goes in Dutch
        assert emails.email_send(account=account, kind="cancellation-scheduled", key="k", context=context)
    message = mail.outbox[0]
    assert message.subject == "Je Pro-abonnement stopt op 1 juni 2026"
    assert "Het Pro-abonnement van Bakkerij Bolder is opgezegd en stopt op 1 juni 2026." in message.body
    assert "nog 3 maandbetalingen, in totaal €\xa051,00" in message.body
    assert "€\xa051,00" in message.alternatives[0][0]
    assert not english_leftovers(message.body)


def test_the_english_word_check_would_catch_an_untranslated_sentence():
    assert english_leftovers("Je abonnement stopt op 1 juni. Please export your data.") == ["Please", "your"]
    assert not english_leftovers("Le compte Bakkerij Bolder est résilié: https://billing.example/your/page")
