"""Reminders and receipts: each sent once, when still true, in the account's language."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from accounts.models import Account
from subscriptions import lifecycle, notices, selectors, services, tasks
from subscriptions.models import EmailSent, Invoice

from .factories import PlanFactory, PriceFactory, UserFactory, give_card, owner_with_account

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a task at `moment` as beat would, with what it queues on commit."""

    def run_task(task, moment: datetime, *args):
        with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
            return task.delay(*args).get()

    return run_task


def subjects() -> list[str]:
    return sorted(message.subject for message in mail.outbox)


def trialing(now, trial_days=14, card=False, language="en"):
    owner, account = owner_with_account(language=language)
    if card:
        give_card(account)
    price = PriceFactory(plan=PlanFactory(trial_days=trial_days, name="Pro"), amount_minor=2900)
    return owner, services.subscription_start(account=account, price=price, actor=owner, now=now)


def paid(now, cycle=lifecycle.MONTHLY, amount_minor=1900):
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(name="Team"), cycle=cycle, amount_minor=amount_minor)
    return owner, services.subscription_start(account=account, price=price, actor=owner, now=now)


# --- The daily reminders -------------------------------------------------------------------------------------
def test_the_daily_job_sends_each_reminder_once_even_when_it_runs_twice(stripe_fake, run):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    _o, trial = trialing(today - timedelta(days=12))  # ends in 2 days
    _o, annual = paid(today - timedelta(days=360), cycle=lifecycle.ANNUAL)  # renews in 5 days
    owner, monthly = paid(today - timedelta(days=20))
    services.subscription_pause(subscription=monthly, actor=owner, months=1, now=today - timedelta(days=29))
    _o, expiring = paid(today - timedelta(days=3))
    Account.objects.filter(pk=expiring.account_id).update(card_exp_month=6, card_exp_year=2026)

    assert run(tasks.reminders_sweep, today) == 4
    assert run(tasks.reminders_sweep, today + timedelta(minutes=5)) == 4  # the same four are due...
    assert run(tasks.reminders_sweep, today + timedelta(days=1)) >= 3  # ...and again the next day
    assert subjects() == sorted(
        [
            "Your trial ends on May 12, 2026",
            "Your annual subscription renews on May 15, 2026",
            "Your subscription resumes on May 11, 2026",
            "Your card expires next month",
        ]
    )  # ...but each went out once
    recipients = {message.subject: message.to for message in mail.outbox}
    assert recipients["Your card expires next month"][0] == expiring.account.billing_email
    assert set(EmailSent.objects.values_list("kind", flat=True)) == {
        "trial-ending",
        "renewal-upcoming",
        "pause-ending",
        "card-expiring",
    }
    assert trial.pk and annual.pk


def test_reminders_are_not_sent_for_what_no_longer_applies(stripe_fake, run):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    owner, canceling_trial = trialing(today - timedelta(days=12))
    services.subscription_schedule_cancel(subscription=canceling_trial, actor=owner, now=today - timedelta(days=1))
    paid(today - timedelta(days=25))  # monthly: no renewal reminder
    paid(today - timedelta(days=350), cycle=lifecycle.ANNUAL)  # annual, but renews in 15 days
    owner, canceling_annual = paid(today - timedelta(days=360), cycle=lifecycle.ANNUAL)
    services.subscription_schedule_cancel(subscription=canceling_annual, actor=owner, now=today - timedelta(days=1))
    _o, free = paid(today - timedelta(days=3), amount_minor=0)
    Account.objects.filter(pk=free.account_id).update(card_exp_month=6, card_exp_year=2026)  # nothing to charge
    mail.outbox.clear()
    assert run(tasks.reminders_sweep, today) == 0
    assert mail.outbox == []


def test_a_reminder_checks_again_when_it_runs(stripe_fake, run):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    owner, trial = trialing(today - timedelta(days=12))
    services.subscription_schedule_cancel(subscription=trial, actor=owner, now=today)
    mail.outbox.clear()
    assert run(tasks.send_notice, today, "trial-ending", trial.pk) is False  # queued before the cancel
    assert mail.outbox == []


def test_the_trial_reminder_tells_what_happens_with_and_without_a_card(stripe_fake, run):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    trialing(today - timedelta(days=12), card=True)
    trialing(today - timedelta(days=12), card=False)
    run(tasks.reminders_sweep, today)
    bodies = sorted(message.body for message in mail.outbox)
    with_card = next(body for body in bodies if "card on file is charged" in body)
    without = next(body for body in bodies if "Add a card" in body)
    assert "€29.00 (Monthly)" in with_card
    assert "http://127.0.0.1:8000/billing/card/" in without


def test_reminders_are_written_in_the_account_language(stripe_fake, run):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    trialing(today - timedelta(days=12), language="fr")
    run(tasks.reminders_sweep, today)
    assert "12 mai 2026" in mail.outbox[0].subject  # Django's French date format, whatever our catalogue


def test_the_reminder_queries_do_not_grow_with_the_number_of_subscriptions(stripe_fake, django_assert_num_queries):
    today = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    trialing(today - timedelta(days=12))
    with django_assert_num_queries(4):
        assert len(selectors.reminders_due(now=today)) == 1
    for _ in range(3):
        trialing(today - timedelta(days=12))
    with django_assert_num_queries(4):
        assert len(selectors.reminders_due(now=today)) == 4


def test_the_reminders_run_every_day_from_beat():
    from billing_portal.celery import app

    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["billing-reminders"]
    assert entry["task"] == "subscriptions.tasks.reminders_sweep"
    assert entry["schedule"].hour == {settings.BILLING_REMINDERS_HOUR_UTC}


# --- Receipts, cancellations, ends ------------------------------------------------------------------------
def test_a_receipt_goes_out_once_for_every_paid_invoice(stripe_fake, django_capture_on_commit_callbacks):
    owner, account = owner_with_account()
    give_card(account)
    with django_capture_on_commit_callbacks(execute=True):
        sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=1900), actor=owner, now=T0)
        services.subscriptions_renew_due(now=sub.current_period_end)
        services.subscriptions_renew_due(now=sub.current_period_end)
    numbers = [invoice.number for invoice in Invoice.objects.order_by("id")]
    assert subjects() == sorted(f"Receipt for invoice {number}" for number in numbers)
    assert len(numbers) == 2
    receipt = mail.outbox[0]
    assert "€19.00" in receipt.body and "Visa ···· 4242" in receipt.body
    for invoice in Invoice.objects.all():
        assert notices.notice_send(kind="payment-receipt", object_id=invoice.pk) is False


def test_scheduling_a_cancellation_emails_the_end_date(stripe_fake, django_capture_on_commit_callbacks):
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3))
    assert subjects() == [f"Your {sub.price.plan.name} subscription ends on May 1, 2026"]
    assert "undo" in mail.outbox[0].alternatives[0][0].lower()


def test_a_cancellation_undone_before_the_email_went_out_sends_nothing(stripe_fake, django_capture_on_commit_callbacks):
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3))
    services.subscription_undo_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3, minutes=1))
    for callback in queued:
        callback()
    assert mail.outbox == []


def test_canceling_again_after_an_undo_sends_a_new_confirmation(stripe_fake, django_capture_on_commit_callbacks):
    owner, account = owner_with_account()
    give_card(account)
    sub = services.subscription_start(account=account, price=PriceFactory(), actor=owner, now=T0)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_undo_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=4))
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0 + timedelta(days=5))
    assert len(mail.outbox) == 2


@pytest.mark.parametrize("how", ["cancel_at reached", "trial without card", "operator cancels now"])
def test_the_end_of_a_subscription_is_emailed_once(stripe_fake, django_capture_on_commit_callbacks, how):
    with django_capture_on_commit_callbacks(execute=True):
        if how == "trial without card":
            _owner, sub = trialing(T0)
            services.subscriptions_renew_due(now=sub.trial_end)
        elif how == "cancel_at reached":
            owner, sub = paid(T0)
            services.subscription_schedule_cancel(subscription=sub, actor=owner, now=T0)
            services.subscriptions_renew_due(now=sub.current_period_end)
        else:
            owner, sub = paid(T0)
            services.subscription_cancel_now(subscription=sub, actor=UserFactory(is_staff=True), now=T0)
        services.subscriptions_renew_due(now=T0 + timedelta(days=60))
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    ended = [message for message in mail.outbox if message.subject.endswith("subscription has ended")]
    assert len(ended) == 1
    if how == "trial without card":
        assert "nothing was charged" in ended[0].body


# --- Every notice is a complete, translatable trio ----------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(notices.NOTICES))
def test_every_notice_has_a_subject_text_and_html_template_with_translated_strings(kind):
    folder = Path(settings.BASE_DIR) / "templates" / "emails"
    for part in ("subject.txt", "body.txt", "body.html"):
        text = (folder / f"{kind}-{part}").read_text()
        assert "{% load i18n" in text and ("{% translate" in text or "{% blocktranslate" in text), (kind, part)
