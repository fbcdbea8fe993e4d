"""Hostile form posts to every POST view: never a 500, never another account touched, escaped output."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, Membership
from subscriptions.models import Invoice, Subscription, SubscriptionEvent
from subscriptions.tests.factories import MembershipFactory, PriceFactory

from .conftest import ADMIN, MEMBER, client_as
from .test_access_matrix import RULES

SCRIPT = "<script>alert(1)</script>"
HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            SCRIPT,
            "' OR 1=1 --",
            "1; DROP TABLE subscriptions_subscription;",
            "../../etc/passwd",
            "\u202e\u0000\ufeff",
            "https://evil.example/",
            "//evil.example",
            "now",
            "period_end",
            "seti_" + "x" * 300,
            "",
        ]
    ),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63), st.sampled_from(["1e309", "NaN", "-0", "0x10", "٣"])
)
FIELDS = [
    "price_id", "when", "months", "setup_intent", "reason", "reason_text", "password", "account_name",
    "next", "language", "offer", "note", "times", "email", "role", "amount", "flow_id", "confirm",
]  # fmt: skip
POST_VIEWS = sorted(name for name, (_get, post) in RULES.items() if post is not None and name != "accounts:logout")


def _state_of(account: Account) -> tuple:
    subscriptions = list(Subscription.objects.filter(account=account).values().order_by("pk"))
    events = SubscriptionEvent.objects.filter(subscription__account=account).count()
    invoices = list(Invoice.objects.filter(account=account).values_list("pk", "status", "amount_due_minor"))
    return subscriptions, events, invoices


@pytest.fixture
def other_account(world):
    """Account B with a live subscription its owner must find untouched."""
    membership = MembershipFactory(role=Membership.OWNER)
    from subscriptions import services

    services.subscription_start(account=membership.account, price=PriceFactory(amount_minor=0), actor=membership.user)
    return membership.account


@pytest.mark.parametrize("view_name", POST_VIEWS)
@pytest.mark.parametrize("role", [MEMBER, ADMIN])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(FIELDS), st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER.map(str)), max_size=6))
def test_hostile_posts_never_fail_or_touch_another_account(client, world, other_account, view_name, role, data):
    client.raise_request_exception = True
    before_other = _state_of(other_account)
    member_account = Account.objects.get(memberships__user=world.users[MEMBER])
    before_mine = _state_of(member_account)
    client_as(client, world, role)
    response = client.post(reverse(view_name, kwargs=world.kwargs.get(view_name)), data)
    assert response.status_code < 500
    assert SCRIPT.encode() not in response.content  # anything echoed back is escaped
    assert _state_of(other_account) == before_other
    if role == MEMBER:  # a member can change nothing
        assert _state_of(member_account) == before_mine
    if response.status_code in (301, 302):
        assert not response["Location"].startswith(("http://evil", "https://evil", "//evil"))
