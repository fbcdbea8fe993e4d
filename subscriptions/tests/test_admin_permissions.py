"""Who reaches admin and what each group may do; the audit log everyone can read but nobody can edit."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from accounts.admin import CreditAdjustmentForm
from billing_portal.lib import clock
from subscriptions import lifecycle, services
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import CreditEntry, Invoice, Payment, Price, Refund, Subscription, SubscriptionEvent

from .admin_support import (
    OPERATOR,
    SUPPORT,
    admin_form_data,
    change_url,
    changelist,
    ensure_groups,
    post_action,
    snapshot,
    staff_in,
)
from .factories import PlanFactory, PriceFactory, UserFactory, give_card, owner_with_account

pytestmark = pytest.mark.django_db

SUPPORT_MAY_NOT = {
    "cancel_subscription",
    "change_subscription_price",
    "refund_payment",
    "adjust_account_credit",
    "mark_invoice_uncollectible",
}


def paid():
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(), amount_minor=1900)
    return services.subscription_start(account=account, price=price, actor=owner, now=clock.now() - timedelta(days=3))


def codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_the_groups_have_the_documented_permissions():
    ensure_groups()
    operator, support = codenames(OPERATOR), codenames(SUPPORT)
    assert SUPPORT_MAY_NOT <= operator
    assert not SUPPORT_MAY_NOT & support
    assert support < operator
    for needed in ("view_subscription", "view_payment", "view_subscriptionevent", "view_revenue_dashboard"):
        assert needed in support
    for helping in (
        "pause_subscription",
        "resume_subscription",
        "undo_cancel_subscription",
        "extend_subscription_trial",
    ):
        assert helping in support


# --- who reaches admin -----------------------------------------------------------------------------------
def test_customers_never_reach_admin_or_its_pages(client):
    owner, account = owner_with_account()
    client.force_login(owner)
    for url in (
        reverse("admin:index"),
        changelist(Subscription),
        reverse("billing_admin:dashboard"),
        reverse("billing_admin:reconciliation"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_a_group_sees_nothing_and_cannot_open_the_dashboard(client):
    client.force_login(staff_in(None))
    assert client.get(reverse("billing_admin:dashboard")).status_code == 403
    assert client.get(reverse("billing_admin:reconciliation")).status_code == 403
    assert client.get(changelist(Subscription)).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("billing_admin:dashboard") not in index


def test_the_admin_index_links_to_the_dashboard_and_reconciliation(client):
    client.force_login(staff_in(SUPPORT))
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("billing_admin:dashboard") in index
    assert reverse("billing_admin:reconciliation") in index


# --- support: views everything, changes what helps a customer, never money or endings ----------------------
@pytest.fixture
def support(client):
    user = staff_in(SUPPORT)
    client.force_login(user)
    return user


def test_support_views_every_list_and_page(client, support, stripe_fake):
    sub = paid()
    payment = Payment.objects.get()
    for url in (
        changelist(Subscription),
        change_url(sub),
        changelist(Invoice),
        change_url(payment.invoice),
        changelist(Payment),
        change_url(payment),
        changelist(SubscriptionEvent),
        changelist(CreditEntry),
        change_url(sub.account),
        changelist(Price),
        reverse("billing_admin:dashboard"),
        reverse("billing_admin:reconciliation"),
    ):
        assert client.get(url).status_code == 200, url


def test_support_is_offered_no_refund_cancel_price_change_or_uncollectible(client, support, stripe_fake):
    sub = paid()
    payment = Payment.objects.get()
    actions = {
        name for name, _label in client.get(changelist(Subscription)).context["action_form"].fields["action"].choices
    }
    assert {"pause", "resume", "undo_cancel", "retry_payment", "extend_trial"} <= actions
    assert not {"cancel_now", "cancel_at_period_end", "change_price"} & actions
    page = client.get(change_url(sub)).content.decode()
    assert 'value="pause"' in page
    assert 'value="cancel_now"' not in page and 'value="change_price"' not in page
    assert 'value="refund"' not in client.get(change_url(payment)).content.decode()
    account_page = client.get(change_url(sub.account))
    assert not any(
        issubclass(inline.formset.form, CreditAdjustmentForm)
        for inline in account_page.context["inline_admin_formsets"]
    )


def test_forged_forbidden_actions_from_support_change_nothing(client, support, stripe_fake):
    sub = paid()
    payment = Payment.objects.get()
    other = PriceFactory(plan=PlanFactory(rank=9), amount_minor=9900)
    before = snapshot(sub)
    post_action(client, Subscription, "cancel_now", [sub], index=0)
    post_action(client, Subscription, "cancel_at_period_end", [sub], index=0)
    post_action(client, Subscription, "change_price", [sub], price=other.pk, confirm="Confirm")
    post_action(client, Payment, "refund", [payment], amount="1.00", reason="Forged", confirm="Refund")
    post_action(client, Invoice, "mark_uncollectible", [payment.invoice], index=0)
    assert snapshot(sub) == before
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert payment.refunded_minor == 0 and payment.invoice.status == Invoice.PAID

    # Posting the account page with a credit row: support may not change accounts at all.
    owner_page = client.get(change_url(sub.account))
    data = admin_form_data(owner_page)
    data.update({"credit_entries-TOTAL_FORMS": "1", "credit_entries-0-amount": "5", "credit_entries-0-reason": "x"})
    assert client.post(change_url(sub.account), data).status_code == 403
    assert not CreditEntry.objects.filter(kind=CreditEntry.GRANT).exists()


def test_support_may_pause_a_subscription_for_a_customer(client, support, stripe_fake):
    sub = paid()
    post_action(client, Subscription, "pause", [sub], months="1", confirm="Pause")
    sub.refresh_from_db()
    assert sub.status == lifecycle.PAUSED
    assert SubscriptionEvent.objects.filter(subscription=sub).first().actor == support


def test_each_action_checks_its_own_permission_even_when_called_directly(support, stripe_fake):
    sub = paid()
    request = RequestFactory().post("/")
    request.user = support
    model_admin = SubscriptionAdmin(Subscription, None)
    assert not model_admin.has_cancel_permission(request)
    assert model_admin.has_pause_permission(request)
    with pytest.raises(PermissionDenied):
        model_admin.cancel_now(request, Subscription.objects.filter(pk=sub.pk))
    assert Subscription.objects.get(pk=sub.pk).status == lifecycle.ACTIVE


# --- the audit log -----------------------------------------------------------------------------------------
def test_the_audit_log_shows_who_did_what_before_and_after_and_is_searchable(client, stripe_fake):
    operator = staff_in(OPERATOR, email="ops@example.com")
    sub = paid()  # by the customer
    services.subscription_schedule_cancel(subscription=sub, actor=operator, reason="Asked by phone")
    services.subscription_cancel_now(subscription=sub, actor=operator)
    client.force_login(staff_in(SUPPORT))
    page = client.get(changelist(SubscriptionEvent))
    rows = list(page.context["cl"].result_list)
    assert [(row.kind, row.actor_kind) for row in rows] == [
        ("canceled_now", SubscriptionEvent.OPERATOR),
        ("cancel_scheduled", SubscriptionEvent.OPERATOR),
        ("started", SubscriptionEvent.CUSTOMER),
    ]
    content = page.content.decode()
    assert "badge-active" in content and "badge-canceled" in content  # before and after
    searched = client.get(changelist(SubscriptionEvent) + "?q=ops@example.com").context["cl"].result_list
    assert {row.kind for row in searched} == {"canceled_now", "cancel_scheduled"}
    by_reason = client.get(changelist(SubscriptionEvent) + "?q=phone").context["cl"].result_list
    assert [row.kind for row in by_reason] == ["cancel_scheduled"]
    by_kind = client.get(changelist(SubscriptionEvent) + "?actor_kind__exact=customer").context["cl"].result_list
    assert [row.kind for row in by_kind] == ["started"]


def test_the_audit_log_cannot_be_edited_even_by_a_superuser(client, stripe_fake):
    sub = paid()
    event = SubscriptionEvent.objects.get(subscription=sub)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(change_url(event)).status_code == 200
    assert client.post(change_url(event), {"kind": "forged"}).status_code == 403
    assert (
        client.post(
            reverse("admin:subscriptions_subscriptionevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert client.get(changelist(SubscriptionEvent) + "add/").status_code == 403
    event.refresh_from_db()
    assert event.kind == "started"
