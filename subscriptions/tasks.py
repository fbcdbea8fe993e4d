"""Celery tasks: thin wrappers that read the clock once and call one service.

Delivery is at least once (acks_late, reject_on_worker_lost), so every task is idempotent: the
services claim the account before moving money and settle each payment once, webhook events are
recorded once by id, and each email is recorded once by its key. No task waits longer than a
minute (a webhook retry): the beat sweep, not a long countdown, is what tries work again.
"""

from celery import current_app, shared_task

from billing_portal.lib import clock

from . import gateway, notices, reconciliation, selectors, services, webhooks


@shared_task
def sweep() -> int:
    """Fan out one task per due subscription, stale pending payment or refund and lost webhook event (beat)."""
    now = clock.now()
    stale = selectors.payment_ids_stale(now=now)
    stale_refunds = selectors.refund_ids_stale(now=now)
    lost = selectors.stripe_event_ids_unprocessed(now=now)
    due = selectors.subscription_ids_due(now=now)
    # One broker connection for the whole fan-out (thousands of messages on a busy day).
    with current_app.producer_or_acquire() as producer:
        for payment_id in stale:
            recover_payment.apply_async((payment_id,), producer=producer)
        for refund_id in stale_refunds:
            recover_refund.apply_async((refund_id,), producer=producer)
        for event_pk in lost:
            process_stripe_event.apply_async((event_pk,), producer=producer)
        for subscription_id in due:
            process_subscription.apply_async((subscription_id,), producer=producer)
    return len(due)


@shared_task
def process_subscription(subscription_id: int) -> int:
    return services.subscription_process_due(subscription_id=subscription_id, now=clock.now())


@shared_task
def recover_payment(payment_id: int) -> int:
    return services.payment_recover(payment_id=payment_id, now=clock.now())


@shared_task
def recover_refund(refund_id: int) -> int:
    return services.refund_recover(refund_id=refund_id, now=clock.now())


@shared_task
def reconcile() -> int:
    """Compare the last 30 days with Stripe (beat runs this daily); returns the differences found."""
    run = reconciliation.reconciliation_run(now=clock.now())
    return run.differences_count


@shared_task(
    autoretry_for=(gateway.GatewayError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=5
)
def process_stripe_event(event_pk: int) -> str:
    return webhooks.stripe_event_process(event_pk=event_pk, now=clock.now())


@shared_task
def send_notice(kind: str, object_id: int) -> bool:
    return notices.notice_send(kind=kind, object_id=object_id, now=clock.now())


@shared_task
def reminders_sweep() -> int:
    """Fan out one task per reminder due today (beat, daily); each is sent once by its key."""
    due = selectors.reminders_due(now=clock.now())
    with current_app.producer_or_acquire() as producer:
        for kind, object_id in due:
            send_notice.apply_async((kind, object_id), producer=producer)
    return len(due)
