"""The daily job: abandon flows open for more than a day; a save counts if the subscription is
still live (and not set to end) 30 days later."""

from datetime import timedelta

import pytest

from billing_portal.celery import app
from retention import services, tasks
from retention.models import CancellationFlow, Reason
from subscriptions import services as subscription_services
from subscriptions.tests.factories import UserFactory

from .conftest import T0

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=10)
DAY = timedelta(days=1)


def kept_flow(customer, now=NOW, reason=Reason.OTHER) -> CancellationFlow:
    flow = services.flow_start(
        account=customer.account, subscription=customer.subscription, actor=customer.owner, reason=reason, now=now
    )
    return services.flow_keep(flow=flow, actor=customer.owner, now=now)


def test_a_save_holds_when_the_subscription_is_still_live_30_days_later(customer):
    flow = kept_flow(customer)
    assert services.flows_settle(now=NOW + 29 * DAY)["saves_held"] == 0
    flow.refresh_from_db()
    assert flow.save_held is None
    result = services.flows_settle(now=NOW + 30 * DAY)
    assert (result["saves_held"], result["saves_lost"]) == (1, 0)
    flow.refresh_from_db()
    assert (flow.outcome, flow.save_held, flow.save_checked_at) == ("saved", True, NOW + 30 * DAY)


def test_a_save_is_lost_when_the_subscription_ended_within_30_days(customer):
    flow = kept_flow(customer)
    subscription_services.subscription_cancel_now(
        subscription=customer.subscription, actor=UserFactory(is_staff=True), now=NOW + 5 * DAY
    )
    assert services.flows_settle(now=NOW + 30 * DAY)["saves_lost"] == 1
    flow.refresh_from_db()
    assert (flow.outcome, flow.save_held) == ("saved", False)


def test_a_save_is_lost_when_the_customer_canceled_again_within_30_days(customer):
    first = kept_flow(customer)
    second = services.flow_start(
        account=customer.account,
        subscription=customer.subscription,
        actor=customer.owner,
        reason=Reason.OTHER,
        skip_offers=True,
        now=NOW + 3 * DAY,
    )
    services.flow_confirm(flow=second, actor=customer.owner, now=NOW + 3 * DAY)
    services.flows_settle(now=NOW + 30 * DAY)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.save_held is False  # still live on day 30, but set to end: not a save
    assert (second.outcome, second.save_held) == ("canceled", None)


def test_the_job_is_idempotent(customer):
    kept_flow(customer)
    services.flow_start(
        account=customer.account, subscription=customer.subscription, actor=customer.owner, reason="", now=NOW + DAY
    )
    first = services.flows_settle(now=NOW + 40 * DAY)
    assert first == {"abandoned": 1, "undone": 0, "saves_held": 1, "saves_lost": 0}
    rows = list(CancellationFlow.objects.order_by("pk").values())
    assert services.flows_settle(now=NOW + 41 * DAY) == {"abandoned": 0, "undone": 0, "saves_held": 0, "saves_lost": 0}
    assert list(CancellationFlow.objects.order_by("pk").values()) == rows


def test_an_undo_counts_as_a_save_checked_30_days_after_the_undo(customer):
    flow = services.flow_start(
        account=customer.account, subscription=customer.subscription, actor=customer.owner, reason="other", now=NOW
    )
    services.flow_confirm(flow=flow, actor=customer.owner, now=NOW)
    undo_at = NOW + 10 * DAY
    services.cancellation_undo(account=customer.account, actor=customer.owner, now=undo_at)
    flow.refresh_from_db()
    assert (flow.outcome, flow.undone_at, flow.cancel_at) == ("saved", undo_at, T0.replace(month=5))
    assert services.flows_settle(now=NOW + 30 * DAY)["saves_held"] == 0  # 30 days from the undo, not the flow
    assert services.flows_settle(now=undo_at + 30 * DAY)["saves_held"] == 1


def test_a_cancellation_undone_outside_the_flow_is_turned_into_a_save_by_the_job(customer):
    flow = services.flow_start(
        account=customer.account, subscription=customer.subscription, actor=customer.owner, reason="other", now=NOW
    )
    services.flow_confirm(flow=flow, actor=customer.owner, now=NOW)
    undo_at = NOW + 2 * DAY
    # The billing page's own undo button calls the service directly.
    subscription_services.subscription_undo_cancel(
        subscription=customer.subscription, actor=customer.owner, now=undo_at
    )
    assert services.flows_settle(now=NOW + 3 * DAY)["undone"] == 1
    flow.refresh_from_db()
    assert (flow.outcome, flow.undone_at) == ("saved", undo_at)


def test_a_canceled_flow_whose_subscription_ended_stays_canceled(customer):
    flow = services.flow_start(
        account=customer.account, subscription=customer.subscription, actor=customer.owner, reason="other", now=NOW
    )
    services.flow_confirm(flow=flow, actor=customer.owner, now=NOW)
    subscription_services.subscriptions_renew_due(now=T0.replace(month=5))
    assert services.flows_settle(now=T0.replace(month=7)) == {
        "abandoned": 0,
        "undone": 0,
        "saves_held": 0,
        "saves_lost": 0,
    }
    flow.refresh_from_db()
    assert flow.outcome == "canceled"


def test_the_celery_task_runs_the_settlement_with_the_clock(customer, frozen):
    kept_flow(customer)
    frozen.set(NOW + 31 * DAY)
    assert tasks.settle_flows.apply().get() == {"abandoned": 0, "undone": 0, "saves_held": 1, "saves_lost": 0}


def test_beat_runs_the_settlement_daily():
    app.finalize()
    schedule = app.conf.beat_schedule["retention-settle-flows"]
    assert schedule["task"] == "retention.tasks.settle_flows"
    assert schedule["schedule"].remaining_estimate is not None  # a crontab, once a day at 03:30 UTC
    assert (schedule["schedule"].hour, schedule["schedule"].minute) == ({3}, {30})
