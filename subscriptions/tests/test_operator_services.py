"""The services behind the operator tools, and the rules they add."""

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions import lifecycle, services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import Invoice, SubscriptionEvent

from .admin_support import OPERATOR, snapshot, staff_in
from .factories import PlanFactory, PriceFactory, give_card, owner_with_account

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_a_trial_can_be_extended_only_while_trialing(status):
    assert lifecycle.can(status, "trial_extended") == (status == lifecycle.TRIALING)
    if status == lifecycle.TRIALING:
        assert lifecycle.next_status(status, "trial_extended") == lifecycle.TRIALING
    else:
        with pytest.raises(InvalidTransition):
            lifecycle.next_status(status, "trial_extended")


def trial(cycle=lifecycle.MONTHLY):
    owner, account = owner_with_account()
    price = PriceFactory(plan=PlanFactory(trial_days=14), cycle=cycle)
    return owner, services.subscription_start(account=account, price=price, actor=owner, now=T0)


@pytest.mark.django_db
def test_extending_a_trial_set_to_end_keeps_it_ending_at_the_new_trial_end():
    owner, sub = trial()
    services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=1))
    services.subscription_extend_trial(subscription=sub, days=7, actor=staff_in(OPERATOR), now=T0 + timedelta(days=2))
    sub.refresh_from_db()
    assert sub.trial_end == T0 + timedelta(days=21) == sub.cancel_at


@pytest.mark.django_db
def test_extending_a_commitment_trial_moves_the_commitment_end_too():
    owner, sub = trial(cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY)
    services.subscription_extend_trial(subscription=sub, days=5, actor=staff_in(OPERATOR), now=T0)
    sub.refresh_from_db()
    assert sub.commitment_end_at == datetime(2027, 4, 20, 9, 0, tzinfo=UTC)  # 12 months from the new trial end


@pytest.mark.django_db
def test_extend_trial_refuses_customers_bad_day_counts_and_ends_still_in_the_past():
    owner, sub = trial()
    operator = staff_in(OPERATOR)
    before = snapshot(sub)
    refused = [
        {"days": 7, "actor": owner, "now": T0},  # customers cannot extend their own trial
        {"days": 0, "actor": operator, "now": T0},
        {"days": 91, "actor": operator, "now": T0},
        {"days": 1, "actor": operator, "now": T0 + timedelta(days=20)},  # trial end + 1 day is still past
    ]
    for case in refused:
        with pytest.raises(InvalidTransition):
            services.subscription_extend_trial(subscription=sub, **case)
    assert snapshot(sub) == before


@pytest.mark.django_db
def test_every_event_records_the_price_the_subscription_has_after_it(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    small = PriceFactory(plan=PlanFactory(rank=1), amount_minor=1000)
    big = PriceFactory(plan=PlanFactory(rank=2), amount_minor=3000)
    sub = services.subscription_start(account=account, price=small, actor=owner, now=T0)
    services.subscription_change(subscription=sub, price=big, actor=owner, now=T0 + timedelta(days=3))
    events = list(SubscriptionEvent.objects.filter(subscription=sub).order_by("created_at"))
    assert [(event.kind, event.price) for event in events] == [("started", small), ("price_changed", big)]


@pytest.mark.django_db
def test_an_open_invoice_of_an_active_subscription_marked_uncollectible_stops_its_retries(stripe_fake):
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=1900), actor=owner, now=T0)
    # A renewal Stripe could not be reached for: the invoice is open, the sweep would retry.
    account.payment_method_id = ""
    account.save(update_fields=["payment_method_id"])
    invoice = Invoice.objects.create(
        account=account,
        subscription=sub,
        billing_reason=Invoice.CYCLE,
        price=sub.price,
        currency="eur",
        period_start=sub.current_period_end,
        period_end=sub.current_period_end + timedelta(days=30),
        subtotal_minor=1900,
        amount_due_minor=1900,
        created_at=sub.current_period_end,
    )
    type(sub).objects.filter(pk=sub.pk).update(next_retry_at=sub.current_period_end + timedelta(minutes=5))
    operator = staff_in(OPERATOR)
    services.invoice_mark_uncollectible(invoice=invoice, actor=operator, now=T0 + timedelta(days=31))
    sub.refresh_from_db()
    assert (sub.status, sub.next_retry_at) == (lifecycle.ACTIVE, None)
    event = SubscriptionEvent.objects.filter(subscription=sub).first()
    assert (event.kind, event.actor, event.data["invoice"]) == ("invoice_uncollectible", operator, invoice.number)
    with pytest.raises(InvalidTransition):
        services.invoice_mark_uncollectible(invoice=invoice, actor=owner, now=T0 + timedelta(days=31))
