"""Resilience settings: at-least-once tasks, short delays, one beat, Stripe retries, backoff, rate limit."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
import stripe
from django.conf import settings

from billing_portal.celery import app
from billing_portal.lib.ratelimit import LocalTokenBucket
from billing_portal.lib.singleton import SingletonLock
from conftest import ROOT, need
from subscriptions import gateway, lifecycle, services, tasks
from subscriptions.models import Payment

from .factories import PriceFactory, give_card, owner_with_account


def settings_in_a_new_process(**env) -> dict:
    """The settings a fresh process computes from `env` (they are read once, at start)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'rate': s.STRIPE_MAX_REQUESTS_PER_SECOND, "
        "'transport': getattr(s, 'CELERY_BROKER_TRANSPORT_OPTIONS', {})}))"
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("STRIPE_", "CELERY_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "billing_portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Celery ------------------------------------------------------------------------------------------------
def test_tasks_are_acknowledged_late_and_given_back_when_their_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_the_redis_visibility_timeout_is_set_and_no_task_waits_longer():
    visibility = settings.CELERY_VISIBILITY_TIMEOUT
    assert settings_in_a_new_process(REDIS_URL="redis://127.0.0.1:6379/0")["transport"] == {
        "visibility_timeout": visibility
    }
    # The longest delays any task can get, all well below the visibility timeout.
    assert tasks.process_stripe_event.retry_backoff_max < visibility
    assert settings.BILLING_SWEEP_SECONDS < visibility
    assert settings.BILLING_CLAIM_SECONDS < visibility
    assert app.conf.task_time_limit <= settings.BILLING_CLAIM_SECONDS < visibility
    app.loader.import_default_modules()
    assert app.conf.beat_schedule["billing-sweep"]["options"]["expires"] == settings.BILLING_SWEEP_SECONDS


def test_settings_refuse_a_delay_longer_than_the_visibility_timeout():
    result = settings_in_a_new_process(BILLING_SWEEP_SECONDS="7200", CELERY_VISIBILITY_TIMEOUT="3600")
    assert "BILLING_SWEEP_SECONDS must be shorter than CELERY_VISIBILITY_TIMEOUT" in result["error"]


def test_the_stripe_rate_limit_defaults_to_20_in_test_mode_and_80_live():
    assert settings_in_a_new_process(STRIPE_SECRET_KEY="sk_test_abc")["rate"] == 20
    assert settings_in_a_new_process(STRIPE_SECRET_KEY="sk_live_abc")["rate"] == 80
    assert settings_in_a_new_process(STRIPE_SECRET_KEY="sk_live_abc", STRIPE_MAX_REQUESTS_PER_SECOND="50")["rate"] == 50


# --- Exactly one beat ------------------------------------------------------------------------------------
@pytest.fixture
def redis_client():
    need(bool(settings.REDIS_URL), "Redis (REDIS_URL)")
    return redis.Redis.from_url(settings.REDIS_URL)


def test_a_second_beat_waits_until_the_first_one_stops(redis_client):
    name = f"test-beat-{uuid.uuid4().hex}"
    first, second = SingletonLock(redis_client, name, ttl=5), SingletonLock(redis_client, name, ttl=5)
    assert first.acquire(wait=False)
    assert not second.acquire(wait=False)
    first.release()
    assert second.acquire(wait=False)
    second.release()


def test_a_crashed_beat_frees_the_lock_after_its_ttl_and_a_live_one_keeps_it(redis_client):
    name = f"test-beat-{uuid.uuid4().hex}"
    crashed, live, standby = (SingletonLock(redis_client, name, ttl=1.5) for _ in range(3))
    assert crashed.acquire(wait=False)  # ...and never refreshes it
    started = time.monotonic()
    assert live.acquire(poll=0.05)
    assert 1.0 < time.monotonic() - started < 5
    live.keep(on_lost=lambda: None)
    time.sleep(3.2)  # two ttls: the refresher keeps the lock
    assert not standby.acquire(wait=False)
    lost = threading.Event()
    live.release()
    assert standby.acquire(wait=False)
    redis_client.delete(name)  # e.g. Redis restarted without its data
    standby.keep(on_lost=lost.set)
    assert lost.wait(2)


def test_the_beat_process_takes_the_lock_at_start(redis_client, monkeypatch):
    from billing_portal import celery as celery_module

    monkeypatch.setattr(celery_module.atexit, "register", lambda fn: None)
    lock = celery_module.beat_lock()
    assert lock is not None
    lock._lock.name = f"test-beat-{uuid.uuid4().hex}"
    monkeypatch.setattr(celery_module, "beat_lock", lambda: lock)
    celery_module._only_one_beat()
    assert redis_client.get(lock._lock.name) is not None
    lock.release()


# --- Rate limit ------------------------------------------------------------------------------------------
def test_a_local_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    bucket = LocalTokenBucket(rate=10, capacity=3, clock=lambda: now[0])
    assert [bucket.try_take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take() == pytest.approx(0.1)
    now[0] += 0.25
    assert [bucket.try_take() == 0.0 for _ in range(3)] == [True, True, False]


def test_the_redis_bucket_is_one_limit_for_every_process(redis_client):
    key = f"test-rate-{uuid.uuid4().hex}"
    rate, capacity = 40.0, 4
    # Three processes, each with its own connection, start taking tokens at the same moment and
    # print when they got each one.
    script = (
        "import redis, sys, time; from billing_portal.lib.ratelimit import RedisTokenBucket; "
        f"b = RedisTokenBucket(redis.Redis.from_url({settings.REDIS_URL!r}), {key!r}, {rate}, {capacity}); "
        "time.sleep(max(0, float(sys.argv[2]) - time.time())); "
        "print(*[b.take() * 0 + time.time() for _ in range(int(sys.argv[1]))])"
    )
    start_at = str(time.time() + 2)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, "14", start_at],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=30)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0]
    taken = sorted(float(moment) for output in outputs for moment in output.split())
    assert len(taken) == 42
    # However the three interleave, no window holds more than the burst plus the rate's share
    # (with a little slack: a busy machine may note a token's time a moment after it was taken).
    # Three separate buckets would let 12 tokens through at once and 120 a second after that.
    slack_tokens, slack_seconds = 2, 0.05
    for first in range(len(taken)):
        for last in range(first + capacity + slack_tokens + 1, len(taken)):
            allowed = (last - first - capacity - slack_tokens) / rate - slack_seconds
            assert taken[last] - taken[first] >= allowed


def test_every_stripe_request_takes_a_token(stripe_fake, monkeypatch, db):
    taken, sent = [], []
    monkeypatch.setattr(gateway, "_take_token", lambda: taken.append(1))
    original = stripe._http_client.RequestsClient.request

    def counting_request(self, *args, **kwargs):
        sent.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(stripe._http_client.RequestsClient, "request", counting_request)
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(
        account=account, price=PriceFactory(), actor=owner, now=datetime(2026, 4, 1, tzinfo=UTC)
    )
    services.subscriptions_renew_due(now=sub.current_period_end)
    assert len(sent) >= 10
    assert len(taken) == len(sent)


def test_without_redis_the_rate_limit_holds_per_process(settings, monkeypatch):
    settings.REDIS_URL = ""
    settings.STRIPE_MAX_REQUESTS_PER_SECOND = 7.0
    gateway._bucket_for.cache_clear()
    bucket = gateway._bucket_for(settings.REDIS_URL, gateway.rate_limit_key(), 7.0)
    assert isinstance(bucket, LocalTokenBucket) and bucket.rate == 7.0


# --- Retries and backoff ---------------------------------------------------------------------------------
def test_a_429_is_retried_with_growing_backoff_then_succeeds(monkeypatch, settings):
    settings.STRIPE_RATE_LIMIT_RETRIES = 3
    monkeypatch.setattr(gateway, "_take_token", lambda: None)
    slept = []
    monkeypatch.setattr(gateway, "_sleep", slept.append)
    answers = iter([stripe.RateLimitError("slow down"), stripe.RateLimitError("slow down"), "done"])

    def flaky():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert gateway._call(flaky) == "done"
    assert len(slept) == 2 and 0.5 <= slept[0] <= 0.75 and 1.0 <= slept[1] <= 1.5


def test_a_429_that_persists_becomes_a_gateway_error_and_the_sweep_retries_later(monkeypatch, settings):
    settings.STRIPE_RATE_LIMIT_RETRIES = 2
    monkeypatch.setattr(gateway, "_take_token", lambda: None)
    slept = []
    monkeypatch.setattr(gateway, "_sleep", slept.append)
    calls = []

    def always_429():
        calls.append(1)
        raise stripe.RateLimitError("slow down")

    with pytest.raises(gateway.GatewayError, match="RateLimitError"):
        gateway._call(always_429)
    assert (len(calls), len(slept)) == (3, 2)


def test_a_5xx_is_retried_by_the_sdk_then_reported(stripe_fake, monkeypatch, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    sent = []
    original = stripe._http_client.RequestsClient.request

    def counting_request(self, *args, **kwargs):
        sent.append(args[1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(stripe._http_client.RequestsClient, "request", counting_request)
    # localstripe answers 500 to a confirm that names a payment method.
    with pytest.raises(gateway.GatewayError, match="APIError"):
        gateway._call(gateway.client().v1.payment_intents.confirm, "pi_x", params={"payment_method": "pm_x"})
    assert len(sent) == 2  # the request and one retry


def test_the_sdk_is_told_to_retry_network_errors(settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 3
    assert gateway.client()._requestor._options.max_network_retries == 3


# --- The stub gateway (benchmarks) ----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_stub_gateway_renews_without_stripe(settings):
    settings.STRIPE_GATEWAY = "stub"
    settings.STRIPE_STUB_LATENCY_MS = 1
    owner, account = owner_with_account()
    account.stripe_customer_id, account.payment_method_id = "cus_stub", "pm_stub"
    account.save()
    sub = services.subscription_start(
        account=account, price=PriceFactory(), actor=owner, now=datetime(2026, 4, 1, tzinfo=UTC)
    )
    services.subscriptions_renew_due(now=sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert Payment.objects.filter(status=Payment.SUCCEEDED).count() == 2
    assert all(p.stripe_payment_intent_id.startswith("pi_stub_") for p in Payment.objects.all())


def test_the_stub_gateway_refuses_to_run_with_a_live_key():
    result = settings_in_a_new_process(STRIPE_GATEWAY="stub", STRIPE_SECRET_KEY="sk_live_x")
    assert "STRIPE_GATEWAY" in result["error"]
