"""The public pricing table: each plan in one billing cycle, priced per month, with its saving.

Pure functions over prices already read (no queries), shared by the pricing page and signup.
"""

from dataclasses import dataclass

from billing_portal.lib.money import round_half_up_div

from . import lifecycle
from .models import Plan, Price

CYCLES = [lifecycle.MONTHLY, lifecycle.ANNUAL, lifecycle.ANNUAL_COMMITMENT_MONTHLY]


def per_month_minor(price: Price) -> int:
    """What the price comes to per month (an annual price divided by 12, rounded half up)."""
    return round_half_up_div(price.amount_minor, lifecycle.CYCLE_MONTHS[price.cycle])


def per_year_minor(price: Price) -> int:
    return price.amount_minor * (12 // lifecycle.CYCLE_MONTHS[price.cycle])


def annual_saving(price: Price, monthly: Price | None) -> tuple[int, int]:
    """(minor units, whole percent) a year on `price` saves against 12 months of `monthly`."""
    if monthly is None or price.cycle == lifecycle.MONTHLY or price.is_free:
        return 0, 0
    full = per_year_minor(monthly)
    saving = max(0, full - per_year_minor(price))
    return saving, (round_half_up_div(100 * saving, full) if saving else 0)


@dataclass(frozen=True)
class PlanOffer:
    """One plan on the pricing page, in the chosen cycle."""

    plan: Plan
    price: Price | None  # None when the plan has no price in this cycle
    per_month_minor: int
    saving_minor: int
    saving_percent: int
    fallback_cycle: str  # a cycle the plan does have, when `price` is None

    @property
    def is_free(self) -> bool:
        return self.price is not None and self.price.is_free


def plan_offers(*, prices: list[Price], cycle: str) -> list[PlanOffer]:
    """Plans in the order of `prices` (by rank), each with its price in `cycle`.

    A free plan costs nothing in every cycle, so it is shown in every cycle with whichever
    free price it has.
    """
    by_plan: dict[int, dict[str, Price]] = {}
    plans: dict[int, Plan] = {}
    for price in prices:
        plans.setdefault(price.plan_id, price.plan)
        by_plan.setdefault(price.plan_id, {})[price.cycle] = price
    offers = []
    for plan_id, plan in plans.items():
        cycles = by_plan[plan_id]
        price = cycles.get(cycle)
        if price is None and all(p.is_free for p in cycles.values()):
            price = cycles.get(lifecycle.MONTHLY) or next(iter(cycles.values()))
        if price is None:
            fallback = next(c for c in CYCLES if c in cycles)
            offers.append(PlanOffer(plan, None, 0, 0, 0, fallback))
            continue
        saving, percent = annual_saving(price, cycles.get(lifecycle.MONTHLY))
        offers.append(PlanOffer(plan, price, per_month_minor(price), saving, percent, ""))
    return offers


def best_saving_percent(*, prices: list[Price], cycle: str) -> int:
    """The largest saving in percent that `cycle` offers on any plan (0 if none)."""
    return max((offer.saving_percent for offer in plan_offers(prices=prices, cycle=cycle)), default=0)
