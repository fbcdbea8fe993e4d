"""Admin: the offers operators configure, every cancellation flow, session requests, and the figures.

Flows are read-only here (the flow and the daily job write them). The report page shows, for a
chosen period, flows started, save rate, saves by offer, cancellations by reason and the
free-text answers, and exports the flows as CSV.
"""

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing_portal.lib import clock

from . import selectors
from .export import flows_csv_response
from .models import CancellationFlow, OfferKind, Reason, RetentionOffer, SessionRequest


@admin.register(RetentionOffer)
class RetentionOfferAdmin(admin.ModelAdmin):
    list_display = ["reason", "kind", "terms", "is_active", "order"]
    list_display_links = ["reason", "kind"]
    list_editable = ["is_active", "order"]
    list_filter = ["reason", "kind", "is_active"]
    list_select_related = ["target_price__plan"]
    ordering = ["reason", "order", "id"]
    fields = [
        "reason",
        "kind",
        "is_active",
        "order",
        "discount_percent",
        "discount_periods",
        "pause_months",
        "target_price",
    ]

    @admin.display(description=_("terms"))
    def terms(self, offer: RetentionOffer) -> str:
        return offer.terms_text

    def has_delete_permission(self, request, obj=None):
        # An offer that was shown is history: switch it off instead.
        if obj is not None and obj.flows.exists():
            return False
        return super().has_delete_permission(request, obj)


class SessionRequestInline(admin.StackedInline):
    model = SessionRequest
    extra = 0
    can_delete = False
    fields = ["status", "proposed", "note", "contact_email", "team_notified_at"]
    readonly_fields = fields

    @admin.display(description=_("proposed times"))
    def proposed(self, obj: SessionRequest) -> str:
        return ", ".join(f"{moment:%Y-%m-%d %H:%M} UTC" for moment in obj.proposed_times_parsed)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReportForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To (inclusive)"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.ChoiceField(
        label=_("Reason"), required=False, choices=[("", _("All")), *Reason.choices, ("none", _("No reason given"))]
    )
    offer_kind = forms.ChoiceField(
        label=_("Offer shown"), required=False, choices=[("", _("All")), *OfferKind.choices, ("none", _("No offer"))]
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["end"] < cleaned["start"]:
            raise forms.ValidationError(_("The end date is before the start date."))
        return cleaned

    def period(self) -> tuple[datetime, datetime]:
        """[start 00:00 UTC, the day after end 00:00 UTC)."""
        start = datetime.combine(self.cleaned_data["start"], time.min, tzinfo=UTC)
        end = datetime.combine(self.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=UTC)
        return start, end


@admin.register(CancellationFlow)
class CancellationFlowAdmin(admin.ModelAdmin):
    list_display = ["started_at", "account", "reason", "offer_kind", "outcome", "save_held", "finished_at"]
    list_filter = ["outcome", "reason", "offer_kind", "save_held", ("started_at", admin.DateFieldListFilter)]
    date_hierarchy = "started_at"
    search_fields = ["account__name", "account__billing_email", "reason_text"]
    list_select_related = ["account"]
    actions = ["export_csv"]
    change_list_template = "admin/retention/cancellationflow/change_list.html"
    inlines = [SessionRequestInline]
    readonly_fields = [
        "account",
        "subscription",
        "started_by",
        "reason",
        "reason_text",
        "offer",
        "offer_kind",
        "offer_terms_text",
        "offer_accepted_at",
        "outcome",
        "cancel_at",
        "started_at",
        "finished_at",
        "undone_at",
        "save_held",
        "save_checked_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Export selected flows as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return flows_csv_response(queryset, "cancellation-flows.csv")

    def get_urls(self):
        report = path("report/", self.admin_site.admin_view(self.report_view), name="retention_cancellationflow_report")
        return [report, *super().get_urls()]

    def report_view(self, request):
        """The figures for a chosen period (default: the last 30 days), as a page or as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = clock.now().astimezone(UTC).date()
        data = request.GET if "start" in request.GET else {"start": today - timedelta(days=29), "end": today}
        form = ReportForm(data)
        figures = None
        if form.is_valid():
            start, end = form.period()
            filters = {"reason": form.cleaned_data["reason"], "offer_kind": form.cleaned_data["offer_kind"]}
            if request.GET.get("format") == "csv":
                flows = selectors.flows_filtered(start=start, end=end, **filters)
                name = f"cancellation-flows-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
                return flows_csv_response(flows, name)
            figures = selectors.flow_figures(start=start, end=end, **filters)
        elif request.GET.get("format") == "csv":
            messages.error(request, _("Choose a valid period to export."))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Cancellation flows: what we learn"),
            "form": form,
            "figures": figures,
            "query": request.GET.urlencode() if "start" in request.GET else "",
            "csv_query": _csv_query(form) if figures else "",
        }
        return TemplateResponse(request, "admin/retention/cancellationflow/report.html", context)


def _csv_query(form: ReportForm) -> str:
    values = {name: form.cleaned_data.get(name) or "" for name in ("start", "end", "reason", "offer_kind")}
    return urlencode({**values, "format": "csv"})


@admin.register(SessionRequest)
class SessionRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "contact_email", "proposed", "status", "scheduled_for", "team_notified_at"]
    list_filter = ["status"]
    search_fields = ["account__name", "contact_email", "note"]
    list_select_related = ["account"]
    fields = [
        "account",
        "flow",
        "requested_by",
        "contact_email",
        "proposed",
        "note",
        "created_at",
        "team_notified_at",
        "status",
        "scheduled_for",
        "operator_note",
    ]
    readonly_fields = [
        "account",
        "flow",
        "requested_by",
        "contact_email",
        "proposed",
        "note",
        "created_at",
        "team_notified_at",
    ]
    actions = ["mark_done"]

    @admin.display(description=_("proposed times"))
    def proposed(self, obj: SessionRequest) -> str:
        return ", ".join(f"{moment:%Y-%m-%d %H:%M} UTC" for moment in obj.proposed_times_parsed)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark as done"), permissions=["change"])
    def mark_done(self, request, queryset):
        updated = queryset.exclude(status=SessionRequest.DONE).update(status=SessionRequest.DONE)
        self.message_user(
            request,
            ngettext("%(count)s session request marked as done.", "%(count)s session requests marked as done.", updated)
            % {"count": updated},
        )
