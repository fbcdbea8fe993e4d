"""`manage.py seed_demo` creates one login per state, and each can log in."""

import pytest
from django.core.management import call_command

from subscriptions.management.commands.seed_demo import DEMO_LOGINS, PASSWORD
from subscriptions.models import Plan, Price

pytestmark = pytest.mark.django_db

EXPECTED_BADGE = {
    "trialing": "Trial",
    "active": "Active",
    "canceling": "Canceling",
    "past_due": "Past due",
    "paused": "Paused",
    "canceled": "Canceled",
    "member": "Active",
}


def test_seed_demo_creates_plans_and_a_login_per_state_that_can_log_in(client, stripe_fake, capsys):
    call_command("seed_demo")
    printed = capsys.readouterr().out
    assert set(Plan.objects.values_list("code", flat=True)) == {"free", "pro", "business"}
    for code in ("free", "pro", "business"):
        assert set(Price.objects.filter(plan__code=code).values_list("cycle", flat=True)) == {
            "monthly",
            "annual",
            "annual_commitment_monthly",
        }
    for state in DEMO_LOGINS:
        email = f"{state}@demo.test"
        assert email in printed
        assert client.login(username=email, password=PASSWORD), email
        page = client.get("/billing/")
        assert page.status_code == 200
        assert f">{EXPECTED_BADGE[state]}<" in page.content.decode(), state
        client.logout()


def test_seed_demo_twice_changes_nothing(stripe_fake):
    call_command("seed_demo")
    counts = (Plan.objects.count(), Price.objects.count())
    call_command("seed_demo")
    assert (Plan.objects.count(), Price.objects.count()) == counts
