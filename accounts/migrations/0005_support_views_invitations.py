"""Both operator groups may view team invitations (shown read-only on the account in admin)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ["billing operator", "support"]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; this one is needed now.
    # (Restored afterwards, as in subscriptions' *_permission_groups: the tests call this too.)
    app_config = apps.get_app_config("accounts")
    models_module, app_config.models_module = getattr(app_config, "models_module", None), True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = models_module
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="accounts", codename="view_invitation")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.add(view)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label="accounts", codename="view_invitation")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
        group.permissions.remove(*view)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_card_indexes"),
        ("subscriptions", "0004_permission_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
