"""Pure rules of subscriptions.lifecycle: no database, no clock (SPEC sections 3, 4, 5, 7, 8)."""

import calendar
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions import lifecycle
from subscriptions.lifecycle import (
    ACTIVE,
    ANNUAL,
    ANNUAL_COMMITMENT_MONTHLY,
    CANCELED,
    MONTHLY,
    PAST_DUE,
    PAUSED,
    TRIALING,
    InvalidTransition,
)

NONE = ""  # the "status" of a subscription that does not exist yet
LIVE = [TRIALING, ACTIVE, PAST_DUE, PAUSED]
CYCLES = [MONTHLY, ANNUAL, ANNUAL_COMMITMENT_MONTHLY]

# --- Transitions -------------------------------------------------------------------------------

# The "allowed changes" table of SPEC section 3, written out by hand (not read from TRANSITIONS).
SPEC_ALLOWED = {
    (NONE, "trial_started"): TRIALING,
    (NONE, "started"): ACTIVE,
    (TRIALING, "trial_converted"): ACTIVE,
    (TRIALING, "trial_expired"): CANCELED,
    (TRIALING, "trial_payment_failed"): PAST_DUE,
    (ACTIVE, "renewed"): ACTIVE,
    (ACTIVE, "renewal_failed"): PAST_DUE,
    (PAST_DUE, "payment_recovered"): ACTIVE,
    (PAST_DUE, "dunning_canceled"): CANCELED,
    (TRIALING, "cancel_scheduled"): TRIALING,
    (ACTIVE, "cancel_scheduled"): ACTIVE,
    (TRIALING, "cancel_undone"): TRIALING,
    (ACTIVE, "cancel_undone"): ACTIVE,
    (TRIALING, "cancel_reached"): CANCELED,
    (ACTIVE, "cancel_reached"): CANCELED,
    (ACTIVE, "paused"): PAUSED,
    (PAUSED, "resumed"): ACTIVE,
    (TRIALING, "price_changed"): TRIALING,
    (ACTIVE, "price_changed"): ACTIVE,
    (TRIALING, "canceled_now"): CANCELED,
    (ACTIVE, "canceled_now"): CANCELED,
    (PAST_DUE, "canceled_now"): CANCELED,
    (PAUSED, "canceled_now"): CANCELED,
}

# Events the project adds beyond the SPEC table, each rooted elsewhere in the SPEC:
# - dunning_paused: SPEC 8 "the final action runs (cancel by default)"; BILLING_DUNNING_FINAL_ACTION=pause.
# - price_change_scheduled: SPEC 4 "switch at the end of the current period", a dated field, not a status.
# - price_change_withdrawn: SPEC 4 "it can be withdrawn"; withdrawing changes no plan, so it is also
#   allowed while past due or paused (where changing plan is refused).
# - discount_applied: SPEC 6 "a discount on the next cycles", a retention offer accepted while the
#   subscription runs (trial or active), applied by the renewals.
# - trial_extended: SPEC 1 "operators ... subscriptions": an operator moves a trial's end (issue 6).
EXTENSIONS_ALLOWED = {
    (TRIALING, "discount_applied"): TRIALING,
    (ACTIVE, "discount_applied"): ACTIVE,
    (TRIALING, "trial_extended"): TRIALING,
    (PAST_DUE, "dunning_paused"): PAUSED,
    (TRIALING, "price_change_scheduled"): TRIALING,
    (ACTIVE, "price_change_scheduled"): ACTIVE,
    (TRIALING, "price_change_withdrawn"): TRIALING,
    (ACTIVE, "price_change_withdrawn"): ACTIVE,
    (PAST_DUE, "price_change_withdrawn"): PAST_DUE,
    (PAUSED, "price_change_withdrawn"): PAUSED,
}

ALLOWED = {**SPEC_ALLOWED, **EXTENSIONS_ALLOWED}
EVENTS = sorted({event for _status, event in ALLOWED})
ALL_STATUSES = [NONE, *lifecycle.STATUSES]
REFUSED = [(status, event) for status in ALL_STATUSES for event in EVENTS if (status, event) not in ALLOWED]


def test_statuses_are_the_five_of_the_spec():
    assert lifecycle.STATUSES == [TRIALING, ACTIVE, PAST_DUE, PAUSED, CANCELED]
    assert lifecycle.LIVE_STATUSES == LIVE


def test_transition_table_has_exactly_the_spec_events_and_extensions():
    assert set(lifecycle.TRANSITIONS) == set(EVENTS)


def test_transition_table_allows_exactly_the_expected_pairs():
    encoded = {
        (status, event) for event, (allowed_from, _to) in lifecycle.TRANSITIONS.items() for status in allowed_from
    }
    assert encoded == set(ALLOWED)


def test_invalid_transition_is_a_value_error():
    assert issubclass(InvalidTransition, ValueError)


@pytest.mark.parametrize(("status", "event", "expected"), [(s, e, to) for (s, e), to in SPEC_ALLOWED.items()])
def test_spec_transition_gives_the_expected_status(status, event, expected):
    assert lifecycle.next_status(status, event) == expected
    assert lifecycle.can(status, event)


@pytest.mark.parametrize(("status", "event", "expected"), [(s, e, to) for (s, e), to in EXTENSIONS_ALLOWED.items()])
def test_extension_transition_gives_the_expected_status(status, event, expected):
    assert lifecycle.next_status(status, event) == expected
    assert lifecycle.can(status, event)


@pytest.mark.parametrize(("status", "event"), REFUSED)
def test_every_other_transition_is_refused_with_a_message(status, event):
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.next_status(status, event)
    assert str(refused.value).strip()
    assert not lifecycle.can(status, event)


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("event", EVENTS)
def test_can_agrees_with_next_status(status, event):
    try:
        lifecycle.next_status(status, event)
    except InvalidTransition:
        allowed = False
    else:
        allowed = True
    assert lifecycle.can(status, event) is allowed


@pytest.mark.parametrize("status", [TRIALING, ACTIVE, PAST_DUE, PAUSED])
def test_keep_status_events_never_change_the_status(status):
    for event in ("cancel_scheduled", "cancel_undone", "price_changed", "price_change_withdrawn"):
        if lifecycle.can(status, event):
            assert lifecycle.next_status(status, event) == status


@pytest.mark.parametrize("status", [PAST_DUE, PAUSED])
def test_past_due_and_paused_cannot_change_price(status):
    with pytest.raises(InvalidTransition, match=r"\S"):
        lifecycle.next_status(status, "price_changed")
    with pytest.raises(InvalidTransition):
        lifecycle.next_status(status, "price_change_scheduled")


@pytest.mark.parametrize("status", [NONE, TRIALING, PAST_DUE, PAUSED, CANCELED])
def test_pause_is_only_possible_from_active(status):
    assert not lifecycle.can(status, "paused")


@pytest.mark.parametrize("event", EVENTS)
def test_canceled_subscription_cannot_do_anything(event):
    assert not lifecycle.can(CANCELED, event)
    with pytest.raises(InvalidTransition, match=r"\S"):
        lifecycle.next_status(CANCELED, event)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_unknown_event_is_refused_and_cannot_happen(status):
    with pytest.raises(InvalidTransition, match="no_such_event"):
        lifecycle.next_status(status, "no_such_event")
    assert not lifecycle.can(status, "no_such_event")


# --- Periods -----------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def months_after_clamped(anchor: datetime, months: int) -> datetime:
    """anchor + months, the day clamped to the month's last day (an independent oracle)."""
    years, month_index = divmod(anchor.month - 1 + months, 12)
    year, month = anchor.year + years, month_index + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1]))


def test_anchor_jan_31_clamps_to_feb_28_then_back_to_31():
    anchor = utc(2025, 1, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 1) == utc(2025, 2, 28, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 2) == utc(2025, 3, 31, 13, 45, 10)


def test_anchor_jan_31_never_drifts_after_a_short_month():
    anchor = utc(2025, 1, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 3) == utc(2025, 4, 30, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 4) == utc(2025, 5, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 13) == utc(2026, 2, 28, 13, 45, 10)


def test_anchor_jan_31_over_24_monthly_periods_ends_on_the_clamped_anchor_day():
    anchor = utc(2025, 1, 31, 13, 45, 10)
    ends = [lifecycle.period_end(anchor, MONTHLY, n) for n in range(1, 25)]
    for n, end in enumerate(ends, start=1):
        year, month = 2025 + n // 12, n % 12 + 1
        assert end == utc(year, month, calendar.monthrange(year, month)[1], 13, 45, 10)
        assert end.tzinfo is UTC
    assert ends[-1] == utc(2027, 1, 31, 13, 45, 10)


def test_anchor_jan_31_in_a_leap_year_gives_feb_29():
    anchor = utc(2024, 1, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 1) == utc(2024, 2, 29, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 2) == utc(2024, 3, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 13) == utc(2025, 2, 28, 13, 45, 10)


def test_annual_anchor_feb_29_gives_feb_28_in_common_years_and_feb_29_in_leap_years():
    anchor = utc(2024, 2, 29, 13, 45, 10)
    for n in range(1, 25):
        year = 2024 + n
        day = 29 if calendar.isleap(year) else 28
        assert lifecycle.period_end(anchor, ANNUAL, n) == utc(year, 2, day, 13, 45, 10)
    assert lifecycle.period_end(anchor, ANNUAL, 1) == utc(2025, 2, 28, 13, 45, 10)
    assert lifecycle.period_end(anchor, ANNUAL, 4) == utc(2028, 2, 29, 13, 45, 10)


def test_annual_commitment_monthly_periods_are_monthly():
    anchor = utc(2025, 1, 31, 13, 45, 10)
    for n in range(1, 25):
        assert lifecycle.period_end(anchor, ANNUAL_COMMITMENT_MONTHLY, n) == lifecycle.period_end(anchor, MONTHLY, n)


def test_period_zero_ends_at_the_anchor():
    anchor = utc(2025, 1, 31, 13, 45, 10)
    assert lifecycle.period_end(anchor, MONTHLY, 0) == anchor


anchors = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(anchor=anchors, cycle=st.sampled_from(CYCLES))
def test_periods_strictly_increase_and_keep_the_time_of_day(anchor, cycle):
    ends = [lifecycle.period_end(anchor, cycle, n) for n in range(0, 25)]
    assert all(earlier < later for earlier, later in zip(ends, ends[1:], strict=False))
    for n, end in enumerate(ends):
        assert end.timetz() == anchor.timetz()
        assert end == months_after_clamped(anchor, n * lifecycle.CYCLE_MONTHS[cycle])


def test_commitment_ends_twelve_months_after_start_for_commitment_prices():
    start = utc(2024, 2, 29, 13, 45, 10)
    assert lifecycle.commitment_end(start, ANNUAL_COMMITMENT_MONTHLY) == utc(2025, 2, 28, 13, 45, 10)
    assert lifecycle.commitment_end(utc(2025, 5, 15, 8), ANNUAL_COMMITMENT_MONTHLY) == utc(2026, 5, 15, 8)


@pytest.mark.parametrize("cycle", [MONTHLY, ANNUAL])
def test_prices_without_commitment_have_no_commitment_end(cycle):
    assert lifecycle.commitment_end(utc(2025, 5, 15, 8), cycle) is None


def test_trial_ends_the_given_number_of_days_later_at_the_same_time():
    start = utc(2025, 2, 20, 13, 45, 10)
    assert lifecycle.trial_end(start, 14) == utc(2025, 3, 6, 13, 45, 10)
    assert lifecycle.trial_end(start, 0) == start


# --- Pause -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("months", "expected"),
    [(1, utc(2025, 2, 28, 13, 45, 10)), (2, utc(2025, 3, 31, 13, 45, 10)), (3, utc(2025, 4, 30, 13, 45, 10))],
)
def test_pause_resumes_one_to_three_months_later(months, expected):
    assert lifecycle.pause_resume_at(utc(2025, 1, 31, 13, 45, 10), months) == expected


@pytest.mark.parametrize("months", [0, 4, -1, 12])
def test_pause_of_other_lengths_is_refused(months):
    with pytest.raises(InvalidTransition, match=r"\S"):
        lifecycle.pause_resume_at(utc(2025, 1, 31, 13, 45, 10), months)


def test_resume_moves_the_period_end_later_by_exactly_the_time_paused():
    period_end = utc(2025, 3, 15, 13, 45, 10)
    paused_at = utc(2025, 3, 1, 9, 0, 0)
    resumed_at = utc(2025, 4, 11, 12, 30, 5)
    assert lifecycle.shift_after_pause(period_end, paused_at, resumed_at) == utc(2025, 4, 25, 17, 15, 15)


@given(
    moment=anchors, paused_at=anchors, paused_for=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=93))
)
def test_shift_after_pause_keeps_the_remaining_paid_time(moment, paused_at, paused_for):
    resumed_at = paused_at + paused_for
    shifted = lifecycle.shift_after_pause(moment, paused_at, resumed_at)
    assert shifted - moment == paused_for
    assert shifted - resumed_at == moment - paused_at


@pytest.mark.parametrize(("cycle", "expected"), [(MONTHLY, True), (ANNUAL, False), (ANNUAL_COMMITMENT_MONTHLY, False)])
def test_only_monthly_prices_can_pause(cycle, expected):
    assert lifecycle.can_pause_cycle(cycle) is expected


# --- Changes during a commitment ---------------------------------------------------------------


@given(
    current_cycle=st.sampled_from(CYCLES),
    new_cycle=st.sampled_from(CYCLES),
    current_rank=st.integers(0, 10),
    new_rank=st.integers(0, 10),
)
def test_change_outside_a_commitment_always_applies_now(current_cycle, new_cycle, current_rank, new_rank):
    assert lifecycle.change_applies_now(
        current_cycle=current_cycle,
        current_rank=current_rank,
        new_cycle=new_cycle,
        new_rank=new_rank,
        in_commitment=False,
    )


@pytest.mark.parametrize(
    ("new_cycle", "new_rank", "expected"),
    [
        (ANNUAL_COMMITMENT_MONTHLY, 3, True),  # upgrade, same cycle
        (ANNUAL_COMMITMENT_MONTHLY, 2, False),  # same plan
        (ANNUAL_COMMITMENT_MONTHLY, 1, False),  # downgrade
        (MONTHLY, 3, False),  # cycle change, even to a higher plan
        (ANNUAL, 3, False),
        (MONTHLY, 1, False),
    ],
)
def test_change_during_a_commitment_applies_now_only_for_a_same_cycle_upgrade(new_cycle, new_rank, expected):
    applies_now = lifecycle.change_applies_now(
        current_cycle=ANNUAL_COMMITMENT_MONTHLY,
        current_rank=2,
        new_cycle=new_cycle,
        new_rank=new_rank,
        in_commitment=True,
    )
    assert applies_now is expected


# --- Proration ---------------------------------------------------------------------------------

# 2026-04-01 to 2026-05-01 is a 30-day period, as in seed 004's examples.
APRIL_START = utc(2026, 4, 1)
APRIL_END = utc(2026, 5, 1)
HALFWAY = utc(2026, 4, 16)


def test_april_2026_is_a_30_day_period_and_halfway_is_april_16():
    assert APRIL_END - APRIL_START == timedelta(days=30)
    assert HALFWAY - APRIL_START == APRIL_END - HALFWAY


def test_upgrade_halfway_from_50_to_100_pays_75_today():
    proration = lifecycle.prorate_change(
        period_charge_minor=5000, period_start=APRIL_START, period_end=APRIL_END, now=HALFWAY, new_amount_minor=10000
    )
    assert proration == lifecycle.Proration(
        credit_minor=2500, amount_due_minor=7500, forfeited_minor=0, kept_as_credit_minor=0
    )


def test_downgrade_halfway_from_200_to_50_pays_nothing_and_forfeits_50():
    proration = lifecycle.prorate_change(
        period_charge_minor=20000, period_start=APRIL_START, period_end=APRIL_END, now=HALFWAY, new_amount_minor=5000
    )
    assert proration == lifecycle.Proration(
        credit_minor=10000, amount_due_minor=0, forfeited_minor=5000, kept_as_credit_minor=0
    )


def test_downgrade_halfway_keeps_the_excess_as_credit_when_configured():
    proration = lifecycle.prorate_change(
        period_charge_minor=20000,
        period_start=APRIL_START,
        period_end=APRIL_END,
        now=HALFWAY,
        new_amount_minor=5000,
        excess="credit",
    )
    assert proration == lifecycle.Proration(
        credit_minor=10000, amount_due_minor=0, forfeited_minor=0, kept_as_credit_minor=5000
    )


def test_upgrade_with_credit_excess_setting_keeps_nothing_when_nothing_is_left():
    proration = lifecycle.prorate_change(
        period_charge_minor=5000,
        period_start=APRIL_START,
        period_end=APRIL_END,
        now=HALFWAY,
        new_amount_minor=10000,
        excess="credit",
    )
    assert proration.kept_as_credit_minor == 0
    assert proration.forfeited_minor == 0


@pytest.mark.parametrize("excess", ["refund", "", "Forfeit", None])
def test_unknown_excess_rule_is_refused(excess):
    with pytest.raises(ValueError, match="excess"):
        lifecycle.prorate_change(
            period_charge_minor=5000,
            period_start=APRIL_START,
            period_end=APRIL_END,
            now=HALFWAY,
            new_amount_minor=10000,
            excess=excess,
        )


def test_change_at_period_start_credits_the_whole_period_charge():
    assert lifecycle.unused_amount_minor(5000, APRIL_START, APRIL_END, APRIL_START) == 5000


def test_change_at_period_end_credits_nothing():
    assert lifecycle.unused_amount_minor(5000, APRIL_START, APRIL_END, APRIL_END) == 0


def test_change_outside_the_period_credits_between_nothing_and_everything():
    assert lifecycle.unused_amount_minor(5000, APRIL_START, APRIL_END, APRIL_START - timedelta(days=3)) == 5000
    assert lifecycle.unused_amount_minor(5000, APRIL_START, APRIL_END, APRIL_END + timedelta(days=3)) == 0


def test_empty_period_credits_nothing():
    assert lifecycle.unused_amount_minor(5000, APRIL_START, APRIL_START, APRIL_START) == 0


def test_unused_time_is_measured_to_the_second():
    # One minor unit per second of a 30-day period: each second counts.
    seconds = 30 * 24 * 60 * 60
    assert lifecycle.unused_amount_minor(seconds, APRIL_START, APRIL_END, APRIL_START + timedelta(seconds=1)) == (
        seconds - 1
    )
    assert lifecycle.unused_amount_minor(seconds, APRIL_START, APRIL_END, APRIL_END - timedelta(seconds=1)) == 1


def test_credit_of_exactly_half_a_cent_rounds_up():
    # 2501 × 15/30 = 1250.5
    assert lifecycle.unused_amount_minor(2501, APRIL_START, APRIL_END, HALFWAY) == 1251
    # 1 × 15/30 = 0.5
    assert lifecycle.unused_amount_minor(1, APRIL_START, APRIL_END, HALFWAY) == 1


def test_credit_below_half_a_cent_rounds_down_and_above_rounds_up():
    # 1000 × 10/30 = 333.33…
    assert lifecycle.unused_amount_minor(1000, APRIL_START, APRIL_END, utc(2026, 4, 21)) == 333
    # 1000 × 20/30 = 666.66…
    assert lifecycle.unused_amount_minor(1000, APRIL_START, APRIL_END, utc(2026, 4, 11)) == 667


periods = st.tuples(anchors, st.integers(min_value=1, max_value=400 * 24 * 60 * 60), st.floats(0, 1))
amounts = st.integers(min_value=0, max_value=10_000_000)


@given(period=periods, charge=amounts, new_amount=amounts, excess=st.sampled_from(["forfeit", "credit"]))
def test_proration_credit_is_bounded_and_the_money_adds_up(period, charge, new_amount, excess):
    start, total_seconds, fraction = period
    end = start + timedelta(seconds=total_seconds)
    now = start + timedelta(seconds=round(total_seconds * fraction))
    proration = lifecycle.prorate_change(
        period_charge_minor=charge,
        period_start=start,
        period_end=end,
        now=now,
        new_amount_minor=new_amount,
        excess=excess,
    )
    assert 0 <= proration.credit_minor <= charge
    assert proration.amount_due_minor >= 0
    assert proration.forfeited_minor >= 0
    assert proration.kept_as_credit_minor >= 0
    assert (
        proration.credit_minor + proration.amount_due_minor
        == new_amount + proration.forfeited_minor + proration.kept_as_credit_minor
    )
    assert proration.amount_due_minor == max(0, new_amount - proration.credit_minor)
    if excess == "forfeit":
        assert proration.kept_as_credit_minor == 0
    else:
        assert proration.forfeited_minor == 0


@given(period=periods, charge=amounts)
def test_credit_is_the_unused_share_rounded_half_up(period, charge):
    start, total_seconds, fraction = period
    end = start + timedelta(seconds=total_seconds)
    unused_seconds = round(total_seconds * fraction)
    now = end - timedelta(seconds=unused_seconds)
    exact = Fraction(charge * unused_seconds, total_seconds)
    assert lifecycle.unused_amount_minor(charge, start, end, now) == int(exact + Fraction(1, 2))


@given(period=periods, charge=amounts, later_by=st.integers(min_value=0, max_value=400 * 24 * 60 * 60))
def test_a_later_change_never_gets_more_credit(period, charge, later_by):
    start, total_seconds, fraction = period
    end = start + timedelta(seconds=total_seconds)
    now = start + timedelta(seconds=round(total_seconds * fraction))
    later = now + timedelta(seconds=later_by)
    assert lifecycle.unused_amount_minor(charge, start, end, later) <= lifecycle.unused_amount_minor(
        charge, start, end, now
    )


# --- Dunning -----------------------------------------------------------------------------------

FIRST_FAILURE = utc(2025, 1, 30, 13, 45, 10)


@pytest.mark.parametrize(("retries_done", "days"), [(0, 1), (1, 3), (2, 5), (3, 7)])
def test_default_dunning_retries_one_three_five_and_seven_days_after_the_failure(retries_done, days):
    retry_at = lifecycle.dunning_retry_at(FIRST_FAILURE, [1, 3, 5, 7], retries_done)
    assert retry_at == FIRST_FAILURE + timedelta(days=days)


def test_dunning_has_no_retry_after_the_last_one():
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, [1, 3, 5, 7], 4) is None
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, [1, 3, 5, 7], 5) is None


def test_default_dunning_gives_up_seven_days_after_the_failure():
    assert lifecycle.dunning_gives_up_at(FIRST_FAILURE, [1, 3, 5, 7]) == utc(2025, 2, 6, 13, 45, 10)


def test_custom_dunning_schedule_is_followed():
    schedule = [2, 10]
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, schedule, 0) == FIRST_FAILURE + timedelta(days=2)
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, schedule, 1) == FIRST_FAILURE + timedelta(days=10)
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, schedule, 2) is None
    assert lifecycle.dunning_gives_up_at(FIRST_FAILURE, schedule) == FIRST_FAILURE + timedelta(days=10)


def test_empty_dunning_schedule_gives_up_at_the_failure():
    assert lifecycle.dunning_retry_at(FIRST_FAILURE, [], 0) is None
    assert lifecycle.dunning_gives_up_at(FIRST_FAILURE, []) == FIRST_FAILURE
