"""Fixtures of the signup, verification and team tests: the demo-like catalogue and helpers."""

import re

import pytest
from django.core import mail

from subscriptions.tests.pages import frozen, plans  # noqa: F401


@pytest.fixture
def trial_plans(plans):  # noqa: F811 (the fixture imported above)
    """The same catalogue, with a 14-day trial on Pro (Business has none)."""
    pro = plans["pro"]["monthly"].plan
    pro.trial_days = 14
    pro.save()
    return plans


def link_in_last_email(kind: str) -> str:
    """The path of the verification or invitation link in the newest email (kind: verify|invitation)."""
    body = mail.outbox[-1].body
    match = re.search(rf"https?://[^/\s]+(/accounts/{kind}/[^\s]+/)", body)
    assert match, body
    return match.group(1)
