"""The erasers of the apps privacy knows: accounts, subscriptions, login throttling, admin, exports.

Other apps register their own (see erasure.py). Invoices and payments stay, as tax law asks,
with the customer's name and email replaced by the account's pseudonym (docs/rules.md).
"""

import re
import secrets
from functools import partial
from pathlib import Path

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from accounts.models import Account, Membership, User
from subscriptions.models import CreditEntry, EmailSent, Invoice, Subscription, SubscriptionEvent

from . import erasure
from .erasure import Erasure
from .models import ExportJob

PSEUDONYM_DOMAIN = "deleted.invalid"  # RFC 2606: .invalid never resolves, so nothing is ever sent


def new_pseudonym() -> str:
    return f"deleted-{secrets.token_hex(8)}"


def pseudonym_email(pseudonym: str) -> str:
    return f"{pseudonym}@{PSEUDONYM_DOMAIN}"


@erasure.register("admin")
def erase_admin_log(e: Erasure) -> None:
    """Admin history keeps what operators did to the account's objects, minus names and emails.

    Only entries about this account's own objects are touched, so a short name never rewrites
    another customer's history.
    """
    erased = [value for value in (*e.names, *e.emails) if value]
    if not erased:
        return
    objects = Q()
    for model, ids in (
        (Account, [e.account.pk]),
        (User, e.user_ids),
        (Membership, e.membership_ids),
        (Subscription, Subscription.objects.filter(account=e.account).values_list("pk", flat=True)),
        (Invoice, Invoice.objects.filter(account=e.account).values_list("pk", flat=True)),
        (CreditEntry, CreditEntry.objects.filter(account=e.account).values_list("pk", flat=True)),
    ):
        content_type = ContentType.objects.get_for_model(model)
        objects |= Q(content_type=content_type, object_id__in=[str(pk) for pk in ids])
    for entry in LogEntry.objects.filter(objects):
        object_repr = _replace_all(entry.object_repr, erased, e.pseudonym)
        change_message = _replace_all(entry.change_message, erased, e.pseudonym)
        if (object_repr, change_message) != (entry.object_repr, entry.change_message):
            entry.object_repr, entry.change_message = object_repr, change_message
            entry.save(update_fields=["object_repr", "change_message"])


@erasure.register("accounts")
def erase_account_and_members(e: Erasure) -> None:
    """Members lose access; their logins are deactivated and emptied; the account is renamed."""
    Membership.objects.filter(account=e.account).delete()
    # Staff are the operator's own people: they lose the membership but keep their login.
    users = User.objects.filter(pk__in=e.user_ids, is_staff=False, is_superuser=False).exclude(
        pk__in=Membership.objects.values("user_id")
    )
    for user in users:
        user.name = ""
        user.email = pseudonym_email(new_pseudonym())
        user.is_active = False
        user.set_unusable_password()  # also ends their sessions (the session hash changes)
        user.save(update_fields=["name", "email", "is_active", "password"])
        user.groups.clear()
        user.user_permissions.clear()
    Account.objects.filter(pk=e.account.pk).update(
        name=e.pseudonym,
        billing_email=e.pseudonym_email,
        payment_method_id="",
        card_brand="",
        card_last4="",
        card_exp_month=None,
        card_exp_year=None,
    )


@erasure.register("subscriptions")
def erase_billing_records(e: Erasure) -> None:
    """Free text goes; invoices stay under the pseudonym; the ledger keeps amounts, not notes."""
    Invoice.objects.filter(account=e.account).update(customer_name=e.pseudonym, customer_email=e.pseudonym_email)
    Subscription.objects.filter(account=e.account).update(cancel_reason="")
    # The audit log is append-only, except that erasure blanks the customers' own words.
    SubscriptionEvent.objects.filter(subscription__account=e.account).exclude(reason="").update(reason="")
    # Notes an operator wrote may name the customer; notes the system wrote are fixed phrases.
    CreditEntry.objects.filter(account=e.account, created_by__isnull=False).update(note="")
    EmailSent.objects.filter(account=e.account).update(recipients=e.pseudonym_email)


@erasure.register("axes")
def erase_login_attempts(e: Erasure) -> None:
    """Login attempts are kept by email address (and IP address): drop the erased users' ones."""
    if not e.emails:
        return
    by_email = Q()
    for email in e.emails:
        by_email |= Q(username__iexact=email)
    for model in (AccessAttempt, AccessLog, AccessFailureLog):
        model.objects.filter(by_email).delete()


@erasure.register("privacy")
def erase_exports(e: Erasure) -> None:
    """Export files hold everything: delete them (once the erasure is committed) and their jobs."""
    for job in ExportJob.objects.filter(account=e.account):
        if job.path:
            transaction.on_commit(partial(Path.unlink, job.path, missing_ok=True))
    ExportJob.objects.filter(account=e.account).delete()


def _replace_all(text: str, needles: list[str], replacement: str) -> str:
    """Replace every needle, case-insensitively, longest first (an email contains a name)."""
    for needle in sorted(needles, key=len, reverse=True):
        text = re.sub(re.escape(needle), replacement, text, flags=re.IGNORECASE)
    return text
