"""Celery tasks: thin wrappers that read the clock once and call one service.

Delivery is at least once (acks_late), so every task is idempotent: the services claim the
account before moving money and settle each payment once.
"""

from celery import shared_task

from billing_portal.lib import clock

from . import reconciliation, selectors, services


@shared_task
def sweep() -> int:
    """Fan out one task per due subscription and per stale pending payment (beat runs this)."""
    now = clock.now()
    for payment_id in selectors.payment_ids_stale(now=now):
        recover_payment.delay(payment_id)
    due = selectors.subscription_ids_due(now=now)
    for subscription_id in due:
        process_subscription.delay(subscription_id)
    return len(due)


@shared_task
def process_subscription(subscription_id: int) -> int:
    return services.subscription_process_due(subscription_id=subscription_id, now=clock.now())


@shared_task
def recover_payment(payment_id: int) -> int:
    return services.payment_recover(payment_id=payment_id, now=clock.now())


@shared_task
def reconcile() -> int:
    """Compare the last 30 days with Stripe (beat runs this daily); returns the differences found."""
    run = reconciliation.reconciliation_run(now=clock.now())
    return run.differences_count
