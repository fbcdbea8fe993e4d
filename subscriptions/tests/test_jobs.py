"""Jobs through a real Celery worker, and concurrent renewals on PostgreSQL."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from billing_portal.lib import clock
from subscriptions import lifecycle, services, tasks
from subscriptions.models import Invoice, Refund, Subscription

from .admin_support import OPERATOR, staff_in
from .factories import PlanFactory, PriceFactory, give_card, owner_with_account
from .test_admin_money import paid_payment, stripe_refunds
from .test_refund_recovery import Crash, die


def due_subscription(amount_minor=1900) -> Subscription:
    """A paid monthly subscription whose period ended a moment ago (by the real clock)."""
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(), amount_minor=amount_minor)
    started = clock.now() - timedelta(days=40)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=started)
    assert sub.current_period_end < clock.now()
    return sub


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.celery
def test_a_real_celery_worker_renews_a_due_subscription(celery_worker_process, stripe_fake):
    sub = due_subscription()
    old_end = sub.current_period_end
    worker = celery_worker_process()
    tasks.sweep.apply_async(queue=celery_worker_process.queue)
    try:
        wait_for(
            lambda: Invoice.objects.filter(subscription=sub, period_start=old_end, status=Invoice.PAID).exists(),
            what="the worker to renew the subscription",
        )
    except AssertionError:
        worker.terminate()
        print(celery_worker_process.log()[-4000:])
        raise
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start) == (lifecycle.ACTIVE, old_end)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [1900, 1900]


@pytest.mark.celery
def test_a_real_celery_worker_finishes_a_refund_a_dead_process_left_pending(
    celery_worker_process, stripe_fake, monkeypatch
):
    payment = paid_payment()
    asked = clock.now() - timedelta(seconds=settings.BILLING_CLAIM_SECONDS + 60)
    with monkeypatch.context() as patch:
        patch.setattr("subscriptions.gateway.refund_create", die)  # the web process dies before asking Stripe
        with pytest.raises(Crash):
            services.payment_refund(
                payment=payment, amount_minor=700, reason="Outage", actor=staff_in(OPERATOR), now=asked
            )
    worker = celery_worker_process()
    tasks.sweep.apply_async(queue=celery_worker_process.queue)
    try:
        wait_for(
            lambda: Refund.objects.filter(payment=payment, status=Refund.SUCCEEDED).exists(),
            what="the worker to finish the refund",
        )
    except AssertionError:
        worker.terminate()
        print(celery_worker_process.log()[-4000:])
        raise
    assert [item["amount"] for item in stripe_refunds(stripe_fake, payment.stripe_payment_intent_id)] == [700]
    payment.refresh_from_db()
    assert payment.refunded_minor == 700


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_renewals_of_one_subscription_charge_once(uses_postgres, stripe_fake):
    sub = due_subscription()
    now = clock.now()
    barrier = threading.Barrier(4)
    errors = []

    def renew():
        try:
            barrier.wait()
            services.subscription_process_due(subscription_id=sub.pk, now=now)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=renew) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Invoice.objects.filter(subscription=sub).count() == 2
    assert len(stripe_fake.succeeded_payment_intents()) == 2  # the start and one renewal


def _row(status, **fields):
    now = clock.now()
    base = {
        "current_period_start": now - timedelta(days=10),
        "current_period_end": now + timedelta(days=20),
        "trial_end": None,
        "cancel_at": None,
        "resume_at": None,
        "next_retry_at": None,
    }
    return {"status": status, **base, **fields}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "state",
    [
        _row(lifecycle.ACTIVE),
        _row(lifecycle.ACTIVE, current_period_end=clock.now() - timedelta(seconds=1)),
        _row(lifecycle.ACTIVE, cancel_at=clock.now() - timedelta(hours=1)),
        _row(lifecycle.ACTIVE, next_retry_at=clock.now() - timedelta(minutes=1)),
        _row(lifecycle.ACTIVE, next_retry_at=clock.now() + timedelta(minutes=1)),
        _row(lifecycle.TRIALING, trial_end=clock.now() + timedelta(days=1)),
        _row(lifecycle.TRIALING, trial_end=clock.now() - timedelta(days=1)),
        _row(lifecycle.PAST_DUE, next_retry_at=clock.now() - timedelta(days=1)),
        _row(lifecycle.PAST_DUE, next_retry_at=None, current_period_end=clock.now() - timedelta(days=1)),
        _row(lifecycle.PAUSED, resume_at=clock.now() - timedelta(days=1)),
        _row(lifecycle.PAUSED, resume_at=None, current_period_end=clock.now() - timedelta(days=1)),
        _row(lifecycle.CANCELED, current_period_end=clock.now() - timedelta(days=1)),
    ],
)
def test_a_loaded_subscription_is_due_exactly_when_the_sweep_query_finds_it(state):
    owner, account = owner_with_account()
    price = PriceFactory(plan=PlanFactory())
    sub = Subscription.objects.create(
        account=account,
        price=price,
        amount_minor=price.amount_minor,
        currency=price.currency,
        billing_anchor_at=state["current_period_start"],
        **state,
    )
    now = clock.now()
    assert sub.is_due(now) == Subscription.objects.due(now).filter(pk=sub.pk).exists()
