"""The Celery app: settings come from Django's (CELERY_*), the beat schedule lives here."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_portal.settings")

app = Celery("billing_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _beat_schedule(sender, **kwargs):
    from django.conf import settings

    sender.conf.beat_schedule = {
        "billing-sweep": {"task": "subscriptions.tasks.sweep", "schedule": float(settings.BILLING_SWEEP_SECONDS)},
        # Once a day, after the night's renewals: compare the last 30 days with Stripe.
        "billing-reconcile": {"task": "subscriptions.tasks.reconcile", "schedule": crontab(hour=4, minute=30)},
    }
