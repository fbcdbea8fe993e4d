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
        # Daily: open cancellation flows older than a day are abandoned; saves are checked at 30 days.
        "retention-settle-flows": {"task": "retention.tasks.settle_flows", "schedule": crontab(hour=3, minute=30)},
        # Deletions whose grace period ended, and export files whose link expired: once a day, at night.
        "privacy-deletions": {"task": "privacy.tasks.carry_out_deletions", "schedule": crontab(hour=3, minute=0)},
        "privacy-export-purge": {"task": "privacy.tasks.purge_expired_exports", "schedule": crontab(hour=3, minute=30)},
        # Once a day, after the night's renewals: compare the last 30 days with Stripe.
        "billing-reconcile": {"task": "subscriptions.tasks.reconcile", "schedule": crontab(hour=4, minute=30)},
    }
