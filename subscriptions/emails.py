"""Emails to customers: a subject/text/html template trio, in the account's language, sent once.

`email_send` records the email (kind + key, unique) in the same transaction as sending it, so a
job that runs twice, or two workers at once, send it once; a failed send rolls the record back
and the next run tries again.
"""

from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation

from accounts.models import Account, Membership
from billing_portal.lib import clock

from .models import EmailSent


def account_billing_contacts(*, account: Account) -> list[str]:
    """The billing email plus every owner and billing admin, each once."""
    emails = [account.billing_email]
    emails += Membership.objects.filter(account=account, role__in=Membership.BILLING_ROLES).values_list(
        "user__email", flat=True
    )
    return list(dict.fromkeys(email for email in emails if email))


def email_render(*, kind: str, context: dict, language: str) -> tuple[str, str, str]:
    """(subject, text, html) from templates/emails/<kind>-subject.txt, -body.txt and -body.html."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"emails/{kind}-subject.txt", context).split())
        text = render_to_string(f"emails/{kind}-body.txt", context)
        html = render_to_string(f"emails/{kind}-body.html", context)
    return subject, text, html


def email_send(
    *,
    account: Account,
    kind: str,
    key: str,
    context: dict,
    recipients: list[str] | None = None,
    now: datetime | None = None,
) -> bool:
    """Send `kind` to the account's billing contacts once per `key`; False if it was sent before."""
    now = now or clock.now()
    recipients = recipients or account_billing_contacts(account=account)
    context = {"account": account, "site_url": settings.SITE_URL, **context}
    subject, text, html = email_render(kind=kind, context=context, language=account.language)
    try:
        with transaction.atomic():
            EmailSent.objects.create(account=account, kind=kind, key=key, recipients=", ".join(recipients), sent_at=now)
            message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
            message.attach_alternative(html, "text/html")
            message.send()
    except IntegrityError:
        return False
    return True
