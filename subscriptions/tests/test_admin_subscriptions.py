"""Operators change subscriptions in admin only through the services, and see why the rules refuse."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from billing_portal.lib import clock
from subscriptions import lifecycle, services
from subscriptions.models import Invoice, Payment, Subscription, SubscriptionEvent

from .admin_support import (
    OPERATOR,
    change_url,
    changelist,
    messages_of,
    post_action,
    snapshot,
    staff_in,
)
from .factories import DECLINING_CARD, PlanFactory, PriceFactory, give_card, give_card_number, owner_with_account

pytestmark = pytest.mark.django_db


def paid(amount_minor=1900, cycle=lifecycle.MONTHLY, days_ago=5, rank=1, now=None):
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(rank=rank), cycle=cycle, amount_minor=amount_minor)
    started = (now or clock.now()) - timedelta(days=days_ago)
    return services.subscription_start(account=account, price=price, actor=owner, now=started)


def trialing(days_ago=2):
    owner, account = owner_with_account()
    price = PriceFactory(plan=PlanFactory(trial_days=14))
    return services.subscription_start(
        account=account, price=price, actor=owner, now=clock.now() - timedelta(days=days_ago)
    )


def past_due(days_since_failure=4):
    """A monthly subscription whose renewal failed `days_since_failure` days ago."""
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(), amount_minor=1900)
    failed_at = clock.now() - timedelta(days=days_since_failure)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=failed_at - timedelta(days=31))
    give_card_number(account, DECLINING_CARD)
    services.subscription_process_due(subscription_id=sub.pk, now=failed_at)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    return sub


@pytest.fixture
def operator(client):
    user = staff_in(OPERATOR)
    client.force_login(user)
    return user


def last_event(sub) -> SubscriptionEvent:
    return SubscriptionEvent.objects.filter(subscription=sub).order_by("-created_at", "-id").first()


# --- actions without input ------------------------------------------------------------------------------
def test_cancel_now_from_the_subscription_page_goes_back_to_it_and_is_attributed_to_the_operator(
    client, operator, stripe_fake
):
    sub = paid()
    response = post_action(client, Subscription, "cancel_now", [sub], index=0, _from_object=sub.pk)
    assert response.redirect_chain[-1][0] == change_url(sub)
    assert "1 subscription canceled now." in messages_of(response)
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    event = last_event(sub)
    assert (event.kind, event.actor_kind, event.actor, event.from_status) == (
        "canceled_now",
        SubscriptionEvent.OPERATOR,
        operator,
        lifecycle.ACTIVE,
    )


def test_the_subscription_page_offers_only_the_actions_the_rules_allow(client, operator, stripe_fake):
    sub = paid()
    page = client.get(change_url(sub)).content.decode()
    for action in ("cancel_now", "cancel_at_period_end", "pause", "change_price"):
        assert f'value="{action}"' in page
    for action in ("undo_cancel", "resume", "retry_payment", "extend_trial"):
        assert f'value="{action}"' not in page


def test_cancel_at_period_end_then_undo(client, operator, stripe_fake):
    sub = paid()
    response = post_action(client, Subscription, "cancel_at_period_end", [sub], index=0)
    assert "1 subscription set to end at its period end." in messages_of(response)
    sub.refresh_from_db()
    assert sub.cancel_at == sub.current_period_end
    assert last_event(sub).actor_kind == SubscriptionEvent.OPERATOR

    response = post_action(client, Subscription, "undo_cancel", [sub], index=0)
    assert "1 cancellation undone." in messages_of(response)
    sub.refresh_from_db()
    assert sub.cancel_at is None
    assert last_event(sub).kind == "cancel_undone"


def test_an_operator_may_cancel_despite_an_outstanding_balance(client, operator, stripe_fake):
    sub = past_due()
    # Past due cannot be scheduled to cancel (the rules), but it can be canceled now.
    before = snapshot(sub)
    response = post_action(client, Subscription, "cancel_at_period_end", [sub], index=0)
    assert any("A payment failed" in message for message in messages_of(response))
    assert snapshot(sub) == before
    post_action(client, Subscription, "cancel_now", [sub], index=0)
    sub.refresh_from_db()
    assert sub.status == lifecycle.CANCELED
    assert Invoice.objects.get(subscription=sub, billing_reason=Invoice.CYCLE).status == Invoice.VOID


def test_resume_a_paused_subscription(client, operator, stripe_fake):
    sub = paid()
    services.subscription_pause(subscription=sub, actor=operator, months=1, now=clock.now() - timedelta(days=1))
    response = post_action(client, Subscription, "resume", [sub], index=0)
    assert "1 subscription resumed." in messages_of(response)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert last_event(sub).actor == operator


def test_retry_payment_now_recovers_a_past_due_subscription_with_a_new_card(client, operator, stripe_fake):
    sub = past_due()
    give_card(sub.account)
    response = post_action(client, Subscription, "retry_payment", [sub], index=0)
    assert "1 payment succeeded." in messages_of(response)
    sub.refresh_from_db()
    assert sub.status == lifecycle.ACTIVE
    assert last_event(sub).kind == "payment_recovered"
    assert last_event(sub).actor_kind == SubscriptionEvent.OPERATOR


def test_retry_payment_that_fails_again_says_why(client, operator, stripe_fake):
    sub = past_due()
    response = post_action(client, Subscription, "retry_payment", [sub], index=0)
    messages = messages_of(response)
    assert "1 was refused:" in messages
    assert any(message.startswith(f"{sub.account.name} (#{sub.pk}): The payment failed") for message in messages)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAST_DUE
    assert Payment.objects.filter(invoice__subscription=sub, status=Payment.FAILED).count() == 2


def test_retry_payment_with_nothing_to_pay_is_refused_and_changes_nothing(client, operator, stripe_fake):
    sub = paid()
    before = snapshot(sub)
    response = post_action(client, Subscription, "retry_payment", [sub], index=0)
    assert f"{sub.account.name} (#{sub.pk}): There is nothing to pay." in messages_of(response)
    assert snapshot(sub) == before


# --- actions with a page of their own -------------------------------------------------------------------
def test_pause_asks_for_the_months_then_pauses(client, operator, stripe_fake):
    sub = paid()
    page = post_action(client, Subscription, "pause", [sub], follow=False)
    assert page.status_code == 200
    assert page.templates[0].name == "admin/subscriptions/subscription/action_form.html"
    assert 'name="months"' in page.content.decode()
    assert Subscription.objects.get(pk=sub.pk).status == lifecycle.ACTIVE  # nothing yet

    response = post_action(client, Subscription, "pause", [sub], months="2", confirm="Pause")
    assert "1 subscription paused." in messages_of(response)
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAUSED
    assert sub.resume_at is not None
    assert last_event(sub).data["months"] == 2


def test_pause_of_an_annual_subscription_is_refused_with_the_reason(client, operator, stripe_fake):
    sub = paid(amount_minor=19000, cycle=lifecycle.ANNUAL)
    before = snapshot(sub)
    response = post_action(client, Subscription, "pause", [sub], months="1", confirm="Pause")
    assert f"{sub.account.name} (#{sub.pk}): Only monthly subscriptions can be paused." in messages_of(response)
    assert snapshot(sub) == before


def test_pause_with_a_tampered_number_of_months_changes_nothing(client, operator, stripe_fake):
    sub = paid()
    before = snapshot(sub)
    page = post_action(client, Subscription, "pause", [sub], months="9", confirm="Pause", follow=False)
    assert page.status_code == 200  # the form again, with its error
    assert "Select a valid choice" in page.content.decode()
    assert snapshot(sub) == before


def test_extend_trial_moves_the_trial_end_and_the_first_charge(client, operator, stripe_fake):
    sub = trialing()
    old_end = sub.trial_end
    page = post_action(client, Subscription, "extend_trial", [sub], follow=False)
    assert 'name="days"' in page.content.decode()
    response = post_action(client, Subscription, "extend_trial", [sub], days="10", confirm="Extend trial")
    assert "1 trial extended." in messages_of(response)
    sub.refresh_from_db()
    assert sub.trial_end == old_end + timedelta(days=10)
    assert sub.current_period_end == sub.trial_end == sub.billing_anchor_at
    event = last_event(sub)
    assert (event.kind, event.from_status, event.to_status, event.actor) == (
        "trial_extended",
        lifecycle.TRIALING,
        lifecycle.TRIALING,
        operator,
    )


def test_extend_trial_is_refused_outside_a_trial(client, operator, stripe_fake):
    sub = paid()
    before = snapshot(sub)
    response = post_action(client, Subscription, "extend_trial", [sub], days="10", confirm="Extend trial")
    assert any(message.startswith(f"{sub.account.name} (#{sub.pk}): ") for message in messages_of(response))
    assert snapshot(sub) == before


T_HALFWAY = datetime(2026, 4, 16, 9, 0, tzinfo=UTC)  # April has 30 days: exactly halfway through


def test_change_price_shows_the_preview_money_before_confirming(client, operator, stripe_fake):
    with time_machine.travel(T_HALFWAY, tick=False):
        sub = paid(amount_minor=5000, days_ago=15, rank=1)
        bigger = PriceFactory(plan=PlanFactory(rank=2, name="Bigger"), amount_minor=10000)
        first = post_action(client, Subscription, "change_price", [sub], follow=False)
        assert first.status_code == 200
        assert 'name="price"' in first.content.decode()

        preview = post_action(client, Subscription, "change_price", [sub], price=bigger.pk, preview="Preview")
        page = preview.content.decode()
        assert "Preview: change to" in page
        assert "€25.00" in page  # credit for the unused half of €50
        assert "€75.00" in page  # charged today
        assert Subscription.objects.get(pk=sub.pk).price_id == sub.price_id  # nothing changed yet

        response = post_action(client, Subscription, "change_price", [sub], price=bigger.pk, confirm="Confirm")
    assert any(message.startswith("1 subscription changed to") for message in messages_of(response))
    sub.refresh_from_db()
    assert sub.price == bigger
    invoice = Invoice.objects.get(subscription=sub, billing_reason=Invoice.UPDATE)
    assert (invoice.status, invoice.amount_due_minor) == (Invoice.PAID, 7500)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [5000, 7500]
    assert last_event(sub).actor_kind == SubscriptionEvent.OPERATOR


def test_change_price_preview_says_why_a_past_due_subscription_cannot_change(client, operator, stripe_fake):
    sub = past_due()
    other = PriceFactory(plan=PlanFactory(rank=5), amount_minor=9900)
    before = snapshot(sub)
    preview = post_action(client, Subscription, "change_price", [sub], price=other.pk, preview="Preview")
    page = preview.content.decode()
    assert "Refused:" in page
    assert "A payment failed" in page
    assert "The rules refuse this change for every selected subscription." in page
    response = post_action(client, Subscription, "change_price", [sub], price=other.pk, confirm="Confirm")
    assert any("A payment failed" in message for message in messages_of(response))
    assert snapshot(sub) == before


def test_change_price_to_an_unknown_price_shows_the_form_again(client, operator, stripe_fake):
    sub = paid()
    before = snapshot(sub)
    page = post_action(client, Subscription, "change_price", [sub], price="999999", confirm="Confirm", follow=False)
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert snapshot(sub) == before


# --- bulk -------------------------------------------------------------------------------------------------
def test_bulk_cancel_at_period_end_reports_how_many_succeeded_and_why_the_others_were_refused(
    client, operator, stripe_fake
):
    first, second = paid(), paid()
    ended = paid()
    services.subscription_cancel_now(subscription=ended, actor=operator)
    canceling = paid()
    services.subscription_schedule_cancel(subscription=canceling, actor=operator)
    response = post_action(client, Subscription, "cancel_at_period_end", [first, second, ended, canceling], index=0)
    messages = messages_of(response)
    assert "2 subscriptions set to end at their period end." in messages
    assert "2 were refused:" in messages
    assert f"{ended.account.name} (#{ended.pk}): This subscription has ended. Resubscribe to start again." in messages
    assert f"{canceling.account.name} (#{canceling.pk}): This subscription is already set to end." in messages
    assert Subscription.objects.filter(cancel_at__isnull=False).count() == 3


# --- status is never a field ------------------------------------------------------------------------------
def test_status_is_never_editable_in_admin(client, operator, stripe_fake):
    sub = paid()
    page = client.get(change_url(sub))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    before = snapshot(sub)
    response = client.post(change_url(sub), {"status": lifecycle.CANCELED, "amount_minor": 1})
    assert response.status_code == 403
    assert snapshot(sub) == before
    assert client.get(changelist(Subscription) + "add/").status_code == 403


# --- list filters and search ------------------------------------------------------------------------------
def listed(client, query: str) -> set[int]:
    response = client.get(changelist(Subscription) + query)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_filters_status_canceling_and_past_due_for_more_than_n_days(client, operator, stripe_fake):
    active = paid()
    canceling = paid()
    services.subscription_schedule_cancel(subscription=canceling, actor=operator)
    late = past_due(days_since_failure=8)
    recent = past_due(days_since_failure=2)
    assert listed(client, "?status__exact=past_due") == {late.pk, recent.pk}
    assert listed(client, "?canceling=yes") == {canceling.pk}
    assert active.pk in listed(client, "?canceling=no")
    assert canceling.pk not in listed(client, "?canceling=no")
    assert listed(client, "?past_due_days=3") == {late.pk}
    assert listed(client, "?past_due_days=7") == {late.pk}
    assert listed(client, "?past_due_days=14") == set()
    assert listed(client, f"?price__cycle__exact=monthly&price__plan__id__exact={active.price.plan_id}") == {active.pk}


def test_search_by_member_email_stripe_customer_and_payment_intent(client, operator, stripe_fake):
    sub, other = paid(), paid()
    member_email = sub.account.memberships.get().user.email
    intent_id = Payment.objects.get(invoice__subscription=sub).stripe_payment_intent_id
    assert listed(client, f"?q={member_email}") == {sub.pk}
    assert listed(client, f"?q={sub.account.stripe_customer_id}") == {sub.pk}
    assert listed(client, f"?q={intent_id}") == {sub.pk}
    assert listed(client, f"?q={other.account.name}") == {other.pk}


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("cancel_now", "This subscription has ended. Resubscribe to start again."),
        ("undo_cancel", "There is no cancellation to undo."),
        ("resume", "This subscription has ended. Resubscribe to start again."),
    ],
)
def test_actions_on_an_ended_subscription_are_refused_with_the_reason(client, operator, stripe_fake, action, reason):
    sub = paid()
    services.subscription_cancel_now(subscription=sub, actor=operator)
    before = snapshot(sub)
    response = post_action(client, Subscription, action, [sub], index=0, _from_object=sub.pk)
    assert f"{sub.account.name} (#{sub.pk}): {reason}" in messages_of(response)
    assert reason in response.content.decode()  # shown on the subscription's page
    assert snapshot(sub) == before


@pytest.mark.parametrize(
    ("action", "reason"),
    [("undo_cancel", "There is no cancellation to undo."), ("resume", "This change is not possible")],
)
def test_undo_and_resume_of_a_running_subscription_are_refused(client, operator, stripe_fake, action, reason):
    sub = paid()
    before = snapshot(sub)
    response = post_action(client, Subscription, action, [sub], index=0)
    messages = messages_of(response)
    assert "1 was refused:" in messages
    assert any(message.startswith(f"{sub.account.name} (#{sub.pk}): {reason}") for message in messages)
    assert snapshot(sub) == before
