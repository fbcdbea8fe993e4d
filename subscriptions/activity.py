"""The recent-activity list of the billing page: audit events in words a customer understands."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from accounts.models import Account

from . import selectors
from .models import Price, SubscriptionEvent
from .templatetags.billing import money


@dataclass(frozen=True)
class ActivityLine:
    at: datetime
    text: str
    who: str
    tone: str  # "ok", "warn", "bad" or "" (a small coloured dot; the text says it all)


def account_activity(*, account: Account, limit: int = selectors.RECENT_EVENTS) -> list[ActivityLine]:
    """The account's latest events, described; two queries whatever the history size."""
    events = selectors.account_events_recent(account=account, limit=limit)
    price_ids = [event.data.get(key) for event in events for key in ("price", "from_price")]
    prices = selectors.prices_by_id(ids=[pk for pk in price_ids if pk is not None])
    zone = ZoneInfo(account.timezone)
    return [_line(event, prices, zone, account.currency) for event in events]


def date_in(value: datetime, zone: ZoneInfo) -> str:
    """A date in the page's language and the account's timezone."""
    return formats.date_format(timezone.localtime(value, zone), "DATE_FORMAT")


def _price_name(prices: dict[int, Price], pk) -> str:
    price = prices.get(pk) if isinstance(pk, int) else None
    if price is None:
        return _("another plan")
    return f"{price.plan.name} ({price.get_cycle_display().lower()})"


def _iso_date(data: dict, key: str, zone: ZoneInfo) -> str:
    try:
        return date_in(datetime.fromisoformat(data[key]), zone)
    except (KeyError, TypeError, ValueError):
        return "—"


def _line(event: SubscriptionEvent, prices: dict[int, Price], zone: ZoneInfo, currency: str) -> ActivityLine:
    data = event.data or {}
    amount = money(data["amount_minor"], currency) if isinstance(data.get("amount_minor"), int) else ""
    kind = event.kind
    tone = ""
    if kind == "trial_started":
        text = _("Trial started on %(plan)s") % {"plan": _price_name(prices, data.get("price"))}
    elif kind == "started":
        text = _("Subscription started on %(plan)s") % {"plan": _price_name(prices, data.get("price"))}
        tone = "ok"
    elif kind == "trial_converted":
        text = _("Trial ended; payment of %(amount)s received") % {"amount": amount} if amount else _("Trial ended")
        tone = "ok"
    elif kind == "trial_expired":
        text = _("Trial expired without a card on file")
        tone = "bad"
    elif kind in ("trial_payment_failed", "renewal_failed", "payment_retry_failed"):
        text = _("Payment failed")
        tone = "bad"
    elif kind == "renewed":
        text = _("Renewed for a new period")
    elif kind == "payment_succeeded":
        text = _("Payment of %(amount)s received") % {"amount": amount} if amount else _("Payment received")
        tone = "ok"
    elif kind == "payment_recovered":
        text = _("Overdue payment of %(amount)s received") % {"amount": amount} if amount else _("Payment received")
        tone = "ok"
    elif kind == "dunning_canceled":
        text = _("Subscription ended after failed payments")
        tone = "bad"
    elif kind == "dunning_paused":
        text = _("Subscription paused after failed payments")
        tone = "bad"
    elif kind == "cancel_scheduled":
        text = _("Cancellation scheduled for %(date)s") % {"date": _iso_date(data, "cancel_at", zone)}
        tone = "warn"
    elif kind == "cancel_undone":
        text = _("Cancellation undone")
        tone = "ok"
    elif kind in ("cancel_reached", "canceled_now"):
        text = _("Subscription ended")
    elif kind == "paused":
        text = _("Paused until %(date)s") % {"date": _iso_date(data, "resume_at", zone)}
    elif kind == "resumed":
        text = _("Resumed")
        tone = "ok"
    elif kind == "price_changed":
        text = _("Plan changed from %(old)s to %(new)s") % {
            "old": _price_name(prices, data.get("from_price")),
            "new": _price_name(prices, data.get("price")),
        }
    elif kind == "price_change_scheduled":
        text = _("Change to %(plan)s scheduled") % {"plan": _price_name(prices, data.get("price"))}
    elif kind == "price_change_withdrawn":
        text = _("Scheduled change to %(plan)s withdrawn") % {"plan": _price_name(prices, data.get("price"))}
    elif kind == "trial_extended":
        text = _("Trial extended until %(date)s") % {"date": _iso_date(data, "to", zone)}
        tone = "ok"
    elif kind == "discount_applied" and isinstance(data.get("periods"), int):
        text = ngettext(
            "Discount of %(percent)s%% on the next invoice",
            "Discount of %(percent)s%% on the next %(periods)s invoices",
            data["periods"],
        ) % {"percent": data.get("percent"), "periods": data["periods"]}
        tone = "ok"
    elif kind == "payment_refunded":
        text = _("Refund of %(amount)s") % {"amount": amount} if amount else _("Payment refunded")
    elif kind == "invoice_uncollectible":
        text = _("Unpaid invoice %(number)s closed") % {"number": data.get("invoice", "")}
        tone = "warn"
    else:
        # An event this list does not know yet (a feature added later): say something true, in the
        # page's language, rather than the event's internal name. Add a line for it above.
        text = _("Subscription updated")
    return ActivityLine(at=event.created_at, text=text, who=_who(event), tone=tone)


def _who(event: SubscriptionEvent) -> str:
    if event.actor_kind == SubscriptionEvent.CUSTOMER and event.actor is not None:
        return event.actor.get_full_name()
    if event.actor_kind == SubscriptionEvent.OPERATOR:
        return pgettext("who did it", "Support team")
    return pgettext("who did it", "Automatic")
