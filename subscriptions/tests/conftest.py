"""Fixtures of the billing page tests (defined in pages.py, next to their helpers)."""

from .pages import frozen, plans  # noqa: F401
