"""The pure billing rules: statuses and their transitions, periods, proration, pause, dunning.

No database and no clock here: every function takes what it needs (including `now`) as
arguments, so the rules can be tested on their own and jobs can travel in time.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing_portal.lib.money import round_half_up_div

# --- Statuses ----------------------------------------------------------------------------------
TRIALING = "trialing"
ACTIVE = "active"
PAST_DUE = "past_due"
PAUSED = "paused"
CANCELED = "canceled"

STATUS_CHOICES = [
    (TRIALING, pgettext_lazy("subscription status", "Trial")),
    (ACTIVE, pgettext_lazy("subscription status", "Active")),
    (PAST_DUE, pgettext_lazy("subscription status", "Past due")),
    (PAUSED, pgettext_lazy("subscription status", "Paused")),
    (CANCELED, pgettext_lazy("subscription status", "Canceled")),
]
STATUSES = [value for value, _label in STATUS_CHOICES]
# A live subscription is any that has not ended; an account has at most one.
LIVE_STATUSES = [TRIALING, ACTIVE, PAST_DUE, PAUSED]

# --- Cycles ------------------------------------------------------------------------------------
MONTHLY = "monthly"
ANNUAL = "annual"
ANNUAL_COMMITMENT_MONTHLY = "annual_commitment_monthly"

CYCLE_CHOICES = [
    (MONTHLY, _("Monthly")),
    (ANNUAL, _("Annual")),
    (ANNUAL_COMMITMENT_MONTHLY, _("Commit annually, pay monthly")),
]
CYCLE_MONTHS = {MONTHLY: 1, ANNUAL: 12, ANNUAL_COMMITMENT_MONTHLY: 1}
COMMITMENT_MONTHS = {ANNUAL_COMMITMENT_MONTHLY: 12}
PAUSE_MONTHS = (1, 2, 3)


class InvalidTransition(ValueError):
    """A change the rules refuse; the message says why, for the person who asked."""


# --- Transitions (SPEC section 3) ----------------------------------------------------------------
# event -> (statuses it may start from, resulting status; None keeps the status).
SAME = None
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "trial_started": (frozenset({""}), TRIALING),
    "started": (frozenset({""}), ACTIVE),
    "trial_converted": (frozenset({TRIALING}), ACTIVE),
    "trial_extended": (frozenset({TRIALING}), SAME),
    "trial_expired": (frozenset({TRIALING}), CANCELED),
    "trial_payment_failed": (frozenset({TRIALING}), PAST_DUE),
    "renewed": (frozenset({ACTIVE}), ACTIVE),
    "renewal_failed": (frozenset({ACTIVE}), PAST_DUE),
    "payment_recovered": (frozenset({PAST_DUE}), ACTIVE),
    "dunning_canceled": (frozenset({PAST_DUE}), CANCELED),
    "dunning_paused": (frozenset({PAST_DUE}), PAUSED),
    "cancel_scheduled": (frozenset({TRIALING, ACTIVE}), SAME),
    "cancel_undone": (frozenset({TRIALING, ACTIVE}), SAME),
    "cancel_reached": (frozenset({TRIALING, ACTIVE}), CANCELED),
    "paused": (frozenset({ACTIVE}), PAUSED),
    "resumed": (frozenset({PAUSED}), ACTIVE),
    "price_changed": (frozenset({TRIALING, ACTIVE}), SAME),
    "price_change_scheduled": (frozenset({TRIALING, ACTIVE}), SAME),
    "price_change_withdrawn": (frozenset({TRIALING, ACTIVE, PAST_DUE, PAUSED}), SAME),
    "canceled_now": (frozenset({TRIALING, ACTIVE, PAST_DUE, PAUSED}), CANCELED),
    # A retention offer: percent off the next invoices (the renewal applies it).
    "discount_applied": (frozenset({TRIALING, ACTIVE}), SAME),
}
# The most billing periods a discount may run for.
DISCOUNT_MAX_PERIODS = 24

# Why an event is refused in a status, in words a customer or operator can act on.
_REFUSALS = {
    PAST_DUE: _("A payment failed. Update your card to pay the open invoice first."),
    PAUSED: _("Your subscription is paused. Resume it first."),
    CANCELED: _("This subscription has ended. Resubscribe to start again."),
}


def next_status(current: str, event: str) -> str:
    """The status after `event` from `current`, or InvalidTransition with the reason."""
    try:
        allowed_from, to = TRANSITIONS[event]
    except KeyError:
        raise InvalidTransition(f"Unknown event {event!r}.") from None
    if current not in allowed_from:
        raise InvalidTransition(
            str(_REFUSALS.get(current, _("This change is not possible for a subscription in this state.")))
        )
    return current if to is SAME else to


def can(current: str, event: str) -> bool:
    """Whether `event` is allowed from `current` (for showing or hiding buttons)."""
    return current in TRANSITIONS.get(event, (frozenset(), None))[0]


# --- Periods (SPEC section 5) ----------------------------------------------------------------------
def period_end(anchor: datetime, cycle: str, n: int) -> datetime:
    """The end of period `n` (1-based): anchor + n cycles, counted from the anchor, day clamped.

    Anchor Jan 31 gives Feb 28 (29), Mar 31, Apr 30; annual from Feb 29 gives Feb 28.
    """
    return anchor + relativedelta(months=n * CYCLE_MONTHS[cycle])


def commitment_end(start: datetime, cycle: str) -> datetime | None:
    """When a commitment that starts at `start` ends, or None for prices without one."""
    months = COMMITMENT_MONTHS.get(cycle)
    return start + relativedelta(months=months) if months else None


def trial_end(start: datetime, trial_days: int) -> datetime:
    return start + timedelta(days=trial_days)


# --- Proration (SPEC section 4) --------------------------------------------------------------------
def unused_amount_minor(amount_minor: int, start: datetime, end: datetime, now: datetime) -> int:
    """Credit for the unused part of [start, end) at `now`, to the second, rounded half up."""
    total = (end - start) // timedelta(seconds=1)
    if total <= 0:
        return 0
    unused = max(0, min(total, (end - now) // timedelta(seconds=1)))
    return round_half_up_div(amount_minor * unused, total)


@dataclass(frozen=True)
class Proration:
    """The money of an immediate change: credit + due today = new amount + excess."""

    credit_minor: int  # unused part of what the current period cost
    amount_due_minor: int  # max(0, new amount - credit), before any account credit balance
    forfeited_minor: int  # excess credit lost (seed 004's rule)
    kept_as_credit_minor: int  # excess credit kept on the account (BILLING_PRORATION_EXCESS=credit)


def prorate_change(
    *,
    period_charge_minor: int,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    new_amount_minor: int,
    excess: str = "forfeit",
) -> Proration:
    """Credit the unused part of the current period against the new price (seed 004)."""
    if excess not in ("forfeit", "credit"):
        raise ValueError("excess must be 'forfeit' or 'credit'")
    credit = unused_amount_minor(period_charge_minor, period_start, period_end, now)
    due = max(0, new_amount_minor - credit)
    leftover = max(0, credit - new_amount_minor)
    return Proration(
        credit_minor=credit,
        amount_due_minor=due,
        forfeited_minor=leftover if excess == "forfeit" else 0,
        kept_as_credit_minor=leftover if excess == "credit" else 0,
    )


def change_applies_now(
    *, current_cycle: str, current_rank: int, new_cycle: str, new_rank: int, in_commitment: bool
) -> bool:
    """During a commitment only an upgrade in the same cycle applies now; the rest waits for its end."""
    if not in_commitment:
        return True
    return new_cycle == current_cycle and new_rank > current_rank


# --- Pause (SPEC section 7) -------------------------------------------------------------------------
def can_pause_cycle(cycle: str) -> bool:
    """Only plain monthly prices pause (not annual, not commitment prices: seed 003)."""
    return cycle == MONTHLY


def pause_resume_at(now: datetime, months: int) -> datetime:
    if months not in PAUSE_MONTHS:
        raise InvalidTransition(str(_("A pause lasts 1, 2 or 3 months.")))
    return now + relativedelta(months=months)


def shift_after_pause(moment: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
    """Move a date later by exactly the time spent paused, so no paid day is lost."""
    return moment + (resumed_at - paused_at)


# --- Dunning (SPEC section 8) -----------------------------------------------------------------------
def dunning_retry_at(first_failure_at: datetime, retry_days: list[int], retries_done: int) -> datetime | None:
    """When retry number `retries_done + 1` runs, counted from the first failure; None when exhausted."""
    if retries_done >= len(retry_days):
        return None
    return first_failure_at + timedelta(days=retry_days[retries_done])


def dunning_gives_up_at(first_failure_at: datetime, retry_days: list[int]) -> datetime:
    """When service stops if no retry succeeds (the last retry's date)."""
    return first_failure_at + timedelta(days=max(retry_days, default=0))
