"""Account settings: export the account's data, delete the account (owners only), undo a deletion."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.models import Membership
from accounts.views import language_name
from billing_portal.lib import clock
from subscriptions import selectors as billing_selectors
from subscriptions.lifecycle import InvalidTransition

from . import selectors, services
from .forms import DeleteAccountForm
from .models import ExportJob


def _is_owner(request) -> bool:
    return request.membership is not None and request.membership.role == Membership.OWNER


def _forbidden(request, message: str):
    """403 that says who can act: the account's owners."""
    owners = selectors.account_owners(account=request.account) if request.account else []
    return render(request, "privacy/forbidden.html", {"message": message, "owners": owners}, status=403)


def _download_url(job: ExportJob, now) -> str:
    if job.status != ExportJob.READY or (job.expires_at and job.expires_at <= now):
        return ""
    return reverse("privacy:export-download", args=[selectors.export_download_token(job=job)])


@require_safe
@login_required
def account_settings(request):
    """Account settings: who we are, the data export and the way out."""
    account = request.account
    if account is None:
        return render(request, "subscriptions/no_account.html")
    now = clock.now()
    exports = selectors.export_jobs_recent(account=account) if _is_owner(request) else []
    context = {
        "account": account,
        "membership": request.membership,
        "is_owner": _is_owner(request),
        "owners": selectors.account_owners(account=account),
        "members": selectors.account_members(account=account),
        "exports": [(job, _download_url(job, now)) for job in exports],
        "export_in_progress": next((job for job in exports if job.in_progress), None),
        "grace_days": settings.PRIVACY_DELETION_GRACE_DAYS,
        "retention_years": settings.PRIVACY_INVOICE_RETENTION_YEARS,
        "now": now,
        "can_manage_billing": request.membership.can_manage_billing,
        "email_languages": [(code, language_name(code)) for code, _name in settings.LANGUAGES],
        "email_language": language_name(account.language),
    }
    return render(request, "privacy/account.html", context)


# --- Export ----------------------------------------------------------------------------------------
@require_POST
@login_required
def export_start(request):
    if not _is_owner(request):
        return _forbidden(request, _("Only an owner of the account can export its data."))
    now = clock.now()
    try:
        job = services.export_request(account=request.account, actor=request.user, now=now)
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("privacy:account")
    if job.created_at == now:
        text = _("Your export has started. We email %(email)s a download link when it is ready.")
    else:
        text = _("An export is already being prepared; here is its progress. We email %(email)s when it is ready.")
    messages.success(request, text % {"email": request.user.email})
    return redirect("privacy:export-progress", job_id=job.pk)


@require_safe
@login_required
def export_progress(request, job_id: int):
    """The export's progress; a static script polls `export_status`, and without it the page reloads."""
    if not _is_owner(request):
        return _forbidden(request, _("Only an owner of the account can export its data."))
    job = get_object_or_404(ExportJob.objects.select_related("requested_by"), pk=job_id, account=request.account)
    now = clock.now()
    context = {
        "account": request.account,
        "job": job,
        "download_url": _download_url(job, now),
        "link_days": settings.PRIVACY_EXPORT_LINK_DAYS,
    }
    return render(request, "privacy/export_progress.html", context)


@require_safe
@login_required
def export_status(request, job_id: int):
    """The export's status as JSON, for the progress page's script."""
    if not _is_owner(request):
        return JsonResponse({"error": _("Only an owner of the account can export its data.")}, status=403)
    job = get_object_or_404(ExportJob, pk=job_id, account=request.account)
    return JsonResponse(
        {
            "status": job.status,
            "progress": job.progress,
            "done": not job.in_progress,
            "label": _("Preparing your export: %(percent)s%%") % {"percent": job.progress},
        },
        headers={"Cache-Control": "no-store"},
    )


@require_safe
@login_required
def export_download(request, token: str):
    """The ZIP, for an owner of the account, while the link is valid; never served statically."""
    if not _is_owner(request):
        return _forbidden(request, _("Only an owner of the account can download its data."))
    try:
        job = selectors.export_job_for_download(token=token, account=request.account, now=clock.now())
    except selectors.ExportLinkExpired as expired:
        context = {"account": request.account, "expired": True, "expired_at": expired.expired_at}
        context["link_days"] = settings.PRIVACY_EXPORT_LINK_DAYS
        return render(request, "privacy/export_link.html", context, status=410)
    except selectors.ExportLinkInvalid:
        return render(request, "privacy/export_link.html", {"account": request.account, "expired": False}, status=404)
    response = FileResponse(job.path.open("rb"), as_attachment=True, filename=job.download_name())
    response["Cache-Control"] = "private, no-store"
    return response


# --- Deletion --------------------------------------------------------------------------------------
@login_required
def delete(request):
    """What deleting means and when, the export, the blockers, and the confirmation form."""
    account = request.account
    if account is None:
        return render(request, "subscriptions/no_account.html")
    if not _is_owner(request):
        return _forbidden(request, _("Only an owner of the account can delete it."))
    if account.deletion_pending:
        messages.info(request, _("This account is already scheduled for deletion."))
        return redirect("privacy:account")
    now = clock.now()
    form = DeleteAccountForm(request.POST or None, user=request.user, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            asked = services.account_deletion_request(account=account, actor=request.user, now=now)
        except InvalidTransition as error:
            messages.error(request, str(error))
            return redirect("privacy:delete")
        if account.deleted_at:
            logout(request)
            return redirect("privacy:deleted")
        if not asked:
            messages.info(request, _("This account is already scheduled for deletion."))
        elif account.deletion_due_at <= now:
            messages.warning(request, _("Your account is being deleted. This finishes within a day."))
        else:
            messages.success(
                request,
                _("Your account will be deleted on %(date)s. Until then you can undo it on this page.")
                % {"date": _local_date(account.deletion_due_at, account.timezone)},
            )
        return redirect("privacy:account")
    blockers = selectors.deletion_blocking_invoices(account=account)
    context = {
        "account": account,
        "form": form,
        "blockers": blockers,
        "outstanding": selectors.outstanding_minor(invoices=blockers),
        "subscription": billing_selectors.subscription_live_for_account(account=account),
        "members": selectors.account_members(account=account),
        "grace_days": settings.PRIVACY_DELETION_GRACE_DAYS,
        "due_at": now + timedelta(days=settings.PRIVACY_DELETION_GRACE_DAYS),
        "retention_years": settings.PRIVACY_INVOICE_RETENTION_YEARS,
        "export_in_progress": selectors.export_job_in_progress(account=account),
    }
    return render(request, "privacy/delete.html", context)


def _local_date(value, tz_name: str) -> str:
    with timezone.override(tz_name):
        return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


@require_POST
@login_required
def delete_undo(request):
    if not _is_owner(request):
        return _forbidden(request, _("Only an owner of the account can undo its deletion."))
    try:
        undone = services.account_deletion_undo(account=request.account, actor=request.user, now=clock.now())
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("privacy:account")
    if undone:
        messages.success(
            request,
            _(
                "The deletion is canceled: your account stays as it was. Your subscription stays canceled; "
                "you can subscribe again on the billing page."
            ),
        )
    else:
        messages.info(request, _("This account is not scheduled for deletion."))
    return redirect("privacy:account")


@require_safe
def deleted(request):
    """Where a deleted account's owner lands, logged out."""
    return render(request, "privacy/deleted.html", {"retention_years": settings.PRIVACY_INVOICE_RETENTION_YEARS})
