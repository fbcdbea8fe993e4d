"""The revenue dashboard's figures and charts, read in a bounded number of queries.

MRR and everything that happens to it are replayed from the audit log (`SubscriptionEvent`,
which records each subscription's status and price after every change), so any past month can
be shown exactly as it was. The replay starts from each subscription's state when the first month
shown begins (its last event before it) and reads the events of the months shown: the work grows
with the months shown and the number of subscriptions, not with the years of history. The
definitions are in docs/rules.md ("Revenue dashboard").
"""

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.apps import apps
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing_portal.lib.money import round_half_up_div

from . import lifecycle, selectors
from .models import Subscription, SubscriptionEvent
from .templatetags.billing import BADGES

# MRR counts subscriptions that are billed: active (also when canceling) and past due (the
# invoice is still being collected). Trials and paused subscriptions pay nothing: not counted.
MRR_STATUSES = frozenset({lifecycle.ACTIVE, lifecycle.PAST_DUE})
MONTHS_SHOWN = 12
RECENT_DAYS = 90
# Involuntary churn: subscriptions that dunning gave up on (canceled, or paused by the final action).
INVOLUNTARY_KINDS = frozenset({"dunning_canceled", "dunning_paused"})
MOVEMENTS = ("new", "expansion", "reactivation", "contraction", "churn")
MOVEMENT_LABELS = {
    "new": pgettext_lazy("MRR movement", "New"),
    "expansion": _("Expansion"),
    "reactivation": _("Reactivation"),
    "contraction": _("Contraction"),
    "churn": _("Churn"),
}


def monthly_minor(amount_minor: int, cycle: str) -> int:
    """A price's share of one month: annual prices / 12 rounded half up, monthly ones as they are."""
    return round_half_up_div(amount_minor, lifecycle.CYCLE_MONTHS[cycle])


def mrr_minor(*, currency: str) -> int:
    """MRR now from the subscriptions themselves (one query); the replay must agree with it."""
    rows = Subscription.objects.filter(status__in=MRR_STATUSES, currency=currency).values_list(
        "amount_minor", "price__cycle"
    )
    return sum(monthly_minor(amount, cycle) for amount, cycle in rows)


def percent(part: int, whole: int) -> Decimal | None:
    """part / whole in percent with one decimal, or None when there is nothing to divide."""
    if not whole:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Month:
    """One month (UTC) of the dashboard: MRR at its start and end and what moved it."""

    start: datetime
    mrr_start_minor: int = 0
    mrr_end_minor: int = 0
    new_minor: int = 0
    expansion_minor: int = 0
    reactivation_minor: int = 0
    contraction_minor: int = 0
    churn_minor: int = 0
    paying_at_start: int = 0  # subscriptions counted in MRR when the month began
    involuntary_churned: int = 0
    involuntary_churn_minor: int = 0
    trials_ended: int = 0
    trials_converted: int = 0
    dunning_recovered: int = 0
    dunning_lost: int = 0

    @property
    def net_minor(self) -> int:
        return self.mrr_end_minor - self.mrr_start_minor

    @property
    def trial_conversion_percent(self) -> Decimal | None:
        return percent(self.trials_converted, self.trials_ended)

    @property
    def involuntary_churn_percent(self) -> Decimal | None:
        return percent(self.involuntary_churned, self.paying_at_start)

    @property
    def dunning_recovery_percent(self) -> Decimal | None:
        return percent(self.dunning_recovered, self.dunning_recovered + self.dunning_lost)


@dataclass
class Recent:
    """Rates over the last RECENT_DAYS days (trials by the day they ended, dunning by the day it ended)."""

    trials_ended: int = 0
    trials_converted: int = 0
    involuntary_churned: int = 0
    involuntary_churn_minor: int = 0
    dunning_recovered: int = 0
    dunning_lost: int = 0

    @property
    def trial_conversion_percent(self) -> Decimal | None:
        return percent(self.trials_converted, self.trials_ended)

    @property
    def dunning_recovery_percent(self) -> Decimal | None:
        return percent(self.dunning_recovered, self.dunning_recovered + self.dunning_lost)


@dataclass
class PlanRow:
    """Live subscriptions of one plan by badge (canceling apart from active and trialing)."""

    plan: str
    rank: int
    counts: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def cells(self) -> list[int]:
        return [self.counts.get(badge, 0) for badge in BADGE_ORDER]


BADGE_ORDER = ["trialing", "active", "canceling", "past_due", "paused"]


@dataclass
class SaveRate:
    available: bool
    saved: int = 0
    total: int = 0

    @property
    def percent(self) -> Decimal | None:
        return percent(self.saved, self.total)


@dataclass
class Dashboard:
    now: datetime
    currency: str
    currencies: list[str]
    months: list[Month]
    recent: Recent
    plans: list[PlanRow]
    save_rate: SaveRate
    mrr_chart: dict
    movement_chart: dict
    plan_chart: dict

    @property
    def mrr_minor(self) -> int:
        return self.months[-1].mrr_end_minor

    @property
    def this_month(self) -> Month:
        return self.months[-1]

    @property
    def recent_since(self) -> datetime:
        return self.now - timedelta(days=RECENT_DAYS)

    @property
    def badges(self) -> list[str]:
        return BADGE_ORDER

    @property
    def status_totals(self) -> list[int]:
        return [sum(row.counts.get(badge, 0) for row in self.plans) for badge in BADGE_ORDER]


def month_starts(now: datetime, count: int = MONTHS_SHOWN) -> list[datetime]:
    """The first instants (UTC) of the `count` months that end with the current one."""
    now = now.astimezone(UTC)
    year, month = now.year, now.month
    starts = []
    for _i in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


# What the replay reads of each event, in this order.
EVENT_FIELDS = (
    "subscription_id",
    "subscription__account_id",
    "kind",
    "from_status",
    "to_status",
    "created_at",
    "price__amount_minor",
    "price__cycle",
    "price__currency",
    "subscription__currency",
)


def revenue_dashboard(*, now: datetime, currency: str | None = None) -> Dashboard:
    """Everything the dashboard page shows, in three or four queries (plus the retention app's, if any)."""
    starts = month_starts(now)
    since = starts[0]  # the first month shown; the key figures' 90 days fall inside the months
    events = _state_at(since) + _events_between(since, now)
    currencies = sorted({row[9] for row in events})
    currency = currency if currency in currencies else (currencies[0] if currencies else "eur")
    months, recent = _replay(
        events, starts, now, currency, paid_before=lambda accounts: _accounts_paid_before(accounts, since, currency)
    )
    plans = _plans()
    return Dashboard(
        now=now,
        currency=currency,
        currencies=currencies,
        months=months,
        recent=recent,
        plans=plans,
        save_rate=_save_rate(now),
        mrr_chart=_mrr_chart(months),
        movement_chart=_movement_chart(months),
        plan_chart=_plan_chart(plans),
    )


def _state_at(since: datetime) -> list[tuple]:
    """Each subscription's last event before `since`: its status and price when the months shown
    begin. One row per subscription, however long its history (read from the newest-first index)."""
    last_before = SubscriptionEvent.objects.filter(subscription=OuterRef("pk"), created_at__lt=since).order_by(
        *selectors.NEWEST_FIRST
    )
    last_ids = Subscription.objects.annotate(last_id=Subquery(last_before.values("pk")[:1])).values("last_id")
    return list(
        SubscriptionEvent.objects.filter(pk__in=last_ids).order_by("created_at", "id").values_list(*EVENT_FIELDS)
    )


def _events_between(since: datetime, now: datetime) -> list[tuple]:
    return list(
        SubscriptionEvent.objects.filter(created_at__gte=since, created_at__lte=now)
        .order_by("created_at", "id")
        .values_list(*EVENT_FIELDS)
    )


def _accounts_paid_before(accounts: set[int], since: datetime, currency: str) -> set[int]:
    """Of these accounts, those that counted in MRR at some moment before `since`: their first
    payment in the months shown is a reactivation, not new revenue. Reads only their history."""
    if not accounts:
        return set()
    rows = SubscriptionEvent.objects.filter(
        subscription__account_id__in=accounts,
        subscription__currency=currency,
        created_at__lt=since,
        to_status__in=MRR_STATUSES,
        price__currency=currency,
    ).values_list("subscription__account_id", "price__amount_minor", "price__cycle")
    return {account_id for account_id, amount, cycle in rows if monthly_minor(amount, cycle)}


def _replay(
    events: list, starts: list[datetime], now: datetime, currency: str, *, paid_before: Callable[[set[int]], set[int]]
) -> tuple[list[Month], Recent]:
    """Walk the audit log once, keeping each subscription's MRR, and cut it at month boundaries.

    `events` begin with each subscription's state before the first month (or its whole history);
    `paid_before(accounts)` tells which of the accounts that first pay in the months shown, as far
    as those events tell, had paid earlier."""
    months = [Month(start=start) for start in starts]
    recent, recent_since = Recent(), now - timedelta(days=RECENT_DAYS)
    sub_mrr: dict[int, int] = {}
    sub_account: dict[int, int] = {}
    first_paying: dict[int, datetime] = {}  # when each account first counted in MRR, as far as `events` tell
    trial_ended: dict[int, tuple[int | None, bool]] = {}  # sub -> (month index, in recent window)
    snapshots: list[dict[int, int]] = []
    paying_counts: list[int] = []
    boundaries = [*starts, None]  # the last snapshot is taken at `now`, after every event

    def account_totals() -> dict[int, int]:
        totals: dict[int, int] = {}
        for sub_id, value in sub_mrr.items():
            if value:
                totals[sub_account[sub_id]] = totals.get(sub_account[sub_id], 0) + value
        return totals

    position = 0
    for row in events:
        sub_id, account_id, kind, from_status, to_status, at, amount, cycle, price_currency, sub_currency = row
        while boundaries[position] is not None and at >= boundaries[position]:
            snapshots.append(account_totals())
            paying_counts.append(sum(1 for value in sub_mrr.values() if value))
            position += 1
        if sub_currency != currency:
            continue
        index = bisect_right(starts, at) - 1  # -1: before the months shown
        in_recent = at >= recent_since
        before = sub_mrr.get(sub_id, 0)
        counted = to_status in MRR_STATUSES and amount is not None and price_currency == currency
        after = monthly_minor(amount, cycle) if counted else 0
        sub_mrr[sub_id], sub_account[sub_id] = after, account_id
        if after and account_id not in first_paying:
            first_paying[account_id] = at

        if from_status == lifecycle.TRIALING and to_status not in (lifecycle.TRIALING, ""):
            trial_ended[sub_id] = (index, in_recent)
            _count_trial(months, recent, index, in_recent, converted=False)
        if to_status == lifecycle.ACTIVE and sub_id in trial_ended:
            # Converted when its first payment succeeds, at the trial end or during dunning after it.
            ended_index, ended_recent = trial_ended.pop(sub_id)
            _count_trial(months, recent, ended_index, ended_recent, converted=True)
        if kind in INVOLUNTARY_KINDS:
            if index >= 0:
                months[index].involuntary_churned += 1
                months[index].involuntary_churn_minor += before
            if in_recent:
                recent.involuntary_churned += 1
                recent.involuntary_churn_minor += before
        if from_status == lifecycle.PAST_DUE and to_status != lifecycle.PAST_DUE:
            recovered = to_status == lifecycle.ACTIVE
            if index >= 0:
                if recovered:
                    months[index].dunning_recovered += 1
                else:
                    months[index].dunning_lost += 1
            if in_recent:
                if recovered:
                    recent.dunning_recovered += 1
                else:
                    recent.dunning_lost += 1
    while len(snapshots) < len(boundaries):
        snapshots.append(account_totals())
        paying_counts.append(sum(1 for value in sub_mrr.values() if value))

    paid_earlier = paid_before({account for account, at in first_paying.items() if at >= starts[0]})
    for index, month in enumerate(months):
        start, end = snapshots[index], snapshots[index + 1]
        month.mrr_start_minor, month.mrr_end_minor = sum(start.values()), sum(end.values())
        month.paying_at_start = paying_counts[index]
        for account_id in start.keys() | end.keys():
            was, now_value = start.get(account_id, 0), end.get(account_id, 0)
            if was == now_value:
                continue
            if not was:
                if account_id in paid_earlier or first_paying[account_id] < month.start:
                    month.reactivation_minor += now_value
                else:
                    month.new_minor += now_value
            elif not now_value:
                month.churn_minor += was
            elif now_value > was:
                month.expansion_minor += now_value - was
            else:
                month.contraction_minor += was - now_value
    return months, recent


def _count_trial(months: list[Month], recent: Recent, index: int, in_recent: bool, *, converted: bool) -> None:
    if index >= 0:
        if converted:
            months[index].trials_converted += 1
        else:
            months[index].trials_ended += 1
    if in_recent:
        if converted:
            recent.trials_converted += 1
        else:
            recent.trials_ended += 1


def _plans() -> list[PlanRow]:
    """Live subscriptions by plan and badge, in one query."""
    canceling = Q(cancel_at__isnull=False, status__in=[lifecycle.TRIALING, lifecycle.ACTIVE])
    rows = (
        Subscription.objects.live()
        .values("price__plan_id", "price__plan__name", "price__plan__rank", "status")
        .annotate(total=Count("id"), canceling=Count("id", filter=canceling))
        .order_by("price__plan__rank", "price__plan__name")
    )
    plans: dict[int, PlanRow] = {}
    for row in rows:
        plan = plans.setdefault(
            row["price__plan_id"], PlanRow(plan=row["price__plan__name"], rank=row["price__plan__rank"])
        )
        plan.counts[row["status"]] = plan.counts.get(row["status"], 0) + row["total"] - row["canceling"]
        if row["canceling"]:
            plan.counts["canceling"] = plan.counts.get("canceling", 0) + row["canceling"]
    return list(plans.values())


def _save_rate(now: datetime) -> SaveRate:
    """From the retention app (cancellation flows) when it is installed; otherwise not available.

    The app provides `retention.selectors.cancellation_save_rate(*, start, end) -> (saved, total)`.
    """
    if not apps.is_installed("retention"):
        return SaveRate(available=False)
    from retention import selectors as retention_selectors

    saved, total = retention_selectors.cancellation_save_rate(start=now - timedelta(days=RECENT_DAYS), end=now)
    return SaveRate(available=True, saved=int(saved), total=int(total))


# --- Charts: geometry for inline SVG, drawn by the template (no JavaScript, no library) -----------
CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 8, 24, 36  # room for value labels above and month labels below
MOVEMENT_COLOURS = {
    "new": "#3049d1",
    "expansion": "#067647",
    "reactivation": "#7a5af8",
    "contraction": "#dc6803",
    "churn": "#b42318",
}
BADGE_COLOURS = {
    "trialing": "#6172f3",
    "active": "#12b76a",
    "canceling": "#f79009",
    "past_due": "#d92d20",
    "paused": "#98a2b3",
}


def _mrr_chart(months: list[Month]) -> dict:
    """One bar per month: MRR at the month's end (now, for the current month)."""
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    top = max((month.mrr_end_minor for month in months), default=0) or 1
    slot = (CHART_WIDTH - PLOT_LEFT) / len(months)
    bars = []
    for index, month in enumerate(months):
        height = round(plot_height * month.mrr_end_minor / top, 1)
        x = round(PLOT_LEFT + index * slot + slot * 0.15, 1)
        bars.append(
            {
                "month": month,
                "value": month.mrr_end_minor,
                "x": x,
                "width": round(slot * 0.7, 1),
                "y": round(PLOT_TOP + plot_height - height, 1),
                "height": height,
                "label_x": round(x + slot * 0.35, 1),
                "value_y": round(PLOT_TOP + plot_height - height - 6, 1),
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": PLOT_TOP + plot_height,
        "label_y": CHART_HEIGHT - 14,
        "bars": bars,
    }


def _movement_chart(months: list[Month]) -> dict:
    """Per month, gains stacked up from the zero line and losses stacked down from it."""
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    ups = [month.new_minor + month.expansion_minor + month.reactivation_minor for month in months]
    downs = [month.contraction_minor + month.churn_minor for month in months]
    top, bottom = max(ups, default=0), max(downs, default=0)
    scale = plot_height / ((top + bottom) or 1)
    zero = PLOT_TOP + (top * scale if top + bottom else plot_height / 2)
    slot = (CHART_WIDTH - PLOT_LEFT) / len(months)
    segments, labels = [], []
    for index, month in enumerate(months):
        x = round(PLOT_LEFT + index * slot + slot * 0.15, 1)
        labels.append({"month": month, "x": round(x + slot * 0.35, 1)})
        up, down = zero, zero
        for name in ("new", "expansion", "reactivation"):
            height = getattr(month, f"{name}_minor") * scale
            if height:
                up -= height
                segments.append(_segment(name, month, x, slot, up, height))
        for name in ("contraction", "churn"):
            height = getattr(month, f"{name}_minor") * scale
            if height:
                segments.append(_segment(name, month, x, slot, down, height))
                down += height
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "zero": round(zero, 1),
        "label_y": CHART_HEIGHT - 14,
        "segments": segments,
        "labels": labels,
        "legend": [
            {"name": name, "label": MOVEMENT_LABELS[name], "colour": MOVEMENT_COLOURS[name]} for name in MOVEMENTS
        ],
    }


def _segment(name: str, month: Month, x: float, slot: float, y: float, height: float) -> dict:
    return {
        "name": name,
        "label": MOVEMENT_LABELS[name],
        "month": month,
        "value": getattr(month, f"{name}_minor"),
        "colour": MOVEMENT_COLOURS[name],
        "x": x,
        "width": round(slot * 0.7, 1),
        "y": round(y, 1),
        "height": round(height, 1),
    }


def _plan_chart(plans: list[PlanRow]) -> dict:
    """One horizontal bar per plan, split by badge."""
    row_height, label_width, width = 34, 110, 480
    top = max((plan.total for plan in plans), default=0) or 1
    scale = (width - label_width - 48) / top
    rows = []
    for index, plan in enumerate(plans):
        y = 8 + index * row_height
        x = label_width
        segments = []
        for badge in BADGE_ORDER:
            count = plan.counts.get(badge, 0)
            if count:
                segments.append(
                    {
                        "badge": badge,
                        "label": BADGES[badge],
                        "count": count,
                        "colour": BADGE_COLOURS[badge],
                        "x": round(x, 1),
                        "width": round(count * scale, 1),
                    }
                )
                x += count * scale
        rows.append({"plan": plan, "y": y, "text_y": y + 17, "segments": segments, "total_x": round(x + 6, 1)})
    return {
        "width": width,
        "height": 16 + row_height * max(len(plans), 1),
        "label_width": label_width,
        "bar_height": 24,
        "rows": rows,
        "legend": [{"badge": badge, "colour": BADGE_COLOURS[badge]} for badge in BADGE_ORDER],
    }
