"""Writes on accounts that are not about billing state (those go through subscriptions.services)."""

from django.conf import settings
from django.utils.translation import gettext as _

from .models import Account


def account_language_set(*, account: Account, language: str) -> bool:
    """The language of the account's emails; False if it was already that one."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(_("Choose one of the languages offered."))
    if account.language == language:
        return False
    account.language = language
    account.save(update_fields=["language"])
    return True
