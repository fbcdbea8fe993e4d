"""One default offer per reason, so a fresh install (and `make run`) shows the flow working.

Operators change, switch off or reorder them in admin; this runs once and never again.
"""

from django.db import migrations

DEFAULT_OFFERS = [
    # reason, kind, terms
    ("too_expensive", "discount", {"discount_percent": 30, "discount_periods": 3}),
    ("missing_features", "session", {}),
    ("not_using_enough", "cheaper_plan", {}),  # no target: the next cheaper paid plan
    ("switching_product", "discount", {"discount_percent": 25, "discount_periods": 2}),
    ("temporary_need", "pause", {"pause_months": 3}),
    ("technical_problems", "session", {}),
    ("other", "session", {}),
]


def seed(apps, schema_editor):
    RetentionOffer = apps.get_model("retention", "RetentionOffer")
    if RetentionOffer.objects.exists():
        return
    for reason, kind, terms in DEFAULT_OFFERS:
        RetentionOffer.objects.create(reason=reason, kind=kind, is_active=True, order=10, **terms)


def unseed(apps, schema_editor):
    RetentionOffer = apps.get_model("retention", "RetentionOffer")
    RetentionOffer.objects.filter(flows__isnull=True, order=10).delete()


class Migration(migrations.Migration):
    dependencies = [("retention", "0001_cancellation_flow_offers_sessions")]

    operations = [migrations.RunPython(seed, unseed)]
