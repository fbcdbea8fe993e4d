"""Reads of the accounts app: who may sign up, the team page, invitations."""

from datetime import datetime

from django.conf import settings

from subscriptions.models import Price

from .models import Account, Invitation, Membership, User


def price_for_signup(*, pk) -> Price | None:
    """A price a new account may start on: active, of an active plan, in the signup currency."""
    if pk is None or not str(pk).isdigit():
        return None
    return (
        Price.objects.available()
        .filter(currency=settings.ACCOUNTS_SIGNUP_CURRENCY, pk=int(pk))
        .select_related("plan")
        .first()
    )


def user_is_dormant(user: User) -> bool:
    """A login left behind when its member was removed from a team: no account, switched off.

    Such a login can be taken up again by a new signup or invitation for the same address.
    """
    return not user.is_active and not user.is_staff and not Membership.objects.filter(user=user).exists()


def email_has_login(*, email: str) -> bool:
    """Whether signing up with `email` must be refused: somebody already logs in with it."""
    user = User.objects.filter(email__iexact=email.strip()).first()
    return user is not None and not user_is_dormant(user)


def account_members(*, account: Account) -> list[Membership]:
    """Everybody in the account: owners first, then billing admins, then members, by name."""
    order = {Membership.OWNER: 0, Membership.BILLING_ADMIN: 1, Membership.MEMBER: 2}
    memberships = Membership.objects.filter(account=account).select_related("user")
    return sorted(memberships, key=lambda m: (order.get(m.role, 9), m.user.get_full_name().lower()))


def account_owners(*, account: Account) -> list[Membership]:
    return [m for m in account_members(account=account) if m.role == Membership.OWNER]


def account_invitations_open(*, account: Account, now: datetime) -> list[Invitation]:
    """Invitations not accepted nor revoked (expired ones too, so the owner sees them lapse)."""
    invitations = Invitation.objects.filter(account=account, accepted_at__isnull=True, revoked_at__isnull=True)
    return list(invitations.select_related("invited_by").order_by("-created_at", "-id"))


def invitation_for_account(*, account: Account, pk: int) -> Invitation | None:
    return Invitation.objects.filter(account=account, pk=pk).first()


def invitation_by_id(*, pk: int) -> Invitation | None:
    return Invitation.objects.select_related("account", "invited_by").filter(pk=pk).first()
