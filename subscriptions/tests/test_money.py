"""Pure rules of billing_portal.lib.money: integer minor units, one rounding rule, Babel formatting."""

import dataclasses
import operator
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_portal.lib.money import Money, format_money, minor_digits, percent_of, round_half_up_div


def plain_spaces(text: str) -> str:
    # Babel (CLDR) separates symbol and amount with a non-breaking space (U+00A0) and groups
    # thousands in fr with a narrow non-breaking space (U+202F); compare with plain spaces.
    return text.replace("\u00a0", " ").replace("\u202f", " ")


# --- round_half_up_div -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 3),  # 2.5
        (-5, 2, -3),  # -2.5: halves round away from zero, so a refund mirrors its charge
        (3, 2, 2),  # 1.5
        (-3, 2, -2),
        (1, 2, 1),  # 0.5
        (-1, 2, -1),
        (4, 2, 2),  # exact
        (-4, 2, -2),
        (0, 7, 0),
        (7, 3, 2),  # 2.33…
        (8, 3, 3),  # 2.66…
        (-7, 3, -2),
        (-8, 3, -3),
        (1999, 1, 1999),
        (149, 100, 1),  # 1.49
        (150, 100, 2),  # 1.50
        (-149, 100, -1),
        (-150, 100, -2),
    ],
)
def test_round_half_up_div_rounds_halves_away_from_zero(numerator, denominator, expected):
    assert round_half_up_div(numerator, denominator) == expected


@pytest.mark.parametrize("denominator", [0, -1, -100])
def test_round_half_up_div_refuses_a_zero_or_negative_denominator(denominator):
    with pytest.raises(ValueError, match="denominator"):
        round_half_up_div(10, denominator)


@given(numerator=st.integers(-(10**18), 10**18), denominator=st.integers(1, 10**12))
def test_round_half_up_div_is_the_nearest_integer_with_halves_away_from_zero(numerator, denominator):
    exact = Fraction(numerator, denominator)
    magnitude = int(abs(exact) + Fraction(1, 2))  # floor(|x| + 1/2)
    expected = magnitude if numerator >= 0 else -magnitude
    result = round_half_up_div(numerator, denominator)
    assert result == expected
    assert abs(result - exact) <= Fraction(1, 2)
    assert round_half_up_div(-numerator, denominator) == -result


@given(quotient=st.integers(-(10**12), 10**12), denominator=st.integers(1, 10**6))
def test_round_half_up_div_of_an_exact_multiple_is_exact(quotient, denominator):
    assert round_half_up_div(quotient * denominator, denominator) == quotient


# --- Money -------------------------------------------------------------------------------------


def test_money_currency_is_lowercased():
    assert Money(1999, "EUR").currency == "eur"
    assert Money(1999, "EUR") == Money(1999, "eur")


def test_money_adds_and_subtracts_in_one_currency():
    assert Money(1999, "eur") + Money(1, "EUR") == Money(2000, "eur")
    assert Money(1999, "eur") - Money(2000, "eur") == Money(-1, "eur")


@pytest.mark.parametrize("operation", [operator.add, operator.sub])
def test_money_refuses_to_mix_currencies(operation):
    with pytest.raises(ValueError, match="eur and usd"):
        operation(Money(1999, "eur"), Money(1999, "usd"))


@pytest.mark.parametrize("amount", [19.99, 1999.0, Decimal("19.99"), Decimal("1999"), "1999", None])
def test_money_refuses_amounts_that_are_not_whole_minor_units(amount):
    with pytest.raises(TypeError):
        Money(amount, "eur")


def test_money_is_immutable():
    price = Money(1999, "eur")
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.amount_minor = 0


def test_money_decimal_is_exact_in_major_units():
    assert Money(1999, "eur").decimal == Decimal("19.99")
    assert Money(-5, "eur").decimal == Decimal("-0.05")
    assert Money(500, "jpy").decimal == Decimal("500")


@given(a=st.integers(-(10**12), 10**12), b=st.integers(-(10**12), 10**12))
def test_money_arithmetic_is_integer_arithmetic(a, b):
    assert (Money(a, "eur") + Money(b, "eur")).amount_minor == a + b
    assert (Money(a, "eur") - Money(b, "eur")).amount_minor == a - b


# --- Formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expected"), [("en", "€19.99"), ("nl", "€ 19,99"), ("fr", "19,99 €"), ("it", "19,99 €")]
)
def test_euros_are_formatted_per_locale(locale, expected):
    assert plain_spaces(format_money(1999, "eur", locale)) == expected
    assert plain_spaces(format_money(1999, "EUR", locale)) == expected
    assert plain_spaces(Money(1999, "eur").format(locale)) == expected


def test_money_formats_in_english_by_default():
    assert Money(1999, "eur").format() == "€19.99"
    assert format_money(1999, "eur") == "€19.99"


def test_yen_have_no_minor_digits():
    assert minor_digits("jpy") == 0
    assert minor_digits("JPY") == 0
    assert format_money(500, "jpy", "en") == "¥500"
    assert Money(500, "JPY").format("en") == "¥500"


def test_euros_and_dollars_have_two_minor_digits():
    assert minor_digits("eur") == 2
    assert minor_digits("usd") == 2
    assert format_money(5, "usd", "en") == "$0.05"


def test_thousands_are_grouped_per_locale():
    assert format_money(123456, "eur", "en") == "€1,234.56"
    assert plain_spaces(format_money(123456, "eur", "nl")) == "€ 1.234,56"
    assert plain_spaces(format_money(123456, "eur", "fr")) == "1 234,56 €"


def test_negative_amounts_keep_their_sign():
    assert format_money(-1999, "eur", "en") == "-€19.99"


# --- percent_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (1999, 30, 600),  # 599.7
        (1000, 15, 150),
        (5, 10, 1),  # 0.5 rounds up
        (4, 10, 0),  # 0.4
        (6, 10, 1),  # 0.6
        (1999, 0, 0),
        (1999, 100, 1999),
        (0, 30, 0),
    ],
)
def test_percent_of_rounds_half_up(amount, percent, expected):
    assert percent_of(amount, percent) == expected


@given(amount=st.integers(0, 10_000_000), percent=st.integers(0, 100))
def test_percent_of_is_a_rounded_share_between_nothing_and_the_whole_amount(amount, percent):
    discount = percent_of(amount, percent)
    assert 0 <= discount <= amount
    assert discount == round_half_up_div(amount * percent, 100)
