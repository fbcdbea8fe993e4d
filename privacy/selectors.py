"""Reads for the account page, the deletion page and the jobs."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner

from accounts.models import Account, Membership, User
from subscriptions.models import Invoice

from .models import ExportJob


def account_owners(*, account: Account) -> list[User]:
    """Who may export and delete: the account's owners."""
    return list(
        User.objects.filter(membership__account=account, membership__role=Membership.OWNER).order_by("name", "email")
    )


def account_members(*, account: Account) -> list[Membership]:
    return list(Membership.objects.filter(account=account).select_related("user").order_by("created_at", "id"))


def deletion_blocking_invoices(*, account: Account) -> list[Invoice]:
    """Open invoices: an outstanding balance must be paid before the account can be deleted."""
    return list(Invoice.objects.filter(account=account, status=Invoice.OPEN).order_by("created_at", "id"))


def outstanding_minor(*, invoices: list[Invoice]) -> dict[str, int]:
    """The total due of some invoices, per currency."""
    totals: dict[str, int] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, 0) + invoice.amount_due_minor
    return totals


def account_ids_due_for_deletion(*, now: datetime) -> list[int]:
    return list(
        Account.objects.filter(deleted_at__isnull=True, deletion_due_at__lte=now)
        .order_by("id")
        .values_list("id", flat=True)
    )


def export_jobs_recent(*, account: Account, limit: int = 5) -> list[ExportJob]:
    return list(ExportJob.objects.filter(account=account).order_by("-created_at", "-id")[:limit])


def export_job_in_progress(*, account: Account) -> ExportJob | None:
    return ExportJob.objects.filter(account=account, status__in=ExportJob.IN_PROGRESS).first()


def export_job_ids_expired(*, now: datetime) -> list[int]:
    return list(ExportJob.objects.filter(status=ExportJob.READY, expires_at__lte=now).values_list("id", flat=True))


# --- Download links --------------------------------------------------------------------------------
class ExportLinkInvalid(Exception):
    """The link was tampered with, is not this account's, or its export is gone."""


class ExportLinkExpired(Exception):
    """The link is older than PRIVACY_EXPORT_LINK_DAYS, or its file has been purged."""

    def __init__(self, expired_at: datetime | None = None):
        super().__init__("expired")
        self.expired_at = expired_at


def _signer() -> TimestampSigner:
    return TimestampSigner(salt="privacy.export-download")


def export_download_token(*, job: ExportJob) -> str:
    """A signed, timestamped token naming the export; valid for PRIVACY_EXPORT_LINK_DAYS."""
    return _signer().sign(str(job.pk))


def export_job_for_download(*, token: str, account: Account, now: datetime) -> ExportJob:
    """The ready export a link names, if it belongs to `account` and has not expired."""
    signer = _signer()
    try:
        job_id = signer.unsign(token, max_age=timedelta(days=settings.PRIVACY_EXPORT_LINK_DAYS))
    except SignatureExpired:
        job = _job_named_by(signer, token, account)
        raise ExportLinkExpired(job.expires_at if job else None) from None
    except BadSignature:
        raise ExportLinkInvalid() from None
    job = ExportJob.objects.filter(pk=int(job_id), account=account).first()
    if job is None:
        raise ExportLinkInvalid()
    if job.status == ExportJob.EXPIRED or (job.expires_at and job.expires_at <= now):
        raise ExportLinkExpired(job.expires_at)
    if job.status != ExportJob.READY or not job.path or not job.path.exists():
        raise ExportLinkInvalid()
    return job


def _job_named_by(signer: TimestampSigner, token: str, account: Account) -> ExportJob | None:
    """The export an expired but genuine link names (to say when it expired)."""
    try:
        job_id = signer.unsign(token)
    except BadSignature:
        return None
    return ExportJob.objects.filter(pk=int(job_id), account=account).first()
