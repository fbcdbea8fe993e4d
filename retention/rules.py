"""The retention rules that need no database: how long a flow stays open, when a save counts,
and which payments a commitment still has before it ends."""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from billing_portal.lib.money import percent_of
from subscriptions import lifecycle

# A flow left open longer than this is abandoned (the daily job settles it).
ABANDON_AFTER = timedelta(days=1)
# A save counts only if the subscription is still live (and not set to end) this long after it.
SAVE_HOLDS_AFTER = timedelta(days=30)
# A customer who had a discount this recently is not offered another one.
DISCOUNT_AGAIN_AFTER = relativedelta(months=12)


def flow_expired(started_at: datetime, now: datetime) -> bool:
    return started_at <= now - ABANDON_AFTER


def payments_before(*, anchor: datetime, cycle: str, period_number: int, end: datetime) -> list[datetime]:
    """The renewal dates still to be charged before `end`: periods that start strictly before it.

    The next renewal is the end of the current period (number `period_number`); a renewal that
    falls on `end` itself never happens, because the subscription ends first.
    """
    dates = []
    n = period_number
    while (start := lifecycle.period_end(anchor, cycle, n)) < end:
        dates.append(start)
        n += 1
    return dates


def payment_amounts(*, amount_minor: int, count: int, discount_percent: int, discount_periods_left: int) -> list[int]:
    """What each of the next `count` invoices costs, the running discount applied to the first ones."""
    discounted = amount_minor - percent_of(amount_minor, discount_percent) if discount_percent else amount_minor
    return [discounted if i < discount_periods_left else amount_minor for i in range(count)]
