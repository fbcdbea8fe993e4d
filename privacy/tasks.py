"""Celery tasks of the privacy app: thin wrappers that read the clock once and call one service."""

from celery import shared_task

from billing_portal.lib import clock

from . import selectors, services


@shared_task
def build_export(job_id: int) -> str:
    """Build one export ZIP (queued by services.export_request with delay_on_commit)."""
    job = services.export_build(job_id=job_id, now=clock.now())
    return job.status if job else "skipped"


@shared_task
def carry_out_deletions() -> int:
    """Daily (beat): fan out one task per account whose deletion grace period has ended."""
    due = selectors.account_ids_due_for_deletion(now=clock.now())
    for account_id in due:
        carry_out_deletion.delay(account_id)
    return len(due)


@shared_task
def carry_out_deletion(account_id: int) -> bool:
    return services.account_deletion_carry_out(account_id=account_id, now=clock.now())


@shared_task
def purge_expired_exports() -> int:
    """Daily (beat): delete export files whose download link has expired."""
    return services.exports_purge_expired(now=clock.now())
