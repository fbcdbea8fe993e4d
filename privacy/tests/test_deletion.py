"""Deleting an account: the page, the blockers, the roles, the grace period and undo, and the erasure."""

import json
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import models
from django.test import Client

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from privacy import erasure, services, tasks
from privacy.models import ExportJob
from subscriptions import gateway, lifecycle
from subscriptions import services as billing
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import CreditEntry, EmailSent, Invoice, Payment, Subscription, SubscriptionEvent
from subscriptions.tests.factories import (
    DECLINING_CARD,
    PASSWORD,
    MembershipFactory,
    PriceFactory,
    UserFactory,
    give_card,
    give_card_number,
    owner_with_account,
)

pytestmark = pytest.mark.django_db

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def personal_data_found(values: list[str]) -> dict[str, set[str]]:
    """Every model's text fields scanned for the values: {"app.Model.field": {value, ...}}.

    Scanning every installed model (not a list of known ones) catches a new model that copies a
    name or an email address and has no eraser.
    """
    needles = [value.casefold() for value in values]
    found: dict[str, set[str]] = {}
    for model in apps.get_models():
        fields = [field for field in model._meta.concrete_fields if isinstance(field, TEXT_FIELDS)]
        if not fields:
            continue
        for row in model._default_manager.values_list(*[field.attname for field in fields]):
            for field, value in zip(fields, row, strict=True):
                if value is None:
                    continue
                text = (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).casefold()
                for needle, original in zip(needles, values, strict=True):
                    if needle in text:
                        found.setdefault(f"{model._meta.label}.{field.name}", set()).add(original)
    return found


def confirm(client, account, password=PASSWORD, name=None):
    return client.post(
        "/account/delete/", {"password": password, "account_name": account.name if name is None else name}
    )


# --- The page ------------------------------------------------------------------------------------
def test_the_delete_page_says_what_happens_and_when_and_offers_the_export(client, known_account, settings):
    k = known_account
    client.force_login(k.owner)
    now = clock.now()
    with time_machine.travel(now, tick=False):
        page = client.get("/account/delete/").content.decode()
    assert "Your subscription (" in page and "ends immediately" in page
    assert "no refund" in page
    due = now + timedelta(days=settings.PRIVACY_DELETION_GRACE_DAYS)
    # The grace period's end, in the account's timezone, with the 14 days spelled out on the account page.
    from django.utils import formats, timezone

    with timezone.override(k.account.timezone):
        assert formats.date_format(timezone.localtime(due), "DATE_FORMAT") in page
    assert "All 3 members lose access" in page
    assert "kept for 10 years" in page
    assert "undo the deletion" in page
    assert 'action="/account/export/"' in page
    assert "Verwijder Bakkerij" in page  # what to type
    assert "outstanding balance" not in page


def test_the_account_page_links_to_the_deletion_for_owners_only(client, known_account):
    client.force_login(known_account.owner)
    page = client.get("/account/").content.decode()
    assert 'href="/account/delete/"' in page
    assert "grace period of 14 days" in page
    client.force_login(known_account.member)
    page = client.get("/account/").content.decode()
    assert 'href="/account/delete/"' not in page
    assert "Only the account's owner can do this" in page and "Zoë Verwijder" in page


# --- Roles and bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["admin", "member"])
def test_a_billing_admin_or_member_cannot_delete_and_is_told_who_can(client, known_account, role):
    k = known_account
    client.force_login(getattr(k, role))
    for response in (client.get("/account/delete/"), confirm(client, k.account), client.post("/account/delete/undo/")):
        assert response.status_code == 403
        page = response.content.decode()
        assert "Only an owner of the account can" in page
        assert "Zoë Verwijder" in page and "zoe.verwijder@example.com" in page
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at is None
    k.subscription.refresh_from_db()
    assert k.subscription.status == lifecycle.ACTIVE
    with pytest.raises(services.OwnerRequired):
        services.account_deletion_request(account=k.account, actor=getattr(k, role))


@pytest.mark.parametrize(
    ("password", "name", "error"),
    [
        ("wrong-password", "Verwijder Bakkerij", "This password is not correct."),
        (PASSWORD, "Verwijder", "This is not the account&#x27;s name."),
        (PASSWORD, "verwijder bakkerij", "This is not the account&#x27;s name."),
    ],
)
def test_a_wrong_password_or_account_name_is_a_form_error_and_nothing_changes(
    client, known_account, password, name, error
):
    k = known_account
    events = SubscriptionEvent.objects.count()
    client.force_login(k.owner)
    response = confirm(client, k.account, password=password, name=name)
    assert response.status_code == 200
    assert error in response.content.decode()
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at is None
    assert Subscription.objects.get(pk=k.subscription.pk).status == lifecycle.ACTIVE
    assert SubscriptionEvent.objects.count() == events
    assert mail.outbox == []


def test_the_actions_need_post_and_a_csrf_token(known_account):
    k = known_account
    client = Client(enforce_csrf_checks=True)
    client.force_login(k.owner)
    assert client.get("/account/delete/undo/").status_code == 405
    assert confirm(client, k.account).status_code == 403
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at is None


@pytest.fixture
def account_with_balance_due(known_account):
    """The known account whose latest renewal failed: one open invoice, past due."""
    k = known_account
    give_card_number(k.account, DECLINING_CARD)
    billing.subscriptions_renew_due(now=k.subscription.current_period_end + timedelta(minutes=1))
    k.subscription.refresh_from_db()
    assert k.subscription.status == lifecycle.PAST_DUE
    return k


def test_a_balance_due_blocks_the_deletion_and_points_to_the_billing_page(client, account_with_balance_due):
    k = account_with_balance_due
    open_invoice = Invoice.objects.get(account=k.account, status=Invoice.OPEN)
    client.force_login(k.owner)
    page = client.get("/account/delete/").content.decode()
    assert "First, pay the outstanding balance" in page
    assert f"Invoice {open_invoice.number}" in page
    assert 'href="/billing/"' in page
    assert '<fieldset class="plain" disabled>' in page
    response = confirm(client, k.account)  # the disabled form, posted anyway
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert messages == ["Please pay the outstanding balance before deleting the account."]
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at is None
    k.subscription.refresh_from_db()
    assert k.subscription.status == lifecycle.PAST_DUE
    assert Invoice.objects.get(pk=open_invoice.pk).status == Invoice.OPEN
    assert mail.outbox == []


# --- Asking for the deletion, double submission, undo ----------------------------------------------
def test_confirming_ends_the_subscription_now_schedules_the_deletion_and_emails(client, known_account, settings):
    k = known_account
    client.force_login(k.owner)
    now = clock.now()
    with time_machine.travel(now, tick=False):
        response = confirm(client, k.account)
    assert response["Location"] == "/account/"
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at == now
    assert k.account.deletion_due_at == now + timedelta(days=14)
    k.subscription.refresh_from_db()
    assert (k.subscription.status, k.subscription.ended_at) == (lifecycle.CANCELED, now)
    event = k.subscription.events.first()
    assert (event.kind, event.actor, event.actor_kind) == ("canceled_now", k.owner, SubscriptionEvent.CUSTOMER)
    assert Payment.objects.filter(invoice__account=k.account).count() == 3  # nothing refunded or charged
    # The confirmation email goes to the billing contacts, in the account's language (nl).
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == [
        "boekhouding@verwijder.example",
        "bram.beheer@example.com",
        "zoe.verwijder@example.com",
    ]
    assert "Verwijder Bakkerij" in message.subject
    assert "http://127.0.0.1:8000/account/" in message.body
    page = client.get("/account/").content.decode()
    assert "Deletion scheduled for" in page
    assert "Undo the deletion" in page
    # Nothing is carried out before the grace period ends.
    assert services.accounts_delete_due(now=now + timedelta(days=13, hours=23)) == 0


def test_a_double_submission_changes_nothing_more(client, known_account):
    k = known_account
    client.force_login(k.owner)
    confirm(client, k.account)
    k.account.refresh_from_db()
    first = (k.account.deletion_requested_at, k.account.deletion_due_at)
    response = confirm(client, k.account)
    assert response["Location"] == "/account/"
    messages = [str(m) for m in client.get("/account/").context["messages"]]
    assert "This account is already scheduled for deletion." in messages
    assert services.account_deletion_request(account=k.account, actor=k.owner) is False
    k.account.refresh_from_db()
    assert (k.account.deletion_requested_at, k.account.deletion_due_at) == first
    assert SubscriptionEvent.objects.filter(kind="canceled_now").count() == 1
    assert len(mail.outbox) == 1


def test_an_owner_undoes_the_deletion_within_the_grace_period_and_can_subscribe_again(client, known_account):
    k = known_account
    client.force_login(k.owner)
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    # While the deletion is pending, nothing new can be started.
    with pytest.raises(InvalidTransition, match="scheduled for deletion"):
        billing.subscription_start(account=k.account, price=k.subscription.price, actor=k.owner, now=now)
    with time_machine.travel(now + timedelta(days=13), tick=False):
        response = client.post("/account/delete/undo/")
        messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("The deletion is canceled" in m and "subscription stays canceled" in m for m in messages)
    k.account.refresh_from_db()
    assert (k.account.deletion_requested_at, k.account.deletion_due_at, k.account.deleted_at) == (None, None, None)
    assert k.account.name == "Verwijder Bakkerij" and k.account.card_last4 == "4242"
    assert Membership.objects.filter(account=k.account).count() == 3
    k.subscription.refresh_from_db()
    assert k.subscription.status == lifecycle.CANCELED  # it stays canceled
    # The daily job has nothing to do, even long after the original due date.
    assert services.accounts_delete_due(now=now + timedelta(days=30)) == 0
    assert not gateway.customer_is_deleted(customer_id=k.account.stripe_customer_id)
    # Undoing twice is harmless; and the owner can resubscribe.
    assert services.account_deletion_undo(account=k.account, actor=k.owner, now=now + timedelta(days=13)) is False
    new = billing.subscription_start(
        account=k.account, price=k.subscription.price, actor=k.owner, now=now + timedelta(days=13)
    )
    assert new.status == lifecycle.ACTIVE


def test_undo_is_refused_once_the_grace_period_has_ended(known_account):
    k = known_account
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    with pytest.raises(services.DeletionRefused, match="grace period has ended"):
        services.account_deletion_undo(account=k.account, actor=k.owner, now=now + timedelta(days=14))
    k.account.refresh_from_db()
    assert k.account.deletion_requested_at == now


def test_members_see_the_pending_deletion_on_every_page(client, known_account):
    k = known_account
    services.account_deletion_request(account=k.account, actor=k.owner)
    client.force_login(k.member)
    page = client.get("/billing/").content.decode()
    assert "This account will be deleted on" in page
    assert "An owner of the account asked for it" in page


# --- Carrying it out ------------------------------------------------------------------------------
def test_the_deletion_job_erases_personal_data_everywhere_and_keeps_invoices_under_a_pseudonym(
    client, known_account, login_throttling, django_capture_on_commit_callbacks
):
    k = known_account
    operator = UserFactory(is_staff=True, name="Olivia Operator", email="olivia@operator.example")
    CreditEntry.objects.create(
        account=k.account,
        amount_minor=500,
        currency="eur",
        kind=CreditEntry.GRANT,
        note="Goodwill for Zoë after the outage",
        created_by=operator,
        created_at=clock.now(),
    )
    for obj in (k.account, k.owner, k.subscription):
        LogEntry.objects.create(
            user=operator,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=CHANGE,
            change_message=json.dumps([{"added": {"name": "membership", "object": str(k.owner.membership)}}]),
        )
    client.post("/accounts/login/", {"username": k.admin.email, "password": "a wrong guess"})
    assert AccessAttempt.objects.filter(username=k.admin.email).exists()
    export = services.export_build(job_id=services.export_request(account=k.account, actor=k.owner).pk)
    customer_id = k.account.stripe_customer_id
    card_id = k.account.payment_method_id
    member_client = Client()
    member_client.force_login(k.member)

    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    values = k.personal_values
    before = personal_data_found(values)
    # The scan can fail: before the deletion, the data is where we expect it.
    assert {
        "accounts.Account.name",
        "accounts.Account.billing_email",
        "accounts.User.name",
        "accounts.User.email",
        "subscriptions.Invoice.customer_name",
        "subscriptions.Invoice.customer_email",
        "subscriptions.SubscriptionEvent.reason",
        "subscriptions.CreditEntry.note",
        "subscriptions.EmailSent.recipients",
        "axes.AccessAttempt.username",
        "admin.LogEntry.object_repr",
        "admin.LogEntry.change_message",
    } <= set(before)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):  # the export file goes once committed
        assert services.accounts_delete_due(now=now + timedelta(days=14)) == 1

    assert personal_data_found(values) == {}
    account = Account.objects.get(pk=k.account.pk)
    assert account.deleted_at == now + timedelta(days=14)
    assert account.name.startswith("deleted-")
    assert account.billing_email == f"{account.name}@deleted.invalid"
    assert (account.card_last4, account.card_brand, account.payment_method_id) == ("", "", "")
    # Invoices and payments stay, amounts untouched, under the account's pseudonym.
    invoices = list(Invoice.objects.filter(account=account).order_by("created_at", "id"))
    assert [i.pk for i in invoices] == [i.pk for i in k.invoices]
    assert {(i.amount_due_minor, i.status, i.customer_name, i.customer_email) for i in invoices} == {
        (1999, Invoice.PAID, account.name, account.billing_email)
    }
    assert Payment.objects.filter(invoice__account=account, status=Payment.SUCCEEDED).count() == 3
    assert CreditEntry.objects.get(kind=CreditEntry.GRANT).amount_minor == 500
    # Stripe: the customer is gone, and its card is no longer attached to anyone.
    assert gateway.customer_is_deleted(customer_id=customer_id)
    assert gateway.payment_method_customer(payment_method_id=card_id) == ""
    # Members lost access: no memberships, deactivated logins without a password, sessions ended.
    assert not Membership.objects.filter(account=account).exists()
    for user in User.objects.filter(pk__in=[k.owner.pk, k.admin.pk, k.member.pk]):
        assert (user.is_active, user.has_usable_password(), user.name) == (False, False, "")
        assert user.email.endswith("@deleted.invalid")
    assert member_client.get("/account/").status_code == 302  # logged out
    response = client.post("/accounts/login/", {"username": "zoe.verwijder@example.com", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    # The operator keeps their own login; the export file is gone.
    assert User.objects.get(pk=operator.pk).is_active
    assert not ExportJob.objects.exists()
    assert not export.path.exists()
    # The last email went out before the addresses were erased.
    assert len(mail.outbox) == 1
    assert "zoe.verwijder@example.com" in mail.outbox[0].to
    assert "Verwijder Bakkerij" in mail.outbox[0].subject


def test_carrying_out_twice_or_after_it_is_done_changes_nothing(known_account):
    k = known_account
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    due = now + timedelta(days=14)
    assert services.account_deletion_carry_out(account_id=k.account.pk, now=due) is True
    name = Account.objects.get(pk=k.account.pk).name
    assert services.account_deletion_carry_out(account_id=k.account.pk, now=due) is False
    assert services.accounts_delete_due(now=due + timedelta(days=1)) == 0
    assert Account.objects.get(pk=k.account.pk).name == name
    assert EmailSent.objects.filter(kind="account-deleted").count() == 1


def test_when_stripe_is_unreachable_nothing_is_erased_until_the_next_run(known_account, monkeypatch):
    k = known_account
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    mail.outbox.clear()

    def unreachable(**kwargs):
        raise gateway.GatewayError("APIConnectionError: no route")

    monkeypatch.setattr(gateway, "customer_delete", unreachable)
    assert services.accounts_delete_due(now=now + timedelta(days=14)) == 0
    account = Account.objects.get(pk=k.account.pk)
    assert (account.deleted_at, account.name) == (None, "Verwijder Bakkerij")
    assert Membership.objects.filter(account=account).count() == 3
    assert mail.outbox == []
    monkeypatch.undo()
    assert services.accounts_delete_due(now=now + timedelta(days=15)) == 1
    assert gateway.customer_is_deleted(customer_id=account.stripe_customer_id)


def test_with_no_grace_period_the_account_is_deleted_at_once_and_the_owner_logged_out(client, settings, stripe_fake):
    settings.PRIVACY_DELETION_GRACE_DAYS = 0
    owner, account = owner_with_account(name="Quick Exit")
    give_card(account)
    account.refresh_from_db()
    subscription = billing.subscription_start(account=account, price=PriceFactory(), actor=owner)
    client.force_login(owner)
    page = client.get("/account/delete/").content.decode()
    assert "This cannot be undone." in page
    response = confirm(client, account)
    assert response["Location"] == "/account/deleted/"
    assert "Your account has been deleted" in client.get("/account/deleted/").content.decode()
    assert client.get("/account/").status_code == 302  # logged out
    account.refresh_from_db()
    assert account.deleted_at is not None and account.name.startswith("deleted-")
    assert Subscription.objects.get(pk=subscription.pk).status == lifecycle.CANCELED
    assert gateway.customer_is_deleted(customer_id=account.stripe_customer_id)
    # Only the final email: there is no grace period to announce.
    assert [m.subject for m in mail.outbox] == ["Quick Exit has been deleted"]


def test_an_account_without_stripe_customer_or_subscription_is_deleted_too(stripe_fake):
    owner, account = owner_with_account(name="Never Paid")
    now = clock.now()
    services.account_deletion_request(account=account, actor=owner, now=now)
    assert services.accounts_delete_due(now=now + timedelta(days=14)) == 1
    assert personal_data_found(["Never Paid", owner.email]) == {}


def test_the_daily_task_fans_out_one_deletion_per_due_account(known_account, monkeypatch):
    k = known_account
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now - timedelta(days=15))
    queued = []
    monkeypatch.setattr(tasks.carry_out_deletion, "delay", lambda account_id: queued.append(account_id))
    assert tasks.carry_out_deletions() == 1
    assert queued == [k.account.pk]
    assert tasks.carry_out_deletion(k.account.pk) is True
    assert Account.objects.get(pk=k.account.pk).deleted_at is not None


def test_the_beat_schedule_runs_deletions_and_export_purges_daily():
    from billing_portal.celery import app

    app.finalize()
    schedule = app.conf.beat_schedule
    assert schedule["privacy-deletions"]["task"] == "privacy.tasks.carry_out_deletions"
    assert schedule["privacy-export-purge"]["task"] == "privacy.tasks.purge_expired_exports"
    assert schedule["privacy-deletions"]["schedule"].remaining_estimate(clock.now()) <= timedelta(days=1)


def test_other_apps_plug_their_erasure_into_the_registry(known_account, monkeypatch):
    k = known_account
    calls = []
    monkeypatch.setattr(erasure, "_erasers", dict(erasure.registered()))

    @erasure.register("retention-test")
    def erase_answers(e: erasure.Erasure) -> None:
        calls.append((e.account.pk, e.pseudonym, set(e.user_ids), "zoe.verwijder@example.com" in e.emails))

    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    services.accounts_delete_due(now=now + timedelta(days=14))
    account = Account.objects.get(pk=k.account.pk)
    assert calls == [(account.pk, account.name, {k.owner.pk, k.admin.pk, k.member.pk}, True)]


def test_an_eraser_that_fails_leaves_everything_as_it_was(known_account, monkeypatch):
    k = known_account
    monkeypatch.setattr(erasure, "_erasers", dict(erasure.registered()))

    @erasure.register("broken")
    def broken(e: erasure.Erasure) -> None:
        raise RuntimeError("boom")

    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    with pytest.raises(RuntimeError):
        services.accounts_delete_due(now=now + timedelta(days=14))
    account = Account.objects.get(pk=k.account.pk)
    assert (account.deleted_at, account.name) == (None, "Verwijder Bakkerij")
    assert Membership.objects.filter(account=account).count() == 3
    assert User.objects.get(pk=k.owner.pk).email == "zoe.verwijder@example.com"


def test_a_deleted_account_cannot_be_asked_for_again(known_account):
    k = known_account
    now = clock.now()
    services.account_deletion_request(account=k.account, actor=k.owner, now=now)
    services.accounts_delete_due(now=now + timedelta(days=14))
    assert not MembershipFactory._meta.model.objects.filter(user=k.owner).exists()
    with pytest.raises(services.OwnerRequired):
        services.account_deletion_request(account=k.account, actor=k.owner)
