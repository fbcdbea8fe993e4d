"""Why a card payment failed, in the customer's language.

Stripe's own `failure_message` is English and written for developers; customers see one of
these phrases instead (operators still see Stripe's code and message in admin).
"""

from django.utils.translation import gettext_lazy as _

# Stripe decline codes (https://docs.stripe.com/declines/codes) grouped by what the customer can do.
DECLINE_REASONS = {
    "insufficient_funds": _("not enough funds"),
    "expired_card": _("the card has expired"),
    "incorrect_cvc": _("the security code is not correct"),
    "invalid_cvc": _("the security code is not correct"),
    "incorrect_number": _("the card number is not correct"),
    "invalid_expiry_month": _("the expiry date is not correct"),
    "invalid_expiry_year": _("the expiry date is not correct"),
    "lost_card": _("the card is blocked"),
    "stolen_card": _("the card is blocked"),
    "pickup_card": _("the card is blocked"),
    "restricted_card": _("the card is blocked"),
    "card_velocity_exceeded": _("the card's spending limit was reached"),
    "withdrawal_count_limit_exceeded": _("the card's spending limit was reached"),
    "processing_error": _("the bank could not process the payment"),
    "authentication_required": _("the bank asks to confirm the payment"),
    "no_payment_method": _("there is no card on file"),
}
GENERIC_DECLINE = _("the bank did not say why")


def decline_reason(code: str) -> str:
    """The reason for a failed payment, for the customer, in the active language."""
    return str(DECLINE_REASONS.get(code or "", GENERIC_DECLINE))
