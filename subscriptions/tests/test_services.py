"""The services of SPEC section 12 against the database and localstripe."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from subscriptions import lifecycle, selectors, services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import CreditEntry, Invoice, Payment, Subscription, SubscriptionEvent

from .factories import (
    DECLINING_CARD,
    PlanFactory,
    PriceFactory,
    UserFactory,
    give_card,
    give_card_number,
    owner_with_account,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)  # April has 30 days: halfway is exactly 15 days in


def snapshot(subscription: Subscription) -> tuple:
    """Everything a refused change must leave as it was: the row and the audit log."""
    row = Subscription.objects.filter(pk=subscription.pk).values().get()
    return row, SubscriptionEvent.objects.filter(subscription=subscription).count()


def paid_subscription(amount_minor=5000, cycle=lifecycle.MONTHLY, now=T0, rank=1, card="pm_card_visa"):
    owner, account = owner_with_account()
    give_card(account, card)
    price = PriceFactory(plan=PlanFactory(rank=rank), cycle=cycle, amount_minor=amount_minor)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=now)
    return owner, account, sub


# --- start ---------------------------------------------------------------------------------------
def test_start_with_trial_needs_no_card_and_charges_nothing(stripe_fake):
    owner, account = owner_with_account()
    price = PriceFactory(plan=PlanFactory(trial_days=14))
    sub = services.subscription_start(account=account, price=price, actor=owner, now=T0)
    assert sub.status == lifecycle.TRIALING
    assert sub.trial_end == T0 + timedelta(days=14)
    assert sub.current_period_end == sub.trial_end
    assert not Invoice.objects.exists()
    assert stripe_fake.payment_intents() == []
    assert sub.events.get().kind == "trial_started"


def test_start_paid_plan_charges_the_first_invoice_and_is_active(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=1900)
    assert sub.status == lifecycle.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (T0, datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_due_minor, invoice.subscription) == (Invoice.PAID, 1900, sub)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [1900]


def test_an_account_that_trialed_before_starts_paid(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(trial_days=14))
    trial = services.subscription_start(account=account, price=price, actor=owner, now=T0)
    services.subscription_cancel_now(subscription=trial, actor=UserFactory(is_staff=True), now=T0)
    again = services.subscription_start(account=account, price=price, actor=owner, now=T0 + timedelta(days=1))
    assert again.status == lifecycle.ACTIVE
    assert again.trial_end is None


def test_start_paid_plan_without_card_is_refused_and_creates_nothing(stripe_fake):
    owner, account = owner_with_account()
    with pytest.raises(services.PaymentMethodRequired):
        services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_declined_card_on_start_creates_no_subscription(stripe_fake):
    owner, account = owner_with_account()
    give_card_number(account, DECLINING_CARD)
    with pytest.raises(services.PaymentFailed):
        services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    assert not Subscription.objects.exists()
    assert Invoice.objects.get().status == Invoice.VOID
    assert Payment.objects.get().status == Payment.FAILED


def test_free_plan_starts_active_without_card_or_charge(stripe_fake):
    owner, account = owner_with_account()
    sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=0), actor=owner, now=T0)
    assert sub.status == lifecycle.ACTIVE
    assert stripe_fake.payment_intents() == []


def test_second_live_subscription_is_refused(stripe_fake):
    owner, account, sub = paid_subscription()
    with pytest.raises(InvalidTransition):
        services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    assert Subscription.objects.count() == 1


def test_price_in_another_currency_or_inactive_is_refused(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    for price in (PriceFactory(currency="usd"), PriceFactory(is_active=False)):
        with pytest.raises(InvalidTransition):
            services.subscription_start(account=account, price=price, actor=owner, now=T0)
    assert not Subscription.objects.exists()


# --- change plan or cycle (seed 004) -------------------------------------------------------------------
def test_upgrade_halfway_pays_the_difference_and_moves_the_anchor(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=5000, rank=1)
    halfway = T0 + timedelta(days=15)
    bigger = PriceFactory(plan=PlanFactory(rank=2), amount_minor=10000)
    preview = services.subscription_preview_change(subscription=sub, price=bigger, now=halfway)
    assert (preview.credit_minor, preview.amount_due_minor, preview.forfeited_minor) == (2500, 7500, 0)
    assert preview.period_end == datetime(2026, 5, 16, 9, 0, tzinfo=UTC)
    services.subscription_change(subscription=sub, price=bigger, actor=owner, now=halfway)
    sub.refresh_from_db()
    assert (sub.price, sub.amount_minor, sub.billing_anchor_at) == (bigger, 10000, halfway)
    assert sub.current_period_end == datetime(2026, 5, 16, 9, 0, tzinfo=UTC)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [5000, 7500]
    change = Invoice.objects.get(billing_reason=Invoice.UPDATE)
    assert sorted(line.amount_minor for line in change.lines.all()) == [-2500, 10000]


def test_downgrade_halfway_pays_nothing_and_forfeits_the_excess(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=20000, rank=2)
    halfway = T0 + timedelta(days=15)
    smaller = PriceFactory(plan=PlanFactory(rank=1), amount_minor=5000)
    preview = services.subscription_preview_change(subscription=sub, price=smaller, now=halfway)
    assert (preview.credit_minor, preview.amount_due_minor, preview.forfeited_minor) == (10000, 0, 5000)
    assert preview.would_forfeit
    services.subscription_change(subscription=sub, price=smaller, actor=owner, now=halfway)
    sub.refresh_from_db()
    assert sub.price == smaller
    assert len(stripe_fake.payment_intents()) == 1  # only the start
    assert selectors.account_credit_balance_minor(account=account) == 0


@override_settings(BILLING_PRORATION_EXCESS="credit")
def test_downgrade_excess_is_kept_as_credit_when_configured(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=20000, rank=2)
    smaller = PriceFactory(plan=PlanFactory(rank=1), amount_minor=5000)
    services.subscription_change(subscription=sub, price=smaller, actor=owner, now=T0 + timedelta(days=15))
    assert selectors.account_credit_balance_minor(account=account) == 5000
    assert CreditEntry.objects.get().kind == CreditEntry.PRORATION_EXCESS


def test_declined_upgrade_changes_nothing(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=5000)
    give_card_number(account, DECLINING_CARD)
    before = snapshot(sub)
    with pytest.raises(services.PaymentFailed):
        services.subscription_change(
            subscription=sub,
            price=PriceFactory(plan=PlanFactory(rank=5), amount_minor=9000),
            actor=owner,
            now=T0 + timedelta(days=1),
        )
    assert snapshot(sub) == before
    assert Invoice.objects.get(billing_reason=Invoice.UPDATE).status == Invoice.VOID


def test_change_at_period_end_is_scheduled_then_applied_by_the_renewal(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=5000, rank=2)
    smaller = PriceFactory(plan=PlanFactory(rank=1), amount_minor=1500)
    preview = services.subscription_change(subscription=sub, price=smaller, actor=owner, now=T0, at_period_end=True)
    assert preview.applies == services.PERIOD_END
    sub.refresh_from_db()
    assert (sub.price.amount_minor, sub.scheduled_price) == (5000, smaller)
    services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert (sub.price, sub.scheduled_price, sub.billing_anchor_at) == (
        smaller,
        None,
        datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
    )
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [5000, 1500]


def test_scheduled_change_can_be_withdrawn(stripe_fake):
    owner, account, sub = paid_subscription(rank=2)
    services.subscription_change(
        subscription=sub, price=PriceFactory(plan=PlanFactory(rank=1)), actor=owner, now=T0, at_period_end=True
    )
    services.subscription_withdraw_scheduled_change(subscription=sub, actor=owner, now=T0)
    sub.refresh_from_db()
    assert sub.scheduled_price is None


def test_change_in_a_trial_swaps_the_price_and_keeps_the_trial_end(stripe_fake):
    owner, account = owner_with_account()
    sub = services.subscription_start(
        account=account, price=PriceFactory(plan=PlanFactory(trial_days=14)), actor=owner, now=T0
    )
    other = PriceFactory(plan=PlanFactory(rank=3), amount_minor=9900)
    services.subscription_change(subscription=sub, price=other, actor=owner, now=T0 + timedelta(days=3))
    sub.refresh_from_db()
    assert (sub.price, sub.status, sub.trial_end) == (other, lifecycle.TRIALING, T0 + timedelta(days=14))
    assert stripe_fake.payment_intents() == []


def test_commitment_downgrade_waits_for_the_commitment_end(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=4400, cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY, rank=2)
    assert sub.commitment_end_at == datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
    cheaper = PriceFactory(plan=PlanFactory(rank=1), cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY, amount_minor=1700)
    preview = services.subscription_change(subscription=sub, price=cheaper, actor=owner, now=T0 + timedelta(days=40))
    assert (preview.applies, preview.effective_at) == (services.COMMITMENT_END, sub.commitment_end_at)


def test_commitment_upgrade_applies_now_and_keeps_the_commitment_end(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=1700, cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY, rank=1)
    bigger = PriceFactory(plan=PlanFactory(rank=2), cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY, amount_minor=4400)
    services.subscription_change(subscription=sub, price=bigger, actor=owner, now=T0 + timedelta(days=10))
    sub.refresh_from_db()
    assert sub.price == bigger
    assert sub.commitment_end_at == datetime(2027, 4, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("status_setter", ["past_due", "paused"])
def test_past_due_or_paused_cannot_change_plan_and_nothing_changes(stripe_fake, status_setter):
    owner, account, sub = paid_subscription(amount_minor=1900)
    if status_setter == "paused":
        services.subscription_pause(subscription=sub, actor=owner, months=1, now=T0 + timedelta(days=1))
    else:
        give_card_number(account, DECLINING_CARD)
        services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == status_setter
    before = snapshot(sub)
    with pytest.raises(InvalidTransition):
        services.subscription_change(
            subscription=sub, price=PriceFactory(plan=PlanFactory(rank=4)), actor=owner, now=T0
        )
    assert snapshot(sub) == before


def test_changing_to_the_current_price_is_refused(stripe_fake):
    owner, account, sub = paid_subscription()
    with pytest.raises(InvalidTransition):
        services.subscription_preview_change(subscription=sub, price=sub.price, now=T0)


# --- cancel, undo, cancel now -----------------------------------------------------------------------
def test_schedule_cancel_keeps_access_until_period_end_and_can_be_undone(stripe_fake):
    owner, account, sub = paid_subscription()
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3), reason="other")
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_at, sub.badge) == (lifecycle.ACTIVE, sub.current_period_end, "canceling")
    services.subscription_undo_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=4))
    sub.refresh_from_db()
    assert sub.cancel_at is None


def test_cancel_at_period_end_ends_without_charging(stripe_fake):
    owner, account, sub = paid_subscription()
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3))
    services.subscriptions_renew_due(now=sub.current_period_end + timedelta(minutes=5))
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert len(stripe_fake.payment_intents()) == 1


def test_commitment_cancel_ends_at_the_commitment_end(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=1700, cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY)
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=20))
    sub.refresh_from_db()
    assert sub.cancel_at == datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
    # The monthly payments continue until then.
    services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert len(stripe_fake.succeeded_payment_intents()) == 2


def test_trial_cancel_ends_at_trial_end_with_no_charge(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(
        account=account, price=PriceFactory(plan=PlanFactory(trial_days=7)), actor=owner, now=T0
    )
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0)
    services.subscriptions_renew_due(now=T0 + timedelta(days=7))
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert stripe_fake.payment_intents() == []


def test_undo_after_cancel_at_is_refused(stripe_fake):
    owner, account, sub = paid_subscription()
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0)
    with pytest.raises(InvalidTransition):
        services.subscription_undo_cancel(subscription=sub, actor=owner, now=sub.cancel_at + timedelta(seconds=1))


def test_cancel_now_by_an_operator_is_recorded_as_operator(stripe_fake):
    owner, account, sub = paid_subscription()
    operator = UserFactory(is_staff=True)
    services.subscription_cancel_now(subscription=sub, actor=operator, now=T0 + timedelta(days=2))
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    event = sub.events.first()
    assert (event.kind, event.actor, event.actor_kind, event.from_status) == (
        "canceled_now",
        operator,
        "operator",
        "active",
    )


def test_a_stranger_cannot_change_a_subscription(stripe_fake):
    owner, account, sub = paid_subscription()
    before = snapshot(sub)
    with pytest.raises(InvalidTransition):
        services.subscription_schedule_cancel(subscription=sub, actor=UserFactory(), now=T0)
    assert snapshot(sub) == before


def test_canceled_subscription_refuses_every_change(stripe_fake):
    owner, account, sub = paid_subscription()
    services.subscription_cancel_now(subscription=sub, actor=UserFactory(is_staff=True), now=T0)
    sub.refresh_from_db()
    before = snapshot(sub)
    for call in (
        lambda: services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0),
        lambda: services.subscription_pause(subscription=sub, actor=owner, months=1, now=T0),
        lambda: services.subscription_resume(subscription=sub, actor=owner, now=T0),
        lambda: services.subscription_cancel_now(subscription=sub, actor=owner, now=T0),
    ):
        with pytest.raises(InvalidTransition):
            call()
    assert snapshot(sub) == before


# --- pause and resume -----------------------------------------------------------------------------
def test_pause_then_resume_moves_the_period_end_by_the_time_paused(stripe_fake):
    owner, account, sub = paid_subscription()
    end_before = sub.current_period_end
    services.subscription_pause(subscription=sub, actor=owner, months=2, now=T0 + timedelta(days=10))
    sub.refresh_from_db()
    assert (sub.status, sub.resume_at) == (lifecycle.PAUSED, datetime(2026, 6, 11, 9, 0, tzinfo=UTC))
    services.subscription_resume(subscription=sub, actor=owner, now=T0 + timedelta(days=17))
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert sub.current_period_end == end_before + timedelta(days=7)


def test_the_job_resumes_a_pause_at_resume_at_without_invoicing_while_paused(stripe_fake):
    owner, account, sub = paid_subscription()
    services.subscription_pause(subscription=sub, actor=owner, months=1, now=T0 + timedelta(days=10))
    sub.refresh_from_db()
    services.subscriptions_renew_due(now=sub.current_period_end)  # the old period end passes while paused
    assert Invoice.objects.count() == 1
    services.subscriptions_renew_due(now=sub.resume_at)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert sub.current_period_end == datetime(2026, 5, 1, 9, 0, tzinfo=UTC) + (
        sub.current_period_end - datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    )
    assert sub.current_period_end == datetime(2026, 5, 1, 9, 0, tzinfo=UTC) + timedelta(days=30)


@pytest.mark.parametrize("cycle", [lifecycle.ANNUAL, lifecycle.ANNUAL_COMMITMENT_MONTHLY])
def test_only_monthly_prices_can_pause(stripe_fake, cycle):
    owner, account, sub = paid_subscription(cycle=cycle)
    before = snapshot(sub)
    with pytest.raises(InvalidTransition):
        services.subscription_pause(subscription=sub, actor=owner, months=1, now=T0)
    assert snapshot(sub) == before


def test_pause_longer_than_three_months_is_refused(stripe_fake):
    owner, account, sub = paid_subscription()
    before = snapshot(sub)
    with pytest.raises(InvalidTransition):
        services.subscription_pause(subscription=sub, actor=owner, months=4, now=T0)
    assert snapshot(sub) == before


# --- renewals, trials, dunning ----------------------------------------------------------------------
def test_renewal_run_twice_charges_once(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=1900)
    due = sub.current_period_end
    assert services.subscriptions_renew_due(now=due) == 1
    assert services.subscriptions_renew_due(now=due) == 0
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start) == (lifecycle.ACTIVE, due)
    assert len(stripe_fake.succeeded_payment_intents()) == 2
    assert Invoice.objects.filter(subscription=sub, period_start=due).count() == 1


def test_renewal_decline_moves_to_past_due_with_a_retry_schedule(stripe_fake):
    owner, account, sub = paid_subscription()
    give_card_number(account, DECLINING_CARD)
    due = sub.current_period_end
    services.subscriptions_renew_due(now=due)
    sub.refresh_from_db()
    assert (sub.status, sub.past_due_since, sub.next_retry_at) == (lifecycle.PAST_DUE, due, due + timedelta(days=1))
    assert sub.current_period_start == due  # the period moved on; its invoice is open
    assert Invoice.objects.get(period_start=due).status == Invoice.OPEN


def test_dunning_retries_on_schedule_then_cancels_and_marks_uncollectible(stripe_fake):
    owner, account, sub = paid_subscription()
    give_card_number(account, DECLINING_CARD)
    failed_at = sub.current_period_end
    services.subscriptions_renew_due(now=failed_at)
    for day in (1, 3, 5):
        services.subscriptions_renew_due(now=failed_at + timedelta(days=day))
        sub.refresh_from_db()
        assert sub.status == lifecycle.PAST_DUE
    services.subscriptions_renew_due(now=failed_at + timedelta(days=7))
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert Invoice.objects.get(period_start=failed_at).status == Invoice.UNCOLLECTIBLE
    assert Payment.objects.filter(invoice__period_start=failed_at).count() == 5


def test_a_new_card_pays_the_open_invoice_at_once(stripe_fake):
    owner, account, sub = paid_subscription()
    give_card_number(account, DECLINING_CARD)
    failed_at = sub.current_period_end
    services.subscriptions_renew_due(now=failed_at)
    setup_intent_id, _secret = services.account_card_setup_start(account=account)
    from subscriptions import gateway

    gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id="pm_card_visa")
    services.account_card_setup_finish(
        account=account, setup_intent_id=setup_intent_id, actor=owner, now=failed_at + timedelta(hours=2)
    )
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start, sub.next_retry_at) == (lifecycle.ACTIVE, failed_at, None)
    assert Invoice.objects.get(period_start=failed_at).status == Invoice.PAID


def test_trial_without_card_expires(stripe_fake):
    owner, account = owner_with_account()
    sub = services.subscription_start(
        account=account, price=PriceFactory(plan=PlanFactory(trial_days=14)), actor=owner, now=T0
    )
    services.subscriptions_renew_due(now=sub.trial_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert sub.events.first().kind == "trial_expired"
    assert stripe_fake.payment_intents() == []


def test_trial_end_with_card_charges_and_becomes_active(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(trial_days=14), amount_minor=2900)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=T0)
    services.subscriptions_renew_due(now=sub.trial_end)
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start) == (lifecycle.ACTIVE, T0 + timedelta(days=14))
    assert sub.current_period_end == T0 + timedelta(days=14) + (
        datetime(2026, 5, 15, 9, tzinfo=UTC) - datetime(2026, 4, 15, 9, tzinfo=UTC)
    )
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [2900]


def test_trial_end_with_declining_card_goes_past_due(stripe_fake):
    owner, account = owner_with_account()
    give_card_number(account, DECLINING_CARD)
    sub = services.subscription_start(
        account=account, price=PriceFactory(plan=PlanFactory(trial_days=14)), actor=owner, now=T0
    )
    services.subscriptions_renew_due(now=sub.trial_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE


def test_credit_balance_pays_first_and_zero_is_paid_without_charging(stripe_fake):
    owner, account, sub = paid_subscription(amount_minor=1900)
    CreditEntry.objects.create(
        account=account, amount_minor=2500, currency="eur", kind=CreditEntry.GRANT, created_at=T0
    )
    services.subscriptions_renew_due(now=sub.current_period_end)
    invoice = Invoice.objects.get(period_start=sub.current_period_end)
    assert (invoice.status, invoice.credit_applied_minor, invoice.amount_due_minor) == (Invoice.PAID, 1900, 0)
    assert selectors.account_credit_balance_minor(account=account) == 600
    assert len(stripe_fake.payment_intents()) == 1


def test_stripe_down_during_renewal_loses_nothing_and_the_next_sweep_completes_it(stripe_fake, settings):
    owner, account, sub = paid_subscription(amount_minor=1900)
    due = sub.current_period_end
    settings.LOCALSTRIPE_URL = "http://127.0.0.1:9"  # connection refused
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    services.subscriptions_renew_due(now=due)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert Invoice.objects.get(period_start=due).status == Invoice.OPEN
    settings.LOCALSTRIPE_URL = stripe_fake.url
    later = due + timedelta(seconds=settings.BILLING_CLAIM_SECONDS + settings.BILLING_SWEEP_SECONDS + 1)
    services.subscriptions_renew_due(now=later)
    assert Invoice.objects.get(period_start=due).status == Invoice.PAID
    assert len(stripe_fake.succeeded_payment_intents()) == 2
