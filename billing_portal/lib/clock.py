"""The only reader of the wall clock: everything else takes `now` as an argument."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return timezone.now()
