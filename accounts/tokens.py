"""Signed links: email verification and team invitations.

Both are `django.core.signing` values (signed with SECRET_KEY, so they cannot be forged or
altered). A verification link carries the time it was made, taken from the caller's `now`
rather than the wall clock, so expiry follows the project's clock; an invitation link carries
only the invitation's id, whose row says when it expires and whether it was used or revoked.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing

VERIFY_SALT = "accounts.verify-email"
INVITATION_SALT = "accounts.invitation"


class LinkInvalid(ValueError):
    """The link was altered, truncated or made for something else."""


class LinkExpired(ValueError):
    """The link is genuine but too old."""


@dataclass(frozen=True)
class VerifyLink:
    user_id: int
    email: str
    issued_at: datetime
    next_url: str  # where to go after verifying (a local path, or "")


def verify_token_make(*, user_id: int, email: str, now: datetime, next_url: str = "") -> str:
    return signing.dumps({"u": user_id, "e": email, "t": int(now.timestamp()), "n": next_url}, salt=VERIFY_SALT)


def verify_token_read(token: str, *, now: datetime) -> VerifyLink:
    """The link's content; LinkInvalid if tampered, LinkExpired after ACCOUNTS_VERIFY_DAYS days."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT)
        link = VerifyLink(
            user_id=int(data["u"]),
            email=str(data["e"]),
            issued_at=datetime.fromtimestamp(int(data["t"]), tz=UTC),
            next_url=str(data.get("n") or ""),
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise LinkInvalid(str(error)) from error
    if now - link.issued_at > timedelta(days=settings.ACCOUNTS_VERIFY_DAYS):
        raise LinkExpired(link.email)
    return link


def invitation_token_make(*, invitation_id: int) -> str:
    return signing.dumps({"i": invitation_id}, salt=INVITATION_SALT)


def invitation_token_read(token: str) -> int:
    """The invitation id a link points at; LinkInvalid if it was altered."""
    try:
        return int(signing.loads(token, salt=INVITATION_SALT)["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise LinkInvalid(str(error)) from error
