"""`subscription_apply_discount`: through the one transition path, refused where the rules say so."""

from datetime import timedelta

import pytest

from subscriptions import lifecycle
from subscriptions import services as subscription_services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import SubscriptionEvent
from subscriptions.tests.factories import UserFactory

from .conftest import T0, make_customer, snapshot

pytestmark = pytest.mark.django_db


def test_a_discount_is_recorded_on_the_subscription_and_in_the_audit_log(customer):
    sub = customer.subscription
    subscription_services.subscription_apply_discount(
        subscription=sub, percent=30, periods=3, actor=customer.owner, now=T0 + timedelta(days=2), reason="why"
    )
    assert (sub.discount_percent, sub.discount_periods_left) == (30, 3)
    event = SubscriptionEvent.objects.get(subscription=sub, kind="discount_applied")
    assert (event.from_status, event.to_status, event.actor_kind, event.reason) == (
        "active",
        "active",
        "customer",
        "why",
    )
    assert event.data == {"percent": 30, "periods": 3}


@pytest.mark.parametrize(("percent", "periods"), [(0, 3), (101, 3), (30, 0), (30, 25)])
def test_out_of_range_discounts_are_refused_and_change_nothing(customer, percent, periods):
    before = snapshot(customer.subscription)
    with pytest.raises(InvalidTransition):
        subscription_services.subscription_apply_discount(
            subscription=customer.subscription, percent=percent, periods=periods, actor=customer.owner, now=T0
        )
    assert snapshot(customer.subscription) == before


def test_a_second_discount_while_one_runs_is_refused(customer):
    sub = customer.subscription
    subscription_services.subscription_apply_discount(
        subscription=sub, percent=30, periods=3, actor=customer.owner, now=T0
    )
    before = snapshot(sub)
    with pytest.raises(InvalidTransition, match="already running"):
        subscription_services.subscription_apply_discount(
            subscription=sub, percent=50, periods=1, actor=customer.owner, now=T0
        )
    assert snapshot(sub) == before


def test_a_paused_or_canceled_subscription_cannot_get_a_discount(customer):
    sub = customer.subscription
    subscription_services.subscription_pause(subscription=sub, actor=customer.owner, months=1, now=T0)
    before = snapshot(sub)
    with pytest.raises(InvalidTransition, match="paused"):
        subscription_services.subscription_apply_discount(
            subscription=sub, percent=30, periods=3, actor=customer.owner, now=T0
        )
    assert snapshot(sub) == before
    subscription_services.subscription_cancel_now(subscription=sub, actor=UserFactory(is_staff=True), now=T0)
    with pytest.raises(InvalidTransition):
        subscription_services.subscription_apply_discount(
            subscription=sub, percent=30, periods=3, actor=customer.owner, now=T0
        )


def test_a_free_subscription_cannot_be_discounted(catalog, stripe_fake):
    free = make_customer(catalog["free"][lifecycle.MONTHLY], card=False)
    with pytest.raises(InvalidTransition, match="free"):
        subscription_services.subscription_apply_discount(
            subscription=free.subscription, percent=30, periods=3, actor=free.owner, now=T0
        )


def test_a_trial_discount_applies_to_the_first_paid_invoice(catalog, stripe_fake):
    from subscriptions.models import Invoice
    from subscriptions.tests.factories import give_card

    trial = make_customer(catalog["studio"][lifecycle.MONTHLY], card=False)
    subscription_services.subscription_apply_discount(
        subscription=trial.subscription, percent=50, periods=1, actor=trial.owner, now=T0
    )
    give_card(trial.account)
    subscription_services.subscriptions_renew_due(now=trial.subscription.trial_end)
    invoice = Invoice.objects.get(account=trial.account)
    assert (invoice.status, invoice.amount_due_minor) == (Invoice.PAID, 4950)
    assert trial.refresh().status == lifecycle.ACTIVE
