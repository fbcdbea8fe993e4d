"""The same small world for the access matrix and the fuzzed posts: account A with its roles,
the owner of account B, and a staff user; objects in URLs belong to A."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from accounts.models import Account, Invitation, Membership
from billing_portal.lib import clock
from privacy.models import ExportJob
from retention.models import CancellationFlow
from subscriptions import lifecycle, services
from subscriptions.models import Invoice
from subscriptions.tests.factories import MembershipFactory, PlanFactory, PriceFactory, UserFactory

ANON, MEMBER, ADMIN, OTHER, STAFF = "anonymous", "member", "billing_admin", "other_owner", "staff"
ROLES = [ANON, MEMBER, ADMIN, OTHER, STAFF]


@dataclass
class World:
    users: dict
    kwargs: dict


@pytest.fixture
def world(db, stripe_fake) -> World:
    now = clock.now()
    account = Account.objects.create(name="A", billing_email="a@example.com")
    owner = MembershipFactory(account=account, role=Membership.OWNER).user
    member = MembershipFactory(account=account, role=Membership.MEMBER).user
    billing_admin = MembershipFactory(account=account, role=Membership.BILLING_ADMIN).user
    other_owner = MembershipFactory(role=Membership.OWNER).user
    staff = UserFactory(is_staff=True, is_superuser=True)
    plan = PlanFactory(rank=1)
    free = PriceFactory(plan=plan, amount_minor=0)
    other = PriceFactory(plan=PlanFactory(rank=2), amount_minor=0)
    subscription = services.subscription_start(account=account, price=free, actor=owner, now=now - timedelta(days=3))
    assert subscription.status == lifecycle.ACTIVE
    invoice = Invoice.objects.create(
        account=account,
        subscription=subscription,
        billing_reason=Invoice.CYCLE,
        price=free,
        currency="eur",
        period_start=now - timedelta(days=3),
        period_end=now + timedelta(days=27),
        status=Invoice.PAID,
        created_at=now,
    )
    flow = CancellationFlow.objects.create(account=account, subscription=subscription, started_by=owner, started_at=now)
    job = ExportJob.objects.create(account=account, requested_by=owner, created_at=now, updated_at=now)
    member_membership = Membership.objects.get(user=member)
    invitation = Invitation.objects.create(
        account=account, email="new@example.com", invited_by=owner, expires_at=now + timedelta(days=7)
    )
    kwargs = {
        "accounts:signup-pay": {"price_id": other.pk},
        "accounts:verify-email": {"token": "not-a-valid-token"},
        "accounts:invitation": {"token": "not-a-valid-token"},
        "accounts:team-role": {"membership_id": member_membership.pk},
        "accounts:team-remove": {"membership_id": member_membership.pk},
        "accounts:team-revoke": {"invitation_id": invitation.pk},
        "accounts:password_reset_confirm": {"uidb64": "MQ", "token": "set-password"},
        "subscriptions:change": {"price_id": other.pk},
        "subscriptions:change-confirm": {"price_id": other.pk},
        "subscriptions:subscribe": {"price_id": free.pk},
        "subscriptions:invoice": {"invoice_id": invoice.pk},
        "subscriptions:payment-authenticate": {"invoice_id": invoice.pk},
        "privacy:export-progress": {"job_id": job.pk},
        "privacy:export-status": {"job_id": job.pk},
        "privacy:export-download": {"token": "not-a-valid-token"},
        **{
            f"retention:{name}": {"flow_id": flow.pk}
            for name in ("offer", "accept", "keep", "review", "confirm", "done", "kept")
        },
    }
    users = {ANON: None, MEMBER: member, ADMIN: billing_admin, OTHER: other_owner, STAFF: staff}
    return World(users=users, kwargs=kwargs)


def client_as(client, world: World, role: str):
    client.logout()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


from subscriptions.tests.pages import frozen, plans  # noqa: E402, F401 (fixtures of the language tests)
