"""Data exports and account deletion: every change the privacy app makes.

Only owners export or delete. A deletion is asked for (the live subscription ends at once and
the grace period starts), can be undone until `deletion_due_at`, and is then carried out by the
daily job: Stripe first (outside any transaction), then the last email, then one transaction
that runs every registered eraser (erasure.py) and marks the account deleted.
"""

import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from subscriptions import emails, gateway
from subscriptions import selectors as billing_selectors
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import SubscriptionEvent
from subscriptions.services import subscription_cancel_now

from . import erasers, erasure, selectors
from .export import export_write
from .models import ExportJob

log = logging.getLogger(__name__)

# An export whose worker has said nothing for this long is considered lost (a newer one may start).
EXPORT_STALE_AFTER = timedelta(minutes=15)


class OwnerRequired(InvalidTransition):
    """Only an owner of the account may do this (the view answers 403 and names the owners)."""


class DeletionRefused(InvalidTransition):
    """The deletion cannot be asked for, or undone, right now; nothing changed."""


def _require_owner(*, account: Account, actor: User) -> None:
    if not Membership.objects.filter(account=account, user=actor, role=Membership.OWNER).exists():
        raise OwnerRequired(_("Only an owner of the account can do this."))


def _site_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


# --- Export ----------------------------------------------------------------------------------------
def export_request(*, account: Account, actor: User, now: datetime | None = None) -> ExportJob:
    """Queue an export of the account; while one is being prepared, asking again returns it."""
    now = now or clock.now()
    _require_owner(account=account, actor=actor)
    # An export whose worker vanished must not block the next one forever.
    ExportJob.objects.filter(
        account=account, status__in=ExportJob.IN_PROGRESS, updated_at__lt=now - EXPORT_STALE_AFTER
    ).update(status=ExportJob.FAILED, error="No progress for too long", finished_at=now)
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(account=account, requested_by=actor, created_at=now, updated_at=now)
    except IntegrityError:
        return selectors.export_job_in_progress(account=account)
    from . import tasks  # the tasks call these services

    tasks.build_export.delay_on_commit(job.pk)
    return job


def _export_claimable(now: datetime) -> Q:
    # A running job nobody updated for a while lost its worker; the redelivered task takes it over.
    return Q(status=ExportJob.PENDING) | Q(status=ExportJob.RUNNING, updated_at__lt=now - EXPORT_STALE_AFTER)


def export_build(*, job_id: int, now: datetime | None = None) -> ExportJob | None:
    """Build the export ZIP of a queued job (the Celery task); None if another worker has it."""
    now = now or clock.now()
    claimed = ExportJob.objects.filter(_export_claimable(now), pk=job_id).update(
        status=ExportJob.RUNNING, started_at=now, updated_at=now, progress=0
    )
    if not claimed:
        return None
    job = ExportJob.objects.select_related("account", "requested_by").get(pk=job_id)
    directory = Path(settings.PRIVACY_EXPORT_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{job.account_id}-{secrets.token_hex(16)}.zip"
    partial = directory / f"{name}.part"
    shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal shown
        percent = min(99, done * 100 // max(total, 1))
        if percent != shown:
            shown = percent
            # The heartbeat is the wall clock on purpose: it says this worker is alive.
            ExportJob.objects.filter(pk=job_id, status=ExportJob.RUNNING).update(
                progress=percent, updated_at=clock.now()
            )

    try:
        export_write(account=job.account, path=partial, now=now, progress=progress)
        os.replace(partial, directory / name)
    except Exception as error:
        log.exception("Export %s failed", job_id)
        partial.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job_id, status=ExportJob.RUNNING).update(
            status=ExportJob.FAILED, error=f"{type(error).__name__}"[:300], finished_at=clock.now()
        )
        return ExportJob.objects.filter(pk=job_id).first()
    finished = clock.now()
    done = ExportJob.objects.filter(pk=job_id, status=ExportJob.RUNNING).update(
        status=ExportJob.READY,
        progress=100,
        file_name=name,
        size_bytes=(directory / name).stat().st_size,
        updated_at=finished,
        finished_at=finished,
        expires_at=finished + timedelta(days=settings.PRIVACY_EXPORT_LINK_DAYS),
    )
    if not done:  # given up on meanwhile (stale), or erased with its account
        (directory / name).unlink(missing_ok=True)
        return ExportJob.objects.filter(pk=job_id).first()
    job.refresh_from_db()
    _export_ready_email(job, now=finished)
    return job


def _export_ready_email(job: ExportJob, *, now: datetime) -> None:
    """Tell the owner who asked; the page shows the link too, so a failed email is only logged."""
    if not job.requested_by or not job.requested_by.is_active:
        return
    link = _site_url(reverse("privacy:export-download", args=[selectors.export_download_token(job=job)]))
    try:
        emails.email_send(
            account=job.account,
            kind="export-ready",
            key=f"export-{job.pk}",
            context={"job": job, "download_url": link, "link_days": settings.PRIVACY_EXPORT_LINK_DAYS},
            recipients=[job.requested_by.email],
            now=now,
        )
    except Exception:
        log.exception("Could not email the link of export %s", job.pk)


def exports_purge_expired(*, now: datetime | None = None) -> int:
    """Delete the files of exports whose link has expired; their jobs stay as 'expired'."""
    now = now or clock.now()
    purged = 0
    for job in ExportJob.objects.filter(pk__in=selectors.export_job_ids_expired(now=now)):
        if job.path:
            job.path.unlink(missing_ok=True)
        purged += ExportJob.objects.filter(pk=job.pk, status=ExportJob.READY).update(
            status=ExportJob.EXPIRED, file_name="", updated_at=now
        )
    return purged


# --- Deletion --------------------------------------------------------------------------------------
def account_deletion_request(*, account: Account, actor: User, now: datetime | None = None) -> bool:
    """Ask for the deletion: the live subscription ends now, the grace period starts.

    Returns False when it had been asked for already (a double submission changes nothing).
    With a grace period of 0 days the deletion is carried out at once.
    """
    now = now or clock.now()
    _require_owner(account=account, actor=actor)
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.deleted_at:
            raise DeletionRefused(_("This account has already been deleted."))
        fresh = locked.deletion_requested_at is None
        if fresh:
            if selectors.deletion_blocking_invoices(account=locked):
                raise DeletionRefused(_("Please pay the outstanding balance before deleting the account."))
            subscription = billing_selectors.subscription_live_for_account(account=locked)
            if subscription:
                # No refund: the customer asked to end everything (an operator may still grant one).
                subscription_cancel_now(subscription=subscription, actor=actor, now=now)
            due = now + timedelta(days=settings.PRIVACY_DELETION_GRACE_DAYS)
            Account.objects.filter(pk=locked.pk).update(deletion_requested_at=now, deletion_due_at=due)
    account.refresh_from_db()
    if fresh:
        log.info("Deletion of account %s asked for by user %s, due %s", account.pk, actor.pk, account.deletion_due_at)
    if fresh and account.deletion_due_at > now:
        _deletion_scheduled_email(account, now=now)
    if account.deletion_due_at <= now:
        account_deletion_carry_out(account_id=account.pk, now=now)
        account.refresh_from_db()
    return fresh


def _deletion_scheduled_email(account: Account, *, now: datetime) -> None:
    try:
        emails.email_send(
            account=account,
            kind="account-deletion-scheduled",
            key=f"account-{account.pk}-deletion-{account.deletion_requested_at.isoformat()}",
            context={
                "due_at": account.deletion_due_at,
                "account_url": _site_url(reverse("privacy:account")),
                "retention_years": settings.PRIVACY_INVOICE_RETENTION_YEARS,
            },
            now=now,
        )
    except Exception:
        # The deletion stands and the page says when; the final email is the one that must go.
        log.exception("Could not email the scheduled deletion of account %s", account.pk)


def account_deletion_undo(*, account: Account, actor: User, now: datetime | None = None) -> bool:
    """Undo a deletion within the grace period; False if none was pending (nothing changes).

    The subscription that ended when the deletion was asked for stays canceled.
    """
    now = now or clock.now()
    _require_owner(account=account, actor=actor)
    undone = Account.objects.filter(
        pk=account.pk, deleted_at__isnull=True, deletion_requested_at__isnull=False, deletion_due_at__gt=now
    ).update(deletion_requested_at=None, deletion_due_at=None)
    account.refresh_from_db()
    if undone:
        log.info("Deletion of account %s undone by user %s", account.pk, actor.pk)
        return True
    if account.deletion_requested_at is not None:
        raise DeletionRefused(_("The grace period has ended: the account is being deleted."))
    return False


def accounts_delete_due(*, now: datetime | None = None) -> int:
    """Carry out every deletion whose grace period has ended (the daily job, run synchronously)."""
    now = now or clock.now()
    return sum(
        account_deletion_carry_out(account_id=account_id, now=now)
        for account_id in selectors.account_ids_due_for_deletion(now=now)
    )


def account_deletion_carry_out(*, account_id: int, now: datetime | None = None) -> bool:
    """Delete one account whose grace period has ended; True if it was deleted by this call.

    Safe to run twice or concurrently: Stripe treats a deleted customer as done, the email goes
    once per key, and the erasure happens in one transaction that checks the account again.
    A step that fails (Stripe unreachable, email refused) leaves everything for the next run.
    """
    now = now or clock.now()
    account = Account.objects.get(pk=account_id)
    if account.deleted_at or account.deletion_due_at is None or account.deletion_due_at > now:
        return False
    subscription = billing_selectors.subscription_live_for_account(account=account)
    if subscription:  # started by an operator during the grace period
        try:
            subscription_cancel_now(subscription=subscription, actor=SubscriptionEvent.JOB, now=now)
        except InvalidTransition as error:  # a payment in flight: the next run tries again
            log.warning("Subscription of account %s not ended yet: %s", account.pk, error)
            return False
    if account.stripe_customer_id:
        try:
            gateway.customer_delete(customer_id=account.stripe_customer_id)
        except gateway.GatewayError as error:
            log.warning("Stripe customer of account %s not deleted yet: %s", account.pk, error)
            return False
    # The last email, while the addresses still exist.
    emails.email_send(
        account=account,
        kind="account-deleted",
        key=f"account-{account.pk}-deleted",
        context={"retention_years": settings.PRIVACY_INVOICE_RETENTION_YEARS},
        now=now,
    )
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        if account.deleted_at or account.deletion_due_at is None or account.deletion_due_at > now:
            return False
        memberships = list(Membership.objects.filter(account=account).select_related("user"))
        pseudonym = erasers.new_pseudonym()
        erasure.erase_account(
            erasure.Erasure(
                account=account,
                pseudonym=pseudonym,
                pseudonym_email=erasers.pseudonym_email(pseudonym),
                user_ids=tuple(m.user_id for m in memberships),
                membership_ids=tuple(m.pk for m in memberships),
                emails=tuple({account.billing_email, *(m.user.email for m in memberships)} - {""}),
                names=tuple({account.name, *(m.user.name for m in memberships)} - {""}),
                now=now,
            )
        )
        Account.objects.filter(pk=account_id).update(deleted_at=now)
    log.info("Account %s deleted (grace period ended %s)", account_id, account.deletion_due_at)
    return True
