"""Data exports. (Account deletion is three dated fields on `accounts.Account`.)"""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy

from accounts.models import Account


class ExportJob(models.Model):
    """One ZIP of an account's data, built by a Celery task; its file lasts PRIVACY_EXPORT_LINK_DAYS."""

    PENDING, RUNNING, READY, FAILED, EXPIRED = "pending", "running", "ready", "failed", "expired"
    STATUS_CHOICES = [
        (PENDING, pgettext_lazy("export status", "Waiting to start")),
        (RUNNING, pgettext_lazy("export status", "Being prepared")),
        (READY, pgettext_lazy("export status", "Ready")),
        (FAILED, pgettext_lazy("export status", "Failed")),
        (EXPIRED, pgettext_lazy("export status", "Expired")),
    ]
    IN_PROGRESS = (PENDING, RUNNING)

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    # Relative to settings.PRIVACY_EXPORT_DIR; a random name, and never served statically.
    file_name = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    # Moved on by the worker at each progress step: a job silent for long has lost its worker.
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "ready", "failed", "expired"]),
                name="export_job_status_valid",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="export_job_progress_max_100"),
            # One export at a time per account: a second click joins the running one.
            models.UniqueConstraint(
                fields=["account"], condition=Q(status__in=["pending", "running"]), name="one_export_in_progress"
            ),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.account}: {self.status}"

    @property
    def in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS

    @property
    def path(self) -> Path | None:
        return Path(settings.PRIVACY_EXPORT_DIR) / self.file_name if self.file_name else None

    def download_name(self) -> str:
        return f"account-{self.account_id}-export-{self.created_at:%Y-%m-%d}.zip"
