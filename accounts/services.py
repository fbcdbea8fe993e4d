"""Signup, email verification and the team: every change of users, accounts and memberships.

Keyword-only arguments, `now` defaults to the clock; a refused change raises a `ValueError`
subclass with a message for the customer and changes nothing. Stripe is called only through
the subscription services, never inside a transaction of ours.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from billing_portal.lib import clock
from subscriptions import gateway
from subscriptions import services as subscription_services
from subscriptions.emails import email_send
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import EmailSent, Price, Subscription

from . import selectors, tokens
from .models import Account, Invitation, Membership, User

log = logging.getLogger(__name__)

VERIFY_EMAIL_KIND = "verify-email"
INVITATION_EMAIL_KIND = "team-invitation"


# --- Signup ------------------------------------------------------------------------------------------
class SignupRefused(ValueError):
    """The signup cannot go ahead; nothing was created."""


class EmailTaken(SignupRefused):
    """Somebody already logs in with this email address."""


@dataclass(frozen=True)
class SignupResult:
    user: User
    account: Account
    subscription: Subscription | None  # a trial or a free plan; None when a card must pay first
    start_error: str = ""  # why the trial or free plan could not start (the price changed meanwhile)

    @property
    def needs_payment(self) -> bool:
        return self.subscription is None and not self.start_error


def account_signup(
    *,
    email: str,
    password: str,
    account_name: str,
    price: Price,
    name: str = "",
    language: str = "en",
    now: datetime | None = None,
) -> SignupResult:
    """A new user, their account (with its Stripe customer) and their owner membership, together.

    The three rows are written in one transaction, then the Stripe customer is created; if
    Stripe cannot be reached the rows are removed again, so there is never an account without
    an owner nor one without its customer. A plan with a trial (or a free plan) starts at once;
    a paid plan waits for the card (`needs_payment`). Raises EmailTaken or SignupRefused.
    """
    now = now or clock.now()
    email = User.objects.normalize_email(email).strip().lower()
    try:
        with transaction.atomic():
            user, revived = _signup_user(email, password, name.strip(), now)
            account = Account.objects.create(
                name=account_name.strip(),
                billing_email=email,
                currency=settings.ACCOUNTS_SIGNUP_CURRENCY,
                language=language,
                created_at=now,
            )
            Membership.objects.create(account=account, user=user, role=Membership.OWNER, created_at=now)
    except IntegrityError:
        # Two signups with the same address at once: the unique email lets one through.
        raise EmailTaken(_("There is already a login with this email address.")) from None
    try:
        subscription_services.account_ensure_stripe_customer(account=account)
    except gateway.GatewayError as error:
        log.warning("Signup of account %s undone, Stripe unreachable: %s", account.pk, error)
        _signup_undo(user, account, revived)
        raise SignupRefused(
            _("We could not reach our payment processor, so nothing was created. Please try again in a few minutes.")
        ) from error
    subscription, start_error = None, ""
    try:
        preview = subscription_services.subscription_preview_start(account=account, price=price, now=now)
        if preview.is_trial or price.is_free:
            subscription = subscription_services.subscription_start(account=account, price=price, actor=user, now=now)
    except InvalidTransition as error:
        # The price was switched off between the form and here: the account stays, without a plan.
        start_error = str(error)
    next_url = "" if subscription or start_error else reverse("accounts:signup-pay", args=[price.pk])
    try:
        user_verification_send(user=user, next_url=next_url, now=now)
    except Exception:  # a failed email must not undo the signup; the customer can ask again
        log.exception("Verification email for user %s could not be sent", user.pk)
    return SignupResult(user=user, account=account, subscription=subscription, start_error=start_error)


def _signup_user(email: str, password: str, name: str, now: datetime) -> tuple[User, bool]:
    """A new user, or a dormant login of the same address taken up again: (user, revived)."""
    existing = User.objects.select_for_update().filter(email__iexact=email).first()
    if existing is None:
        user = User(email=email, name=name, date_joined=now)
        user.set_password(password)
        user.save()
        return user, False
    if not selectors.user_is_dormant(existing):
        raise EmailTaken(_("There is already a login with this email address."))
    existing.set_password(password)
    existing.name = name or existing.name
    existing.is_active = True
    existing.email_verified_at = None  # nobody has proven this address since it went dormant
    existing.save(update_fields=["password", "name", "is_active", "email_verified_at"])
    return existing, True


def _signup_undo(user: User, account: Account, revived: bool) -> None:
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).delete()  # its membership goes with it
        if revived:
            User.objects.filter(pk=user.pk).update(is_active=False)
        else:
            User.objects.filter(pk=user.pk).delete()


# --- Email verification ------------------------------------------------------------------------------
class VerificationRefused(ValueError):
    """No verification email now (already verified, asked too often, or no account)."""


def user_verification_send(*, user: User, next_url: str = "", now: datetime | None = None) -> bool:
    """Email `user` a link that verifies their address; rate-limited. False if already verified."""
    now = now or clock.now()
    if user.is_email_verified:
        return False
    membership = Membership.objects.select_related("account").filter(user=user).first()
    if membership is None:
        raise VerificationRefused(_("Your login is not part of an account."))
    sent = EmailSent.objects.filter(kind=VERIFY_EMAIL_KIND, key__startswith=f"user-{user.pk}:")
    last = sent.order_by("-sent_at").first()
    wait = timedelta(seconds=settings.ACCOUNTS_VERIFY_RESEND_SECONDS)
    if last is not None and now - last.sent_at < wait:
        raise VerificationRefused(
            _("We sent you a link less than a minute ago. Please check your inbox (and your spam folder).")
        )
    if sent.filter(sent_at__gt=now - timedelta(days=1)).count() >= settings.ACCOUNTS_VERIFY_MAX_PER_DAY:
        raise VerificationRefused(
            _("We have sent you several links today. Please use the latest one, or try again tomorrow.")
        )
    token = tokens.verify_token_make(user_id=user.pk, email=user.email, now=now, next_url=next_url)
    return email_send(
        account=membership.account,
        kind=VERIFY_EMAIL_KIND,
        key=f"user-{user.pk}:{token.rsplit(':', 1)[-1]}",  # the link's signature: one email per link
        context={
            "user": user,
            "verify_url": settings.SITE_URL + reverse("accounts:verify-email", args=[token]),
            "days": settings.ACCOUNTS_VERIFY_DAYS,
        },
        recipients=[user.email],
        now=now,
    )


@dataclass(frozen=True)
class Verified:
    user: User
    already: bool  # the link had been used before (or the address was verified another way)
    next_url: str


def user_verify_email(*, token: str, now: datetime | None = None) -> Verified:
    """Mark the address of a verification link verified. Raises tokens.LinkInvalid / LinkExpired."""
    now = now or clock.now()
    link = tokens.verify_token_read(token, now=now)
    user = User.objects.filter(pk=link.user_id, email__iexact=link.email, is_active=True).first()
    if user is None:
        raise tokens.LinkInvalid("no such user")
    updated = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=now)
    user.refresh_from_db(fields=["email_verified_at"])
    return Verified(user=user, already=not updated, next_url=link.next_url)


# --- Team: invitations --------------------------------------------------------------------------------
class TeamChangeRefused(ValueError):
    """A team change that the rules refuse; nothing changed."""


def _lock_account(account: Account) -> Account:
    """Serialise the team changes of one account (a row lock on the account, inside a transaction)."""
    return Account.objects.select_for_update().get(pk=account.pk)


def invitation_create(
    *, account: Account, email: str, role: str, invited_by: User, now: datetime | None = None
) -> tuple[Invitation, bool]:
    """Invite `email` into `account` with `role` and email the link; replaces an open invitation.

    Returns the invitation and whether the email went out (if not, inviting again resends it).
    """
    now = now or clock.now()
    email = User.objects.normalize_email(email).strip().lower()
    if role not in dict(Invitation.ROLE_CHOICES):
        raise TeamChangeRefused(_("Choose billing admin or member."))
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        membership = Membership.objects.filter(user=existing).first()
        if membership is not None and membership.account_id == account.pk:
            raise TeamChangeRefused(_("%(email)s is already in your team.") % {"email": email})
        if membership is not None or existing.is_staff:
            raise TeamChangeRefused(
                _(
                    "%(email)s already has a login for another account. A login belongs to one account: "
                    "ask them for another email address."
                )
                % {"email": email}
            )
    with transaction.atomic():
        _lock_account(account)
        Invitation.objects.filter(
            account=account, email=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            account=account,
            email=email,
            role=role,
            invited_by=invited_by,
            created_at=now,
            expires_at=now + timedelta(days=settings.ACCOUNTS_INVITE_DAYS),
        )
    try:
        emailed = invitation_email_send(invitation=invitation, now=now)
    except Exception:  # the invitation stands; the owner is told to invite again
        log.exception("Invitation email %s could not be sent", invitation.pk)
        emailed = False
    return invitation, emailed


def invitation_email_send(*, invitation: Invitation, now: datetime | None = None) -> bool:
    token = tokens.invitation_token_make(invitation_id=invitation.pk)
    return email_send(
        account=invitation.account,
        kind=INVITATION_EMAIL_KIND,
        key=f"invitation-{invitation.pk}",
        context={
            "invitation": invitation,
            "inviter": invitation.invited_by,
            "accept_url": settings.SITE_URL + reverse("accounts:invitation", args=[token]),
            "role": dict(Invitation.ROLE_CHOICES)[invitation.role],  # lazy: rendered in the account's language
        },
        recipients=[invitation.email],
        now=now,
    )


def invitation_revoke(*, account: Account, invitation_id: int, now: datetime | None = None) -> Invitation:
    now = now or clock.now()
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(account=account, pk=invitation_id).first()
        if invitation is None:
            raise TeamChangeRefused(_("There is no such invitation."))
        if invitation.accepted_at:
            raise TeamChangeRefused(_("This invitation was already accepted. Remove the member instead."))
        if not invitation.revoked_at:
            invitation.revoked_at = now
            invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_refusal(*, invitation: Invitation, now: datetime) -> str:
    """Why this invitation cannot be accepted now, or "" when it can."""
    status = invitation.status(now)
    if status == Invitation.ACCEPTED:
        return _("This invitation was already accepted. Log in with your email address and password.")
    if status == Invitation.REVOKED:
        return _("This invitation was withdrawn. Ask the person who invited you to send a new one.")
    if status == Invitation.EXPIRED:
        return _("This invitation expired. Ask the person who invited you to send a new one.")
    user = User.objects.filter(email__iexact=invitation.email).first()
    if user is not None and not selectors.user_is_dormant(user):
        if Membership.objects.filter(user=user, account_id=invitation.account_id).exists():
            return _("You are already in this team. Log in with your email address and password.")
        return _(
            "%(email)s already has a login for another account. A login belongs to one account: "
            "ask for an invitation to another email address."
        ) % {"email": invitation.email}
    return ""


def invitation_accept(*, invitation: Invitation, name: str, password: str, now: datetime | None = None) -> User:
    """Join the account: a new login for the invited address (or its dormant one), verified by the link."""
    now = now or clock.now()
    try:
        with transaction.atomic():
            invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
            refusal = invitation_refusal(invitation=invitation, now=now)
            if refusal:
                raise TeamChangeRefused(refusal)
            user = User.objects.select_for_update().filter(email__iexact=invitation.email).first()
            if user is None:
                user = User(email=invitation.email, date_joined=now)
            user.name = name.strip()
            user.set_password(password)
            user.is_active = True
            user.email_verified_at = now  # the link reached this address
            user.save()
            Membership.objects.create(account=invitation.account, user=user, role=invitation.role, created_at=now)
            invitation.accepted_at, invitation.accepted_by = now, user
            invitation.save(update_fields=["accepted_at", "accepted_by"])
    except IntegrityError:
        # The address got a login (or a membership) between the check and here.
        raise TeamChangeRefused(
            _("%(email)s already has a login. A login belongs to one account.") % {"email": invitation.email}
        ) from None
    return user


# --- Team: roles and removal ----------------------------------------------------------------------------
def _other_owners(account: Account, membership: Membership) -> int:
    return Membership.objects.filter(account=account, role=Membership.OWNER).exclude(pk=membership.pk).count()


def membership_change_role(
    *, account: Account, membership_id: int, role: str, actor: User, now: datetime | None = None
) -> Membership:
    """Give a member another role; the account always keeps at least one owner."""
    if role not in dict(Membership.ROLE_CHOICES):
        raise TeamChangeRefused(_("Unknown role."))
    with transaction.atomic():
        _lock_account(account)
        membership = Membership.objects.select_related("user").filter(account=account, pk=membership_id).first()
        if membership is None:
            raise TeamChangeRefused(_("This person is not in your team."))
        if membership.role == Membership.OWNER and role != Membership.OWNER and not _other_owners(account, membership):
            raise TeamChangeRefused(_("An account needs at least one owner. Make someone else an owner first."))
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_remove(*, account: Account, membership_id: int, actor: User, now: datetime | None = None) -> User:
    """Take someone out of the team; their login is switched off (it belonged to this account only)."""
    with transaction.atomic():
        _lock_account(account)
        membership = Membership.objects.select_related("user").filter(account=account, pk=membership_id).first()
        if membership is None:
            raise TeamChangeRefused(_("This person is not in your team."))
        if membership.user_id == actor.pk:
            raise TeamChangeRefused(_("You cannot remove yourself. Ask another owner to do it."))
        if membership.role == Membership.OWNER and not _other_owners(account, membership):
            raise TeamChangeRefused(_("An account needs at least one owner."))
        user = membership.user
        membership.delete()
        if not user.is_staff:
            # A login without an account can do nothing; switched off, it also loses its sessions.
            User.objects.filter(pk=user.pk).update(is_active=False)
    return user


def account_language_set(*, account: Account, language: str) -> bool:
    """The language of the account's emails; False if it was already that one."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(_("Choose one of the languages offered."))
    if account.language == language:
        return False
    account.language = language
    account.save(update_fields=["language"])
    return True
