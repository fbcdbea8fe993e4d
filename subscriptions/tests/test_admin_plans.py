"""Plans and prices in admin: a price customers hold never changes its money or disappears."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from subscriptions import lifecycle, services
from subscriptions.admin import PriceForm
from subscriptions.models import Plan, Price

from .admin_support import (
    OPERATOR,
    admin_form_data,
    change_url,
    changelist,
    inline_prefix,
    staff_in,
)
from .factories import PlanFactory, PriceFactory, owner_with_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = staff_in(OPERATOR)
    client.force_login(user)
    return user


def held(price: Price) -> Price:
    """Give a customer this price (a free price starts without Stripe)."""
    owner, account = owner_with_account()
    services.subscription_start(account=account, price=price, actor=owner)
    return price


def test_operator_creates_a_plan_with_features_as_lines_and_its_prices_inline(client, operator):
    add_page = client.get(changelist(Plan) + "add/")
    data = admin_form_data(add_page)
    prefix = inline_prefix(add_page, PriceForm)
    data.update(
        {
            "name": "Team",
            "code": "team",
            "rank": "2",
            "trial_days": "14",
            "is_active": "on",
            "features": "Ten seats\n\n  Priority support  \nSSO\n",
            f"{prefix}-0-cycle": lifecycle.MONTHLY,
            f"{prefix}-0-amount_minor": "2900",
            f"{prefix}-0-currency": "EUR",
            f"{prefix}-0-is_active": "on",
        }
    )
    response = client.post(changelist(Plan) + "add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    plan = Plan.objects.get(code="team")
    assert plan.features == ["Ten seats", "Priority support", "SSO"]
    assert (plan.rank, plan.trial_days, plan.is_active) == (2, 14, True)
    price = plan.prices.get()
    assert (price.cycle, price.amount_minor, price.currency) == (lifecycle.MONTHLY, 2900, "eur")


def test_the_features_show_one_per_line_when_editing(client, operator):
    plan = PlanFactory(features=["One", "Two"])
    page = client.get(change_url(plan)).content.decode()
    assert "One\nTwo</textarea>" in page


def test_a_held_price_shows_its_money_read_only_and_ignores_tampered_changes_and_deletion(client, operator):
    plan = PlanFactory()
    kept = held(PriceFactory(plan=plan, amount_minor=0))
    free = PriceFactory(plan=plan, cycle=lifecycle.ANNUAL, amount_minor=19000)
    page = client.get(change_url(plan))
    prefix = inline_prefix(page, PriceForm)
    forms = {row.instance.pk: row for row in page.context["inline_admin_formsets"][0].formset.forms if row.instance.pk}
    assert forms[kept.pk].fields["amount_minor"].disabled
    assert forms[kept.pk].fields["DELETE"].disabled
    assert not forms[free.pk].fields["amount_minor"].disabled

    data = admin_form_data(page)
    index = {
        row.instance.pk: number for number, row in enumerate(page.context["inline_admin_formsets"][0].formset.forms)
    }
    data[f"{prefix}-{index[kept.pk]}-amount_minor"] = "9999"
    data[f"{prefix}-{index[kept.pk]}-currency"] = "usd"
    data[f"{prefix}-{index[kept.pk]}-DELETE"] = "on"
    data[f"{prefix}-{index[free.pk]}-amount_minor"] = "18000"
    response = client.post(change_url(plan), data)
    assert response.status_code == 302
    kept.refresh_from_db()
    assert (kept.amount_minor, kept.currency) == (0, "eur")
    free.refresh_from_db()
    assert free.amount_minor == 18000  # nobody holds it: it may change


def test_a_price_nobody_holds_can_be_deleted_inline(client, operator):
    plan = PlanFactory()
    price = PriceFactory(plan=plan)
    page = client.get(change_url(plan))
    prefix = inline_prefix(page, PriceForm)
    data = admin_form_data(page)
    data[f"{prefix}-0-DELETE"] = "on"
    assert client.post(change_url(plan), data).status_code == 302
    assert not Price.objects.filter(pk=price.pk).exists()


def test_a_held_price_can_still_be_deactivated_so_new_customers_get_the_new_one(client, operator):
    plan = PlanFactory()
    old = held(PriceFactory(plan=plan, amount_minor=0))
    page = client.get(change_url(old))
    data = admin_form_data(page)
    data.pop("is_active")
    assert client.post(change_url(old), data).status_code == 302
    old.refresh_from_db()
    assert not old.is_active
    PriceFactory(plan=plan, amount_minor=500)  # the new price of the same cycle and currency


def test_price_admin_shows_a_held_price_read_only_and_cannot_delete_it(client, operator):
    price = held(PriceFactory(amount_minor=0))
    page = client.get(change_url(price))
    assert page.context["adminform"].form.fields["amount_minor"].disabled
    assert "Held by customers" in page.content.decode()
    data = admin_form_data(page)
    data["amount_minor"] = "123"
    client.post(change_url(price), data)
    price.refresh_from_db()
    assert price.amount_minor == 0
    delete_url = reverse("admin:subscriptions_price_delete", args=[price.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Price.objects.filter(pk=price.pk).exists()


def test_a_second_active_price_for_the_same_cycle_is_refused_with_a_clear_message(client, operator):
    plan = PlanFactory()
    PriceFactory(plan=plan)
    page = client.get(change_url(plan))
    prefix = inline_prefix(page, PriceForm)
    data = admin_form_data(page)
    data.update(
        {
            f"{prefix}-1-cycle": lifecycle.MONTHLY,
            f"{prefix}-1-amount_minor": "2500",
            f"{prefix}-1-currency": "eur",
            f"{prefix}-1-is_active": "on",
        }
    )
    response = client.post(change_url(plan), data)
    assert response.status_code == 200
    assert "Deactivate that one first" in response.content.decode()
    assert plan.prices.count() == 1


def test_the_model_refuses_to_change_or_delete_a_held_price_whatever_the_caller():
    price = held(PriceFactory(amount_minor=0))
    for field, value in (("amount_minor", 100), ("currency", "usd"), ("cycle", lifecycle.ANNUAL)):
        changed = Price.objects.get(pk=price.pk)
        setattr(changed, field, value)
        with pytest.raises(ValidationError):
            changed.full_clean()
        with pytest.raises(ValidationError):
            changed.save()
    with pytest.raises(ValidationError):
        Price.objects.get(pk=price.pk).delete()
    assert Price.objects.filter(pk=price.pk, amount_minor=0, currency="eur", cycle=lifecycle.MONTHLY).exists()


def test_a_price_scheduled_for_a_later_change_is_held_too():
    owner, account = owner_with_account()
    sub = services.subscription_start(account=account, price=PriceFactory(amount_minor=0), actor=owner)
    later = PriceFactory(plan=PlanFactory(rank=0), cycle=lifecycle.ANNUAL, amount_minor=0)
    services.subscription_change(subscription=sub, price=later, actor=owner, at_period_end=True)
    assert later.is_held()
    later.amount_minor = 5
    with pytest.raises(ValidationError):
        later.save()
