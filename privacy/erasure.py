"""The erasure registry: each app that keeps personal data about an account erases it here.

When a deletion is carried out, `erase_account` calls every registered eraser with one
`Erasure`, inside the transaction that marks the account deleted: all of them succeed, or
nothing is erased and the next run tries again. An app registers in its AppConfig.ready():

    from privacy import erasure

    @erasure.register("retention")
    def erase_cancellation_answers(erasure_: erasure.Erasure) -> None:
        CancellationFlow.objects.filter(account=erasure_.account).update(other_text="")

Erasers blank or pseudonymize in place with queryset updates (rows that must stay, like
invoices, keep their ids and amounts); they never call Stripe or send email, and they must be
idempotent. privacy.tests.test_deletion scans every model's text fields afterwards.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from accounts.models import Account


@dataclass(frozen=True)
class Erasure:
    """What an eraser needs: the account, its pseudonym, and who and what to erase."""

    account: Account
    pseudonym: str  # "deleted-3f9c0a7b21d4e85c": the account name from now on, and on its invoices
    pseudonym_email: str  # "deleted-3f9c0a7b21d4e85c@deleted.invalid"
    user_ids: tuple[int, ...]  # the members at the time of deletion (memberships may be gone by now)
    membership_ids: tuple[int, ...]
    # Every email address and name being erased (billing email, members' emails and names, the
    # account name), for tables keyed by them rather than by account, like login attempts.
    emails: tuple[str, ...]
    names: tuple[str, ...]
    now: datetime


Eraser = Callable[[Erasure], None]

_erasers: dict[str, Eraser] = {}


def register(name: str) -> Callable[[Eraser], Eraser]:
    """Register an eraser under a unique name (registering the name again replaces it)."""

    def decorator(eraser: Eraser) -> Eraser:
        _erasers[name] = eraser
        return eraser

    return decorator


def registered() -> dict[str, Eraser]:
    return dict(_erasers)


def erase_account(erasure: Erasure) -> None:
    """Run every registered eraser, in registration order."""
    for eraser in list(_erasers.values()):
        eraser(erasure)
