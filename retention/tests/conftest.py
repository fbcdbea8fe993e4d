"""Fixtures for the retention tests: a catalogue like the demo one, a frozen clock, customers."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from subscriptions import lifecycle, services
from subscriptions.models import Price, Subscription, SubscriptionEvent
from subscriptions.tests.factories import PASSWORD, MembershipFactory, PlanFactory, PriceFactory, give_card

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)  # April has 30 days

AMOUNTS = {
    # code: (rank, trial days, features, {cycle: cents})
    "free": (0, 0, ["1 project"], {lifecycle.MONTHLY: 0, lifecycle.ANNUAL: 0}),
    "pro": (
        1,
        0,
        ["10 projects", "Email support"],
        {lifecycle.MONTHLY: 1900, lifecycle.ANNUAL: 19000, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 1700},
    ),
    "business": (
        2,
        0,
        ["Unlimited projects", "Priority support", "SSO"],
        {lifecycle.MONTHLY: 4900, lifecycle.ANNUAL: 49000, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 4400},
    ),
    "studio": (3, 14, ["Everything in Business", "Dedicated manager"], {lifecycle.MONTHLY: 9900}),
}


@pytest.fixture
def catalog(db) -> dict[str, dict[str, Price]]:
    """Plans free, pro, business (no trial) and studio (14-day trial), prices in EUR."""
    prices: dict[str, dict[str, Price]] = {}
    for code, (rank, trial_days, features, amounts) in AMOUNTS.items():
        plan = PlanFactory(code=code, name=code.title(), rank=rank, trial_days=trial_days, features=features)
        prices[code] = {
            cycle: PriceFactory(plan=plan, cycle=cycle, amount_minor=amount) for cycle, amount in amounts.items()
        }
    return prices


class FrozenClock:
    def __init__(self, now: datetime):
        self.now = now

    def set(self, now: datetime) -> None:
        self.now = now


@pytest.fixture
def frozen(monkeypatch) -> FrozenClock:
    """`clock.now()` returns `frozen.now` (views and tasks read the clock there)."""
    frozen = FrozenClock(T0)
    monkeypatch.setattr(clock, "now", lambda: frozen.now)
    return frozen


@dataclass
class Customer:
    owner: User
    account: Account
    subscription: Subscription | None

    def refresh(self) -> Subscription:
        self.subscription.refresh_from_db()
        return self.subscription


def make_customer(price: Price | None, *, now: datetime = T0, card: bool = True, **account_fields) -> Customer:
    account_fields.setdefault("name", "Acme Studio")
    membership = MembershipFactory(**{f"account__{name}": value for name, value in account_fields.items()})
    owner, account = membership.user, membership.account
    if card:
        give_card(account)
    subscription = services.subscription_start(account=account, price=price, actor=owner, now=now) if price else None
    return Customer(owner=owner, account=account, subscription=subscription)


@pytest.fixture
def customer(catalog, stripe_fake) -> Customer:
    """An owner with an active Business monthly subscription (€49) started at T0, with a card."""
    return make_customer(catalog["business"][lifecycle.MONTHLY])


@pytest.fixture
def owner_client(client, customer):
    client.login(username=customer.owner.email, password=PASSWORD)
    return client


def add_member(account: Account, role: str = Membership.MEMBER, **user_fields) -> User:
    return MembershipFactory(account=account, role=role, **{f"user__{k}": v for k, v in user_fields.items()}).user


def snapshot(subscription: Subscription) -> tuple:
    """The subscription row and its audit log size: what a refused request must leave as it was."""
    row = Subscription.objects.filter(pk=subscription.pk).values().get()
    return row, SubscriptionEvent.objects.filter(subscription=subscription).count()
