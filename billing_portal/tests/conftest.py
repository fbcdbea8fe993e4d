"""Fixtures of the project-wide tests: the billing pages' plans and frozen clock."""

from subscriptions.tests.pages import frozen, plans  # noqa: F401
