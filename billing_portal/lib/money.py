"""Money as integer minor units plus a currency, formatted per locale with Babel."""

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision


@dataclass(frozen=True)
class Money:
    """An amount in minor units (cents) of a lowercase ISO 4217 currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int):
            raise TypeError("Money amounts are whole minor units (int).")
        object.__setattr__(self, "currency", self.currency.lower())

    def __add__(self, other: "Money") -> "Money":
        self._check_same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._check_same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def _check_same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"Cannot mix {self.currency} and {other.currency}.")

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, exact (only for display and export)."""
        return Decimal(self.amount_minor).scaleb(-minor_digits(self.currency))

    def format(self, locale: str = "en") -> str:
        """`€19.99` in en, `€ 19,99` in nl, `19,99 €` in fr and it."""
        return format_money(self.amount_minor, self.currency, locale)


def minor_digits(currency: str) -> int:
    """How many minor-unit digits the currency has (2 for EUR, 0 for JPY)."""
    return get_currency_precision(currency.upper())


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers only (the one rounding rule)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


# Pages show the same few amounts (the prices, a month's charge) again and again, and Babel
# takes about 30 microseconds a call (bench/pages.py): remember recent results, a pure function's.
@lru_cache(maxsize=4096)
def format_money(amount_minor: int, currency: str, locale: str = "en") -> str:
    """Format minor units for display in a locale."""
    amount = Decimal(amount_minor).scaleb(-minor_digits(currency))
    return format_currency(amount, currency.upper(), locale=locale)


def percent_of(amount_minor: int, percent: int) -> int:
    """`percent` % of an amount, rounded half up (discounts)."""
    return round_half_up_div(amount_minor * percent, 100)
