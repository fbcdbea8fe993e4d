"""Fixtures of the privacy tests: a private export folder, and a well-known account with history."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from retention.models import CancellationFlow, SessionRequest
from subscriptions import services
from subscriptions.models import Invoice, Subscription
from subscriptions.tests.factories import MembershipFactory, PriceFactory, UserFactory, give_card


@pytest.fixture(autouse=True)
def export_dir(tmp_path, settings):
    """Exports of each test go to a folder of its own (never the project's var/)."""
    folder = tmp_path / "exports"
    settings.PRIVACY_EXPORT_DIR = folder
    return folder


@dataclass
class KnownAccount:
    account: Account
    owner: User
    admin: User
    member: User
    subscription: Subscription
    invoices: list[Invoice]

    @property
    def personal_values(self) -> list[str]:
        """Every name, email and free text that must be gone after the deletion."""
        return [
            "Verwijder Bakkerij",
            "boekhouding@verwijder.example",
            "Zoë Verwijder",
            "zoe.verwijder@example.com",
            "Bram Beheer",
            "bram.beheer@example.com",
            "Mila Medewerker",
            "mila.medewerker@example.com",
            "too expensive for our bakery",
            "Goodwill for Zoë",
            "our oven broke and so did the budget",
            "zoe.sessie@verwijder.example",
            "call me after the morning bake",
        ]


@pytest.fixture
def known_account(stripe_fake) -> KnownAccount:
    """An account with three members, a card, three paid monthly invoices and a canceled-then-undone cancellation."""
    account = Account.objects.create(
        name="Verwijder Bakkerij",
        billing_email="boekhouding@verwijder.example",
        language="nl",
        timezone="Europe/Amsterdam",
    )
    owner = MembershipFactory(
        account=account,
        role=Membership.OWNER,
        user=UserFactory(name="Zoë Verwijder", email="zoe.verwijder@example.com"),
    ).user
    admin = MembershipFactory(
        account=account,
        role=Membership.BILLING_ADMIN,
        user=UserFactory(name="Bram Beheer", email="bram.beheer@example.com"),
    ).user
    member = MembershipFactory(
        account=account,
        role=Membership.MEMBER,
        user=UserFactory(name="Mila Medewerker", email="mila.medewerker@example.com"),
    ).user
    give_card(account)
    account.refresh_from_db()
    price = PriceFactory(amount_minor=1999)
    start = clock.now() - timedelta(days=70)
    subscription = services.subscription_start(account=account, price=price, actor=owner, now=start)
    services.subscriptions_renew_due(now=subscription.current_period_end + timedelta(minutes=1))
    subscription.refresh_from_db()
    services.subscriptions_renew_due(now=subscription.current_period_end + timedelta(minutes=1))
    subscription.refresh_from_db()
    services.subscription_schedule_cancel(
        subscription=subscription,
        actor=owner,
        now=subscription.current_period_start + timedelta(days=1),
        reason="Honestly too expensive for our bakery",
    )
    services.subscription_undo_cancel(
        subscription=subscription, actor=owner, now=subscription.current_period_start + timedelta(days=2)
    )
    flow = CancellationFlow.objects.create(
        account=account,
        subscription=subscription,
        started_by=owner,
        reason="other",
        reason_text="our oven broke and so did the budget",
        started_at=subscription.current_period_start,
    )
    SessionRequest.objects.create(
        account=account,
        flow=flow,
        requested_by=owner,
        contact_email="zoe.sessie@verwijder.example",
        note="call me after the morning bake",
        created_at=subscription.current_period_start,
    )
    invoices = list(Invoice.objects.filter(account=account).order_by("created_at", "id"))
    assert [invoice.status for invoice in invoices] == [Invoice.PAID] * 3
    return KnownAccount(account, owner, admin, member, subscription, invoices)
