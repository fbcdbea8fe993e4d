"""The export ZIP: account and members (JSON), history and money (CSV), printable invoices (HTML).

Amounts are integer minor units (as stored) plus a column formatted in the account's language;
dates in JSON and CSV are ISO 8601 in UTC, dates on the printable invoices are in the account's
timezone. Tables are streamed in chunks, so a large account never sits in memory at once.
"""

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import Account, Membership
from billing_portal.lib.money import format_money
from retention.models import CancellationFlow
from subscriptions import selectors as billing_selectors
from subscriptions.models import CreditEntry, Invoice, InvoiceLine, Payment, Subscription, SubscriptionEvent

CHUNK = 500

Progress = Callable[[int, int], None]  # (steps done, steps in all)

README = """\
Data export of account {account_id}, made {exported_at} (UTC).

account.json        the account: name, billing email, currency, language, timezone, card on file
members.json        everyone with access: name, email, role, member since
subscriptions.csv   every subscription, current and past
events.csv          the audit log: every change to a subscription (who, when, from, to, why)
invoices.csv        every invoice; amounts in minor units (cents) and formatted
invoice_lines.csv   the lines of every invoice
payments.csv        every attempt to collect an invoice
credit.csv          the account's credit ledger
cancellations.csv   every cancellation flow: reason, your words, the offer shown, the outcome
invoices/*.html     each invoice, printable (open in a browser and print to PDF)

Amounts in *_minor columns are whole minor units of the currency (1999 = 19.99 EUR).
Dates in JSON and CSV files are ISO 8601 in UTC.
"""


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


class _Writer:
    def __init__(self, archive: zipfile.ZipFile, account: Account, total: int, progress: Progress):
        self.archive = archive
        self.account = account
        self.total = total
        self.done = 0
        self.progress = progress

    def step(self) -> None:
        self.done += 1
        self.progress(self.done, self.total)

    def money(self, amount_minor: int, currency: str) -> str:
        return format_money(amount_minor, currency, self.account.language.replace("-", "_"))

    def text(self, name: str, content: str) -> None:
        self.archive.writestr(name, content)

    def json(self, name: str, data) -> None:
        self.text(name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        self.step()

    def csv(self, name: str, header: list[str], rows: Iterable[list]) -> None:
        with self.archive.open(name, "w") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
        self.step()


def export_steps(*, account: Account) -> int:
    """How many steps an export of this account takes: 10 files plus one per invoice."""
    return 10 + Invoice.objects.filter(account=account).count()


def export_write(*, account: Account, path: Path, now: datetime, progress: Progress) -> None:
    """Write the account's export ZIP to `path`, reporting progress after each step."""
    total = export_steps(account=account)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        out = _Writer(archive, account, total, progress)
        out.text("README.txt", README.format(account_id=account.pk, exported_at=_iso(now)))
        out.json("account.json", _account_data(account, out, now))
        out.json("members.json", _members_data(account))
        out.csv("subscriptions.csv", *_subscriptions(account, out))
        out.csv("events.csv", *_events(account))
        out.csv("invoices.csv", *_invoices(account, out))
        out.csv("invoice_lines.csv", *_invoice_lines(account))
        out.csv("payments.csv", *_payments(account, out))
        out.csv("credit.csv", *_credit(account, out))
        out.csv("cancellations.csv", *_cancellations(account))
        _printable_invoices(account, out)
        out.step()


def _account_data(account: Account, out: _Writer, now: datetime) -> dict:
    balance = billing_selectors.account_credit_balance_minor(account=account)
    card = None
    if account.card_last4:
        card = {
            "brand": account.card_brand,
            "last4": account.card_last4,
            "exp_month": account.card_exp_month,
            "exp_year": account.card_exp_year,
        }
    return {
        "id": account.pk,
        "name": account.name,
        "billing_email": account.billing_email,
        "currency": account.currency,
        "language": account.language,
        "timezone": account.timezone,
        "created_at": _iso(account.created_at),
        "card": card,
        "credit_balance_minor": balance,
        "credit_balance": out.money(balance, account.currency),
        "deletion_requested_at": _iso(account.deletion_requested_at) or None,
        "deletion_due_at": _iso(account.deletion_due_at) or None,
        "exported_at": _iso(now),
    }


def _members_data(account: Account) -> list[dict]:
    memberships = Membership.objects.filter(account=account).select_related("user").order_by("created_at", "id")
    return [
        {
            "name": membership.user.name,
            "email": membership.user.email,
            "role": membership.role,
            "member_since": _iso(membership.created_at),
            "last_login": _iso(membership.user.last_login) or None,
        }
        for membership in memberships
    ]


def _subscriptions(account: Account, out: _Writer):
    header = [
        "id",
        "plan",
        "cycle",
        "status",
        "amount_minor",
        "currency",
        "amount",
        "created_at",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "commitment_end_at",
        "cancel_at",
        "cancel_reason",
        "paused_at",
        "resume_at",
        "ended_at",
    ]
    subscriptions = (
        Subscription.objects.filter(account=account).select_related("price__plan").order_by("created_at", "id")
    )
    rows = (
        [
            sub.pk,
            sub.price.plan.name,
            sub.price.cycle,
            sub.status,
            sub.amount_minor,
            sub.currency,
            out.money(sub.amount_minor, sub.currency),
            _iso(sub.created_at),
            _iso(sub.current_period_start),
            _iso(sub.current_period_end),
            _iso(sub.trial_end),
            _iso(sub.commitment_end_at),
            _iso(sub.cancel_at),
            sub.cancel_reason,
            _iso(sub.paused_at),
            _iso(sub.resume_at),
            _iso(sub.ended_at),
        ]
        for sub in subscriptions.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _events(account: Account):
    header = [
        "created_at",
        "subscription_id",
        "kind",
        "from_status",
        "to_status",
        "actor_kind",
        "actor",
        "reason",
        "data",
    ]
    events = (
        SubscriptionEvent.objects.filter(subscription__account=account)
        .select_related("actor")
        .order_by("created_at", "id")
    )
    rows = (
        [
            _iso(event.created_at),
            event.subscription_id,
            event.kind,
            event.from_status,
            event.to_status,
            event.actor_kind,
            # The customer's own people by email; an operator or a job only by kind.
            event.actor.email if event.actor and event.actor_kind == SubscriptionEvent.CUSTOMER else "",
            event.reason,
            json.dumps(event.data, ensure_ascii=False, sort_keys=True) if event.data else "",
        ]
        for event in events.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _invoices(account: Account, out: _Writer):
    header = [
        "number",
        "created_at",
        "status",
        "billing_reason",
        "period_start",
        "period_end",
        "currency",
        "subtotal_minor",
        "credit_applied_minor",
        "amount_due_minor",
        "subtotal",
        "credit_applied",
        "amount_due",
        "paid_at",
        "closed_at",
        "customer_name",
        "customer_email",
        "file",
    ]
    rows = (
        [
            invoice.number,
            _iso(invoice.created_at),
            invoice.status,
            invoice.billing_reason,
            _iso(invoice.period_start),
            _iso(invoice.period_end),
            invoice.currency,
            invoice.subtotal_minor,
            invoice.credit_applied_minor,
            invoice.amount_due_minor,
            out.money(invoice.subtotal_minor, invoice.currency),
            out.money(invoice.credit_applied_minor, invoice.currency),
            out.money(invoice.amount_due_minor, invoice.currency),
            _iso(invoice.paid_at),
            _iso(invoice.closed_at),
            invoice.customer_name,
            invoice.customer_email,
            _invoice_file(invoice),
        ]
        for invoice in Invoice.objects.filter(account=account).order_by("created_at", "id").iterator(chunk_size=CHUNK)
    )
    return header, rows


def _invoice_file(invoice: Invoice) -> str:
    return f"invoices/invoice-{invoice.number}.html"


def _invoice_lines(account: Account):
    header = ["invoice", "kind", "description", "amount_minor", "currency", "period_start", "period_end"]
    lines = (
        InvoiceLine.objects.filter(invoice__account=account)
        .select_related("invoice")
        .order_by("invoice__created_at", "invoice_id", "id")
    )
    rows = (
        [
            line.invoice.number,
            line.kind,
            line.description,
            line.amount_minor,
            line.invoice.currency,
            _iso(line.period_start),
            _iso(line.period_end),
        ]
        for line in lines.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _payments(account: Account, out: _Writer):
    header = [
        "invoice",
        "attempt",
        "created_at",
        "status",
        "amount_minor",
        "currency",
        "amount",
        "refunded_minor",
        "failure_code",
        "failure_message",
        "finished_at",
    ]
    payments = Payment.objects.filter(invoice__account=account).select_related("invoice").order_by("created_at", "id")
    rows = (
        [
            payment.invoice.number,
            payment.attempt,
            _iso(payment.created_at),
            payment.status,
            payment.amount_minor,
            payment.currency,
            out.money(payment.amount_minor, payment.currency),
            payment.refunded_minor,
            payment.failure_code,
            payment.failure_message,
            _iso(payment.finished_at),
        ]
        for payment in payments.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _credit(account: Account, out: _Writer):
    header = ["created_at", "kind", "amount_minor", "currency", "amount", "invoice", "note"]
    entries = CreditEntry.objects.filter(account=account).select_related("invoice").order_by("created_at", "id")
    rows = (
        [
            _iso(entry.created_at),
            entry.kind,
            entry.amount_minor,
            entry.currency,
            out.money(entry.amount_minor, entry.currency),
            entry.invoice.number if entry.invoice else "",
            entry.note,
        ]
        for entry in entries.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _cancellations(account: Account):
    header = ["started_at", "reason", "reason_text", "offer_shown", "outcome", "finished_at"]
    flows = CancellationFlow.objects.filter(account=account).order_by("started_at", "id")
    rows = (
        [_iso(flow.started_at), flow.reason, flow.reason_text, flow.offer_kind, flow.outcome, _iso(flow.finished_at)]
        for flow in flows.iterator(chunk_size=CHUNK)
    )
    return header, rows


def _printable_invoices(account: Account, out: _Writer) -> None:
    invoices = (
        Invoice.objects.filter(account=account)
        .select_related("price__plan")
        .prefetch_related("lines")
        .order_by("created_at", "id")
    )
    with translation.override(account.language), timezone.override(account.timezone):
        for invoice in invoices.iterator(chunk_size=CHUNK):
            html = render_to_string("privacy/invoice_export.html", {"invoice": invoice, "account": account})
            out.text(_invoice_file(invoice), html)
            out.step()
