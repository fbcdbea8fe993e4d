"""Helpers for the admin tests: operators in their groups, posting admin actions, reading messages."""

import importlib
from pathlib import Path

from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse

from subscriptions.models import Subscription, SubscriptionEvent

from .factories import UserFactory

OPERATOR, SUPPORT = "billing operator", "support"


def data_migration(app_label: str, name: str):
    """A data migration found by name (the lead renumbers migrations at merges)."""
    folder = Path(apps.get_app_config(app_label).path) / "migrations"
    (path,) = folder.glob(f"*_{name}.py")
    return importlib.import_module(f"{app_label}.migrations.{path.stem}")


def ensure_groups() -> None:
    """The groups as the migration makes them (again, if a transactional test flushed the tables)."""
    data_migration("subscriptions", "permission_groups").create_groups(apps, None)
    data_migration("accounts", "support_views_invitations").grant(apps, None)


def staff_in(group_name: str | None, **fields):
    """A staff user (no membership: an operator) in one of the permission groups, or in none."""
    user = UserFactory(is_staff=True, **fields)
    if group_name:
        ensure_groups()
        user.groups.add(Group.objects.get(name=group_name))
    return user


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def post_action(client, model, action: str, objects, *, follow=True, **data):
    """POST an admin action on the changelist, the way the action bar (or an object's button) does."""
    payload = {"action": action, "_selected_action": [obj.pk for obj in objects], **data}
    return client.post(changelist(model), payload, follow=follow)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def snapshot(subscription: Subscription) -> tuple:
    """Everything a refused change must leave as it was: the row and its audit log."""
    row = Subscription.objects.filter(pk=subscription.pk).values().get()
    return row, SubscriptionEvent.objects.filter(subscription=subscription).count()


def _put(data: dict, name: str, value) -> None:
    if value is None or value is False:
        return
    if value is True:
        data[name] = "on"
    elif isinstance(value, list | tuple):
        data[name] = [str(item) for item in value]
    else:
        data[name] = str(value)


def admin_form_data(response) -> dict:
    """What a browser would post back from an admin change page: the main form and every inline."""
    data: dict = {}
    form = response.context["adminform"].form
    for name in form.fields:
        _put(data, form.add_prefix(name), form[name].value())
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            _put(data, management.add_prefix(name), management[name].value())
        for row in formset.forms:
            for name in row.fields:
                _put(data, row.add_prefix(name), row[name].value())
    return data


def inline_prefix(response, form_class) -> str:
    """The prefix of the inline formset whose rows are `form_class` forms."""
    for inline in response.context["inline_admin_formsets"]:
        if issubclass(inline.formset.form, form_class):
            return inline.formset.prefix
    raise AssertionError(f"no inline of {form_class.__name__} on this page")
