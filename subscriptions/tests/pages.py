"""Helpers for the billing page tests: demo-like plans, customers in each role, snapshots."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.models import Membership
from subscriptions import lifecycle, services
from subscriptions.models import CreditEntry, Invoice, Payment, Subscription, SubscriptionEvent

from .factories import MembershipFactory, PlanFactory, PriceFactory, UserFactory, give_card, owner_with_account

# The one script of a page without card entry: busy buttons for its forms (static/js/forms.js).
FORMS_SCRIPT = '<script src="/static/js/forms.js" data-busy-label="Processing…" defer>'
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)  # subscriptions start here (April has 30 days)
NOW = T0 + timedelta(days=15)  # the pages are looked at exactly halfway through the period


@pytest.fixture
def frozen():
    """The pages' clock stands still at NOW."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def plans(db):
    """Free, Pro and Business in EUR, each monthly, annual and commit-annually-pay-monthly."""
    table = {
        "free": ("Free", 0, 0, {"monthly": 0, "annual": 0, "annual_commitment_monthly": 0}),
        "pro": ("Pro", 1, 0, {"monthly": 1900, "annual": 19000, "annual_commitment_monthly": 1700}),
        "business": ("Business", 2, 0, {"monthly": 4900, "annual": 49000, "annual_commitment_monthly": 4400}),
    }
    prices = {}
    for code, (name, rank, trial_days, amounts) in table.items():
        plan = PlanFactory(code=code, name=name, rank=rank, trial_days=trial_days, features=[f"{name} feature"])
        prices[code] = {
            cycle: PriceFactory(plan=plan, cycle=cycle, amount_minor=amount) for cycle, amount in amounts.items()
        }
    return prices


def teammate(account, role: str):
    """Another user of the same account, in `role`."""
    return MembershipFactory(account=account, role=role, user=UserFactory()).user


def customer(*, card: bool = True, **account_fields):
    """An owner and their account, with a working card on file (localstripe)."""
    owner, account = owner_with_account(**account_fields)
    if card:
        give_card(account)
        account.refresh_from_db()
    return owner, account


def subscribed(price, *, card: bool = True, now=T0):
    """An owner whose account subscribed to `price` at `now`."""
    owner, account = customer(card=card)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=now)
    return owner, account, sub


def past_due(price, *, card_number: str):
    """A subscription whose renewal on May 1 failed (the pages then look at it on May 2)."""
    from .factories import give_card_number

    owner, account, sub = subscribed(price)
    give_card_number(account, card_number)
    services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    account.refresh_from_db()
    return owner, account, sub


def snapshot(account) -> dict:
    """Everything a refused request must leave as it was: subscriptions, audit log, money."""
    return {
        "subscriptions": list(Subscription.objects.filter(account=account).order_by("pk").values()),
        "events": SubscriptionEvent.objects.filter(subscription__account=account).count(),
        "invoices": list(Invoice.objects.filter(account=account).order_by("pk").values("pk", "status")),
        "payments": Payment.objects.filter(invoice__account=account).count(),
        "credit": list(CreditEntry.objects.filter(account=account).values_list("amount_minor", flat=True)),
    }


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


ROLES = [Membership.OWNER, Membership.BILLING_ADMIN, Membership.MEMBER]
