"""The Celery app: settings come from Django's (CELERY_*), the beat schedule lives here.

Exactly one beat runs per deployment: with Redis, a beat holds a lock while it runs, and a
second one started by mistake (or as a standby) waits until the first one's lock expires.
"""

import atexit
import logging
import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_portal.settings")

app = Celery("billing_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)
BEAT_LOCK_NAME = "billing-portal:beat"
BEAT_LOCK_TTL_SECONDS = 60.0


@app.on_after_finalize.connect
def _beat_schedule(sender, **kwargs):
    from django.conf import settings

    sweep = float(settings.BILLING_SWEEP_SECONDS)
    sender.conf.beat_schedule = {
        # A sweep nobody picked up before the next one is due is dropped, not piled up.
        "billing-sweep": {"task": "subscriptions.tasks.sweep", "schedule": sweep, "options": {"expires": sweep}},
        "billing-reminders": {
            "task": "subscriptions.tasks.reminders_sweep",
            "schedule": crontab(minute=0, hour=settings.BILLING_REMINDERS_HOUR_UTC),
            "options": {"expires": 6 * 3600},
        },
        # Daily: open cancellation flows older than a day are abandoned; saves are checked at 30 days.
        "retention-settle-flows": {"task": "retention.tasks.settle_flows", "schedule": crontab(hour=3, minute=30)},
        # Deletions whose grace period ended, and export files whose link expired: once a day, at night.
        "privacy-deletions": {"task": "privacy.tasks.carry_out_deletions", "schedule": crontab(hour=3, minute=0)},
        "privacy-export-purge": {"task": "privacy.tasks.purge_expired_exports", "schedule": crontab(hour=3, minute=30)},
        # Once a day, after the night's renewals: compare the last 30 days with Stripe.
        "billing-reconcile": {"task": "subscriptions.tasks.reconcile", "schedule": crontab(hour=4, minute=30)},
    }


def beat_lock():
    """The lock the one beat holds (None without Redis: development runs one beat by itself)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return None
    import redis

    from billing_portal.lib.singleton import SingletonLock

    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE  # deployments sharing a broker use their own queue
    return SingletonLock(client, f"{BEAT_LOCK_NAME}:{queue}", ttl=BEAT_LOCK_TTL_SECONDS)


@beat_init.connect
def _only_one_beat(sender=None, **kwargs):
    lock = beat_lock()
    if lock is None:
        return
    lock.acquire(on_wait=lambda: log.warning("Another beat holds %s; waiting as a standby.", lock.name))
    log.info("This beat holds %s.", lock.name)
    atexit.register(lock.release)
    # Two beats would queue every sweep twice; better stop and let the supervisor restart us.
    lock.keep(on_lost=lambda: os._exit(1))
