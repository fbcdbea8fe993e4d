"""Admin pages that are not a model's: the revenue dashboard and the reconciliation report.

Both are wrapped in `admin.site.admin_view` (staff only, never cached) by admin_urls.py and
check their own permission; both only read the database.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from billing_portal.lib import clock

from . import dashboard, gateway, tasks
from .models import ReconciliationDifference, ReconciliationRun

RUNS_LISTED = 10


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


@require_safe
def revenue_dashboard(request):
    _require(request, "subscriptions.view_revenue_dashboard")
    figures = dashboard.revenue_dashboard(now=clock.now(), currency=request.GET.get("currency"))
    context = {
        **admin.site.each_context(request),
        "title": _("Revenue dashboard"),
        "dashboard": figures,
    }
    return TemplateResponse(request, "admin/billing/dashboard.html", context)


@require_safe
def reconciliation(request):
    _require(request, "subscriptions.view_reconciliationrun")
    runs = list(ReconciliationRun.objects.all()[:RUNS_LISTED])
    run_id = request.GET.get("run", "")
    if run_id.isdigit():
        run = get_object_or_404(ReconciliationRun, pk=run_id)
    else:
        run = runs[0] if runs else None
    differences = []
    if run is not None:
        differences = [
            {
                "difference": difference,
                "stripe_url": gateway.dashboard_url(payment_intent_id=difference.stripe_payment_intent_id),
            }
            for difference in ReconciliationDifference.objects.filter(run=run).select_related(
                "payment", "refund", "invoice"
            )
        ]
    context = {
        **admin.site.each_context(request),
        "title": _("Reconciliation with Stripe"),
        "run": run,
        "runs": runs,
        "differences": differences,
        "can_run": request.user.has_perm("subscriptions.run_reconciliation"),
    }
    return TemplateResponse(request, "admin/billing/reconciliation.html", context)


@require_POST
def reconciliation_start(request):
    _require(request, "subscriptions.run_reconciliation")
    tasks.reconcile.delay()
    messages.success(request, _("A reconciliation has started. Reload this page in a minute to see it."))
    return redirect("billing_admin:reconciliation")
