"""Reliability on the real stack: PostgreSQL, Redis, real Celery workers, localstripe.

On CI (CI=true) these fail, never skip, when a service is missing (conftest.need).
"""

import re
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
from dateutil.relativedelta import relativedelta
from django.conf import settings

from accounts.models import Account
from billing_portal.lib import clock
from subscriptions import lifecycle, notices, services, tasks
from subscriptions.models import EmailSent, Invoice, Payment, StripeEvent, Subscription, SubscriptionEvent

from .factories import PlanFactory, PriceFactory, give_card, owner_with_account

# localstripe is not Stripe: the rate limit under test is ours, not a reason to run slowly here.
FAST_FAKE_STRIPE = {"STRIPE_MAX_REQUESTS_PER_SECOND": "2000"}
# Workers as in production (DEBUG off: no per-query debug cursor), still on localstripe.
PRODUCTION_LIKE = {
    "DEBUG": "false",
    "SECRET_KEY": "test-worker-" + "x" * 40,
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe",
}


def wait_until(condition, *, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def due_subscriptions(count: int, amount_minor: int = 1900) -> list[Subscription]:
    """`count` monthly subscriptions whose period ended an hour ago, sharing one Stripe customer and card.

    Rows are created directly (as if they had started a month ago); only the renewals go through
    Stripe, which is what this test is about.
    """
    owner, first = owner_with_account(name="Shared card")
    give_card(first)
    first.refresh_from_db()
    price = PriceFactory(plan=PlanFactory(), amount_minor=amount_minor)
    now = clock.now()
    period_end = now - timedelta(hours=1)
    anchor = period_end - relativedelta(months=1)
    others = Account.objects.bulk_create(
        Account(
            name=f"Load {n}",
            billing_email=f"load{n}@example.com",
            stripe_customer_id=first.stripe_customer_id,
            payment_method_id=first.payment_method_id,
            card_brand=first.card_brand,
            card_last4=first.card_last4,
            card_exp_month=first.card_exp_month,
            card_exp_year=first.card_exp_year,
        )
        for n in range(count - 1)
    )
    return Subscription.objects.bulk_create(
        Subscription(
            account=account,
            price=price,
            status=lifecycle.ACTIVE,
            amount_minor=price.amount_minor,
            currency=price.currency,
            billing_anchor_at=anchor,
            period_number=1,
            current_period_start=anchor,
            current_period_end=period_end,
            current_period_paid_minor=price.amount_minor,
            created_at=anchor,
        )
        for account in [first, *others]
    )


def renewal_invoices():
    return Invoice.objects.filter(billing_reason=Invoice.CYCLE)


@pytest.mark.long
@pytest.mark.celery
@pytest.mark.postgres
def test_500_renewals_on_two_workers_with_three_sweeps_and_a_killed_worker_charge_each_invoice_once(
    uses_postgres, celery_worker_process, stripe_fake
):
    count = 500
    subs = due_subscriptions(count)
    old_ends = {sub.pk: sub.current_period_end for sub in subs}
    claim_seconds = 4  # a killed worker's claims expire this fast here (300 s in production)
    env = {
        **PRODUCTION_LIKE,
        **FAST_FAKE_STRIPE,
        "BILLING_CLAIM_SECONDS": str(claim_seconds),
        "CELERY_TASK_TIME_LIMIT": "60",
    }
    doomed = celery_worker_process(concurrency=4, name="doomed", env=env)
    celery_worker_process(concurrency=4, name="survivor", env=env)
    queue = celery_worker_process.queue
    for _ in range(3):
        tasks.sweep.apply_async(queue=queue)

    def paid() -> int:
        return renewal_invoices().filter(status=Invoice.PAID).count()

    broker = redis.Redis.from_url(settings.REDIS_URL)
    started = time.monotonic()
    try:
        wait_until(lambda: paid() >= count // 2, timeout=90, what="half of the renewals")
        celery_worker_process.kill(doomed)  # SIGKILL to the worker and its pool, mid-run
        killed_at = paid()
        print(f"killed after {time.monotonic() - started:.1f}s with {killed_at} paid")
        assert killed_at < count, "the worker must die in the middle of the run"

        # What beat does: sweep again, once the queue is empty, until everything is done.
        def finished() -> bool:
            if paid() == count and not Payment.objects.filter(status=Payment.PENDING).exists():
                return True
            if broker.llen(queue) == 0:
                tasks.sweep.apply_async(queue=queue)
            return False

        wait_until(finished, timeout=90, what="every renewal to be paid", every=1)
        print(f"all paid after {time.monotonic() - started:.1f}s")
    except AssertionError:
        print(celery_worker_process.log("survivor")[-3000:])
        print("invoices", Counter(renewal_invoices().values_list("status", flat=True)))
        print("payments", Counter(Payment.objects.values_list("status", flat=True)))
        print("queue", broker.llen(queue), broker.keys(f"{queue}*"))
        print(
            "due",
            list(Subscription.objects.due(clock.now()).values_list("pk", "next_retry_at", "current_period_end")[:10]),
        )
        print(
            "claimed",
            list(
                Account.objects.filter(billing_claimed_until__isnull=False).values_list("pk", "billing_claimed_until")[
                    :10
                ]
            ),
        )
        raise

    # Every subscription renewed exactly once: one invoice for the next period, paid, one event.
    assert renewal_invoices().count() == count
    assert Counter(renewal_invoices().values_list("subscription_id", flat=True)) == Counter(old_ends.keys())
    for sub in Subscription.objects.filter(pk__in=old_ends):
        assert (sub.status, sub.period_number, sub.current_period_start) == (lifecycle.ACTIVE, 2, old_ends[sub.pk])
        assert sub.next_retry_at is None
    renewed = SubscriptionEvent.objects.filter(kind="renewed").values_list("subscription_id", flat=True)
    assert Counter(renewed) == Counter(old_ends.keys())
    # One successful charge per invoice, in our books and at Stripe.
    assert Payment.objects.filter(invoice__billing_reason=Invoice.CYCLE, status=Payment.SUCCEEDED).count() == count
    assert not Payment.objects.filter(status=Payment.PENDING).exists()
    succeeded = Counter(intent["metadata"]["invoice_id"] for intent in stripe_fake.succeeded_payment_intents())
    invoice_ids = {str(pk) for pk in renewal_invoices().values_list("pk", flat=True)}
    assert {invoice_id: n for invoice_id, n in succeeded.items() if invoice_id in invoice_ids} == dict.fromkeys(
        invoice_ids, 1
    )
    assert sum(succeeded.values()) == count

    # One receipt each. The receipt tasks the killed worker held come back from Redis only after
    # the visibility timeout (an hour); deliver every receipt task again now, as Redis will:
    # those already sent are not sent twice.
    previous = [-1]

    def receipts_settled() -> bool:
        sent = EmailSent.objects.filter(kind="payment-receipt").count()
        settled = broker.llen(queue) == 0 and sent == previous[0]
        previous[0] = sent
        return settled

    wait_until(receipts_settled, timeout=60, what="the receipts", every=2)
    late = [
        notices.notice_send(kind="payment-receipt", object_id=pk)
        for pk in renewal_invoices().values_list("pk", flat=True)
    ]
    assert late.count(True) <= 8  # at most what the killed worker held (4 running, 4 reserved)
    assert EmailSent.objects.filter(kind="payment-receipt").count() == count


@pytest.mark.celery
def test_stripe_down_during_a_renewal_on_a_worker_loses_nothing_and_a_later_sweep_completes_it(
    celery_worker_process, stripe_fake
):
    sub = due_subscriptions(1)[0]
    old_end = sub.current_period_end
    short = {"BILLING_CLAIM_SECONDS": "2", "BILLING_SWEEP_SECONDS": "2", "CELERY_TASK_TIME_LIMIT": "60"}
    down = celery_worker_process(
        name="down", env={**short, "LOCALSTRIPE_URL": "http://127.0.0.1:9", "STRIPE_MAX_NETWORK_RETRIES": "0"}
    )
    queue = celery_worker_process.queue
    tasks.sweep.apply_async(queue=queue)
    wait_until(lambda: Payment.objects.filter(invoice__subscription=sub).exists(), timeout=30, what="an attempt")
    renewed = re.compile(r"process_subscription\[[^\]]+\] succeeded")
    wait_until(lambda: renewed.search(celery_worker_process.log("down")), timeout=30, what="the renewal task to end")
    invoice = Invoice.objects.get(subscription=sub)
    sub.refresh_from_db()
    assert (invoice.status, sub.status) == (Invoice.OPEN, lifecycle.ACTIVE)  # not dunning: Stripe was away
    assert sub.next_retry_at is not None
    assert stripe_fake.payment_intents() == []
    celery_worker_process.kill(down)

    celery_worker_process(name="up", env={**short, **FAST_FAKE_STRIPE})

    def paid() -> bool:
        if Invoice.objects.filter(pk=invoice.pk, status=Invoice.PAID).exists():
            return True
        tasks.sweep.apply_async(queue=queue)
        return False

    wait_until(paid, timeout=40, what="the next sweeps to pay the invoice", every=2)
    sub.refresh_from_db()
    assert (sub.status, sub.current_period_start, sub.next_retry_at) == (lifecycle.ACTIVE, old_end, None)
    assert [intent["metadata"]["invoice_id"] for intent in stripe_fake.succeeded_payment_intents()] == [str(invoice.pk)]
    statuses = sorted(Payment.objects.filter(invoice=invoice).values_list("status", flat=True))
    assert statuses.count(Payment.SUCCEEDED) == 1
    assert set(statuses) <= {Payment.SUCCEEDED, Payment.ABANDONED}


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_signed_events_that_settle_a_renewal_left_pending(live_server, stripe_fake, monkeypatch):
    stripe_fake.register_webhook(f"{live_server.url}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)
    owner, account = owner_with_account()
    give_card(account)
    start = clock.now() - timedelta(days=40)
    sub = services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=start)
    with monkeypatch.context() as patch:  # the worker dies after Stripe charged, before recording it
        patch.setattr(services, "payment_settle", lambda **kwargs: kwargs["payment"])
        services.subscription_process_due(subscription_id=sub.pk, now=sub.current_period_end)
    payment = Payment.objects.get(invoice__billing_reason=Invoice.CYCLE)
    assert payment.status == Payment.PENDING
    wait_until(
        lambda: StripeEvent.objects.filter(type="payment_intent.succeeded", processed_at__isnull=False).count() == 2,
        timeout=20,
        what="localstripe's two payment_intent.succeeded events",
    )
    payment.refresh_from_db()
    sub.refresh_from_db()
    assert (payment.status, payment.invoice.status, sub.status) == (Payment.SUCCEEDED, Invoice.PAID, lifecycle.ACTIVE)
    start_payment = Payment.objects.exclude(pk=payment.pk).get()
    outcomes = StripeEvent.objects.filter(type="payment_intent.succeeded").values_list("outcome", flat=True)
    assert sorted(outcomes) == [
        f"payment {start_payment.pk} unchanged (succeeded)",
        f"payment {payment.pk}: pending -> succeeded",
    ]
