"""The two operator groups: "billing operator" does everything in admin, "support" views.

Support may also do what helps a customer without money going out or a subscription ending:
undo a cancellation, pause, resume, retry a payment, extend a trial (docs/rules.md).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    ("accounts", "view_user"),
    ("accounts", "view_account"),
    ("accounts", "view_membership"),
    ("subscriptions", "view_plan"),
    ("subscriptions", "view_price"),
    ("subscriptions", "view_subscription"),
    ("subscriptions", "view_subscriptionevent"),
    ("subscriptions", "view_invoice"),
    ("subscriptions", "view_invoiceline"),
    ("subscriptions", "view_payment"),
    ("subscriptions", "view_refund"),
    ("subscriptions", "view_creditentry"),
    ("subscriptions", "view_emailsent"),
    ("subscriptions", "view_reconciliationrun"),
    ("subscriptions", "view_reconciliationdifference"),
    ("subscriptions", "view_revenue_dashboard"),
]
CUSTOMER_HELP = [
    ("subscriptions", "undo_cancel_subscription"),
    ("subscriptions", "pause_subscription"),
    ("subscriptions", "resume_subscription"),
    ("subscriptions", "retry_subscription_payment"),
    ("subscriptions", "extend_subscription_trial"),
]
OPERATOR_ONLY = [
    ("accounts", "add_account"),
    ("accounts", "change_account"),
    ("accounts", "add_membership"),
    ("accounts", "change_membership"),
    ("accounts", "delete_membership"),
    ("subscriptions", "add_plan"),
    ("subscriptions", "change_plan"),
    ("subscriptions", "delete_plan"),
    ("subscriptions", "add_price"),
    ("subscriptions", "change_price"),
    ("subscriptions", "delete_price"),
    ("subscriptions", "cancel_subscription"),
    ("subscriptions", "change_subscription_price"),
    ("subscriptions", "refund_payment"),
    ("subscriptions", "mark_invoice_uncollectible"),
    ("subscriptions", "adjust_account_credit"),
    ("subscriptions", "run_reconciliation"),
]
GROUPS = {
    "billing operator": VIEW + CUSTOMER_HELP + OPERATOR_ONLY,
    "support": VIEW + CUSTOMER_HELP,
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; these groups need them now.
    # (Restored afterwards: the tests call this with the real app registry, whose apps must keep
    # their models module for the post_migrate signal after each database flush.)
    for app_config in apps.get_app_configs():
        models_module, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _created = Group.objects.get_or_create(name=name)
        permissions = []
        for app_label, codename in codenames:
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("subscriptions", "0003_operator_admin_refunds_reconciliation"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
