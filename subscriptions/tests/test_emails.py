"""Emails go to the billing contacts, once per key."""

import pytest
from django.core import mail

from accounts.models import Membership
from subscriptions import emails

from .factories import MembershipFactory, owner_with_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def ping_templates(tmp_path, settings):
    folder = tmp_path / "emails"
    folder.mkdir()
    (folder / "ping-subject.txt").write_text("{% load i18n %}{% translate 'Billing' %} {{ account.name }}\n")
    (folder / "ping-body.txt").write_text("Hello {{ who }}")
    (folder / "ping-body.html").write_text("<p>Hello {{ who }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]


def test_an_email_with_the_same_key_is_sent_once_to_the_billing_contacts(ping_templates):
    owner, account = owner_with_account(name="Acme")
    admin = MembershipFactory(account=account, role=Membership.BILLING_ADMIN).user
    MembershipFactory(account=account, role=Membership.MEMBER)
    assert emails.email_send(account=account, kind="ping", key="k1", context={"who": "you"})
    assert not emails.email_send(account=account, kind="ping", key="k1", context={"who": "you"})
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([account.billing_email, owner.email, admin.email])
    assert message.subject == "Billing Acme"
    assert message.alternatives[0][0] == "<p>Hello you</p>"
