"""Accounts in admin: members, the credit ledger (grant or remove with a reason), history and money."""

from datetime import timedelta
from unittest import mock

import pytest

from accounts.admin import AccountAdmin, CreditAdjustmentForm
from accounts.models import Membership
from billing_portal.lib import clock
from subscriptions import selectors, services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import CreditEntry, Payment

from .admin_support import (
    OPERATOR,
    admin_form_data,
    change_url,
    inline_prefix,
    messages_of,
    staff_in,
)
from .factories import PlanFactory, PriceFactory, UserFactory, give_card, owner_with_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = staff_in(OPERATOR)
    client.force_login(user)
    return user


def adjust(client, account, **fields):
    """Post the account page back with the credit adjustment row filled in."""
    page = client.get(change_url(account))
    prefix = inline_prefix(page, CreditAdjustmentForm)
    data = admin_form_data(page)
    data.update({f"{prefix}-0-{name}": value for name, value in fields.items()})
    return client.post(change_url(account), data, follow=True)


def test_operator_grants_credit_with_a_reason(client, operator):
    owner, account = owner_with_account()
    response = adjust(client, account, direction="grant", amount="12.50", reason="Outage on 3 March")
    assert "Credit granted: €12.50." in messages_of(response)
    entry = CreditEntry.objects.get(account=account)
    assert (entry.kind, entry.amount_minor, entry.note, entry.created_by) == (
        CreditEntry.GRANT,
        1250,
        "Outage on 3 March",
        operator,
    )
    assert selectors.account_credit_balance_minor(account=account) == 1250
    assert "€12.50" in client.get(change_url(account)).content.decode()  # the balance and the ledger row


def test_operator_removes_credit_down_to_zero_but_not_below(client, operator):
    owner, account = owner_with_account()
    services.account_credit_adjust(account=account, amount_minor=1000, reason="Goodwill", actor=operator)
    refused = adjust(client, account, direction="remove", amount="10.01", reason="Granted by mistake")
    assert "no more than that can be removed" in refused.content.decode()
    assert selectors.account_credit_balance_minor(account=account) == 1000
    assert CreditEntry.objects.filter(account=account).count() == 1

    response = adjust(client, account, direction="remove", amount="10.00", reason="Granted by mistake")
    assert "Credit removed: -€10.00." in messages_of(response)
    assert selectors.account_credit_balance_minor(account=account) == 0
    assert CreditEntry.objects.get(account=account, kind=CreditEntry.REMOVAL).note == "Granted by mistake"


def test_a_credit_adjustment_without_a_reason_is_refused(client, operator):
    owner, account = owner_with_account()
    response = adjust(client, account, direction="grant", amount="5", reason="  ")
    assert "Give a reason" in response.content.decode()
    assert not CreditEntry.objects.filter(account=account).exists()


def test_fractions_of_a_cent_are_refused(client, operator):
    owner, account = owner_with_account()
    response = adjust(client, account, direction="grant", amount="1.005", reason="Goodwill")
    assert "Enter whole cents." in response.content.decode()
    assert not CreditEntry.objects.filter(account=account).exists()


def test_saving_the_account_without_an_adjustment_writes_no_credit(client, operator):
    owner, account = owner_with_account()
    page = client.get(change_url(account))
    data = admin_form_data(page)
    data["name"] = "Renamed Ltd"
    response = client.post(change_url(account), data)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed Ltd"
    assert not CreditEntry.objects.filter(account=account).exists()


def test_the_credit_service_refuses_customers_empty_reasons_zero_and_overdrafts(operator):
    owner, account = owner_with_account()
    now = clock.now()
    cases = [
        {"amount_minor": 500, "reason": "I deserve it", "actor": owner},  # a customer
        {"amount_minor": 500, "reason": "", "actor": operator},
        {"amount_minor": 0, "reason": "Nothing", "actor": operator},
        {"amount_minor": -1, "reason": "Below zero", "actor": operator},
        {"amount_minor": 500, "reason": "x" * 301, "actor": operator},
    ]
    for case in cases:
        with pytest.raises(InvalidTransition):
            services.account_credit_adjust(account=account, now=now, **case)
    assert not CreditEntry.objects.exists()


def test_members_and_roles_are_edited_inline(client, operator):
    owner, account = owner_with_account()
    colleague = UserFactory()
    page = client.get(change_url(account))
    data = admin_form_data(page)
    prefix = "memberships"
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "2",
            f"{prefix}-1-user": str(colleague.pk),
            f"{prefix}-1-role": Membership.BILLING_ADMIN,
            f"{prefix}-1-account": str(account.pk),
        }
    )
    assert client.post(change_url(account), data).status_code == 302
    assert Membership.objects.get(user=colleague).role == Membership.BILLING_ADMIN


def test_the_account_page_shows_its_subscription_history_invoices_and_payments_with_links(
    client, operator, stripe_fake
):
    owner, account = owner_with_account()
    give_card(account)
    price = PriceFactory(plan=PlanFactory(name="Pro"), amount_minor=1900)
    sub = services.subscription_start(account=account, price=price, actor=owner, now=clock.now() - timedelta(days=3))
    services.subscription_schedule_cancel(subscription=sub, actor=operator, reason="Asked by phone")
    payment = Payment.objects.get(invoice__account=account)
    page = client.get(change_url(account)).content.decode()
    assert change_url(sub) in page
    assert change_url(payment.invoice) in page
    assert change_url(payment) in page
    assert f"https://dashboard.stripe.com/test/payments/{payment.stripe_payment_intent_id}" in page
    assert "cancel_scheduled" in page and "Asked by phone" in page
    assert f"?account={account.pk}" in page  # to the whole audit log and all payments
    assert "Pro · Monthly" in page


def test_the_currency_is_fixed_once_money_moved(client, operator):
    owner, account = owner_with_account()
    page = client.get(change_url(account))
    assert "currency" in page.context["adminform"].form.fields
    services.account_credit_adjust(account=account, amount_minor=100, reason="Goodwill", actor=operator)
    page = client.get(change_url(account))
    assert "currency" not in page.context["adminform"].form.fields


def test_saving_the_account_page_never_overwrites_what_the_services_wrote_meanwhile(client, operator):
    owner, account = owner_with_account()
    data = admin_form_data(client.get(change_url(account)))
    data["billing_email"] = "finance@example.com"
    claimed_until = clock.now() + timedelta(minutes=5)
    load = AccountAdmin.get_object

    def load_then_a_worker_writes(self, request, object_id, from_field=None):
        obj = load(self, request, object_id, from_field)
        # Between loading the row and saving it, a worker claims the account and saves a new card.
        type(obj).objects.filter(pk=obj.pk).update(billing_claimed_until=claimed_until, card_last4="4242")
        return obj

    with mock.patch.object(AccountAdmin, "get_object", load_then_a_worker_writes):
        assert client.post(change_url(account), data).status_code == 302
    account.refresh_from_db()
    assert (account.billing_email, account.billing_claimed_until, account.card_last4) == (
        "finance@example.com",
        claimed_until,
        "4242",
    )


def test_support_sees_the_account_invitations_and_when_a_user_verified_their_email(client, operator):
    from accounts.models import Invitation

    owner, account = owner_with_account()
    now = clock.now()
    Invitation.objects.create(
        account=account, email="new.colleague@example.com", invited_by=owner, expires_at=now + timedelta(days=7)
    )
    page = client.get(change_url(account)).content.decode()
    assert "Team invitations" in page and "new.colleague@example.com" in page

    owner.email_verified_at = now
    owner.save(update_fields=["email_verified_at"])
    user_page = client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode()
    assert "Email verified at" in user_page
    # Read-only: the verification link sets it, an operator cannot fake it.
    assert 'name="email_verified_at' not in user_page
