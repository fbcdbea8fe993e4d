"""CSV export of cancellation flows for operators (one row per flow)."""

import csv

from django.http import HttpResponse

from .models import CancellationFlow

HEADER = [
    "id",
    "started_at",
    "finished_at",
    "account_id",
    "account",
    "plan",
    "cycle",
    "reason",
    "reason_label",
    "reason_text",
    "offer_kind",
    "offer_terms",
    "offer_accepted_at",
    "outcome",
    "save_held",
    "cancel_at",
    "undone_at",
]


def _cell(value) -> str:
    """A cell that a spreadsheet will not run as a formula (free text comes from customers)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _when(moment) -> str:
    return moment.isoformat() if moment else ""


def flow_row(flow: CancellationFlow) -> list[str]:
    held = {True: "yes", False: "no", None: ""}[flow.save_held]
    if flow.outcome == CancellationFlow.SAVED and flow.save_held is None:
        held = "pending"
    subscription = flow.subscription
    return [
        _cell(value)
        for value in (
            flow.pk,
            _when(flow.started_at),
            _when(flow.finished_at),
            flow.account_id,
            flow.account.name,
            subscription.price.plan.name,
            subscription.price.cycle,
            flow.reason,
            flow.get_reason_display() if flow.reason else "",
            flow.reason_text,
            flow.offer_kind,
            flow.offer_terms_text,
            _when(flow.offer_accepted_at),
            flow.outcome,
            held,
            _when(flow.cancel_at),
            _when(flow.undone_at),
        )
    ]


def flows_csv_response(flows, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(HEADER)
    for flow in flows.select_related("account", "subscription__price__plan").order_by("started_at", "id"):
        writer.writerow(flow_row(flow))
    return response
