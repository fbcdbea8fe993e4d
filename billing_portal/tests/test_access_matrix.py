"""Who reaches what: every URL of the project, for every role, with the status it must answer.

The table is checked against the URL conf, so a new view without a rule here fails the test.
Objects in the URLs belong to account A; "other_owner" is the owner of account B.
"""

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from .conftest import ROLES, STAFF, client_as

LOGIN = 302  # anonymous users are sent to the login page


def statuses(anonymous, member, billing_admin, other_owner, staff):
    return dict(zip(ROLES, (anonymous, member, billing_admin, other_owner, staff), strict=True))


# Customer pages are for the account's owners and billing admins; a member is told who can act
# (403); staff without a membership have no billing account (403; operators work in admin).
MANAGER_PAGE = statuses(LOGIN, 403, 200, 200, 403)
MANAGER_OBJECT_PAGE = statuses(LOGIN, 403, 200, 404, 403)
MANAGER_ACTION = statuses(LOGIN, 403, 302, 302, 403)
OWNER_ACTION = statuses(LOGIN, 403, 403, 302, 403)
POST_ONLY = statuses(405, 405, 405, 405, 405)
PUBLIC = statuses(200, 200, 200, 200, 200)
FLOW_PAGE = statuses(LOGIN, 403, 200, 404, 403)
FLOW_ACTION = statuses(LOGIN, 403, 302, 404, 403)

# name -> (GET statuses, POST statuses or None when a POST is not an action of its own)
RULES: dict[str, tuple[dict, dict | None]] = {
    "accounts:login": (statuses(200, 302, 302, 302, 302), None),
    "accounts:logout": (POST_ONLY, statuses(302, 302, 302, 302, 302)),
    "accounts:reauthenticate": (statuses(LOGIN, 200, 200, 200, 200), None),
    "accounts:password_reset": (PUBLIC, None),
    "accounts:password_reset_done": (PUBLIC, None),
    "accounts:password_reset_confirm": (PUBLIC, None),
    "accounts:password_reset_complete": (PUBLIC, None),
    "set_language": (POST_ONLY, statuses(302, 302, 302, 302, 302)),
    "accounts:email-language": (POST_ONLY, statuses(LOGIN, 403, 302, 302, 403)),
    "home": (statuses(200, 302, 302, 302, 302), None),
    "subscriptions:pricing": (PUBLIC, None),
    # Signup needs a price (else back to the pricing page); the pay step needs a verified email.
    "accounts:signup": (statuses(302, 302, 302, 302, 302), None),
    "accounts:signup-pay": (statuses(LOGIN, 403, 302, 302, 403), None),
    "accounts:verify-resend": (POST_ONLY, statuses(LOGIN, 302, 302, 302, 302)),
    "accounts:verify-email": (statuses(400, 400, 400, 400, 400), None),  # a bad link, explained
    "accounts:invitation": (statuses(400, 400, 400, 400, 400), None),
    "accounts:team": (statuses(LOGIN, 403, 403, 200, 403), None),
    "accounts:team-invite": (POST_ONLY, statuses(LOGIN, 403, 403, 400, 403)),  # no email posted
    "accounts:team-role": (POST_ONLY, statuses(LOGIN, 403, 403, 400, 403)),  # no role posted
    "accounts:team-remove": (POST_ONLY, statuses(LOGIN, 403, 403, 404, 403)),
    "accounts:team-revoke": (POST_ONLY, statuses(LOGIN, 403, 403, 404, 403)),
    "subscriptions:billing": (statuses(LOGIN, 200, 200, 200, 200), None),
    "subscriptions:plans": (MANAGER_PAGE, None),
    # B has no subscription: a change leads to the plans page; an empty confirm lacks `when`.
    "subscriptions:change": (statuses(LOGIN, 403, 200, 302, 403), None),
    "subscriptions:change-confirm": (POST_ONLY, statuses(LOGIN, 403, 400, 400, 403)),
    "subscriptions:change-withdraw": (POST_ONLY, MANAGER_ACTION),
    # A is subscribed already (back to billing); B may subscribe.
    "subscriptions:subscribe": (statuses(LOGIN, 403, 302, 200, 403), None),
    "subscriptions:pause": (statuses(LOGIN, 403, 200, 302, 403), None),
    "subscriptions:resume": (POST_ONLY, MANAGER_ACTION),
    "subscriptions:undo-cancel": (POST_ONLY, MANAGER_ACTION),
    "subscriptions:pay-now": (POST_ONLY, MANAGER_ACTION),
    "subscriptions:card": (MANAGER_PAGE, None),
    "subscriptions:card-finish": (POST_ONLY, statuses(LOGIN, 403, 400, 400, 403)),
    "subscriptions:invoices": (MANAGER_PAGE, None),
    "subscriptions:invoice": (MANAGER_OBJECT_PAGE, None),
    # A's invoice has no payment waiting for authentication: back to the billing page.
    "subscriptions:payment-authenticate": (
        statuses(LOGIN, 403, 302, 404, 403),
        statuses(LOGIN, 403, 302, 404, 403),
    ),
    # Stripe's webhook: POST only, and nothing without a valid signature.
    "subscriptions:stripe-webhook": (POST_ONLY, statuses(400, 400, 400, 400, 400)),
    # B has nothing to cancel: the first step says so.
    "retention:start": (statuses(LOGIN, 403, 200, 200, 403), None),
    # The flow has no reason yet: its later steps send back to the right step.
    "retention:offer": (statuses(LOGIN, 403, 302, 404, 403), None),
    "retention:accept": (POST_ONLY, statuses(LOGIN, 403, 400, 404, 403)),
    "retention:keep": (POST_ONLY, FLOW_ACTION),
    "retention:review": (FLOW_PAGE, None),
    "retention:confirm": (POST_ONLY, FLOW_ACTION),
    "retention:done": (statuses(LOGIN, 403, 302, 404, 403), None),
    "retention:kept": (statuses(LOGIN, 403, 302, 404, 403), None),
    "retention:undo": (POST_ONLY, MANAGER_ACTION),
    "privacy:account": (statuses(LOGIN, 200, 200, 200, 200), None),
    "privacy:export-start": (POST_ONLY, OWNER_ACTION),
    "privacy:export-progress": (statuses(LOGIN, 403, 403, 404, 403), None),
    "privacy:export-status": (statuses(LOGIN, 403, 403, 404, 403), None),
    "privacy:export-download": (statuses(LOGIN, 403, 403, 404, 403), None),
    "privacy:delete": (statuses(LOGIN, 403, 403, 200, 200), None),  # staff: "no billing account"
    "privacy:delete-undo": (POST_ONLY, OWNER_ACTION),
    "privacy:deleted": (PUBLIC, None),
    "billing_admin:dashboard": (statuses(302, 302, 302, 302, 200), None),
    "billing_admin:reconciliation": (statuses(302, 302, 302, 302, 200), None),
    "billing_admin:reconciliation-start": (statuses(302, 302, 302, 302, 405), statuses(302, 302, 302, 302, 302)),
}
if settings.BENCH_CEILING_VIEW:
    # Mounted only for bench/pages.py (billing_portal/ceiling.py): any logged-in user.
    RULES["bench-ceiling"] = (statuses(LOGIN, 200, 200, 200, 200), None)
# Django admin: only staff get in; the others are sent to the admin login.
ADMIN_PAGE = statuses(302, 302, 302, 302, 200)


def _patterns(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from _patterns(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield ":".join(filter(None, [namespace, pattern.name])), pattern


def project_url_names() -> list[str]:
    return sorted({name for name, _ in _patterns(get_resolver().url_patterns)})


def test_every_url_has_an_access_rule():
    names = [name for name in project_url_names() if not name.startswith("admin:")]
    assert sorted(set(names) - set(RULES)) == [], "add the new views to RULES"
    assert sorted(set(RULES) - set(names)) == [], "remove rules of views that are gone"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_status_on_every_page(client, world, role):
    wrong = []
    for name, (get_statuses, _post) in RULES.items():
        client_as(client, world, role)
        url = reverse(name, kwargs=world.kwargs.get(name))
        status = client.get(url).status_code
        if status != get_statuses[role]:
            wrong.append(f"{role} GET {name} {url}: {status}, expected {get_statuses[role]}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_expected_status_on_every_action(client, world, role):
    wrong = []
    for name, (_get, post_statuses) in RULES.items():
        if post_statuses is None:
            continue
        client_as(client, world, role)
        url = reverse(name, kwargs=world.kwargs.get(name))
        status = client.post(url, {}).status_code
        if status != post_statuses[role]:
            wrong.append(f"{role} POST {name} {url}: {status}, expected {post_statuses[role]}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_only_staff_reach_the_django_admin(client, world, role):
    """Everyone but staff is sent to the admin login; staff get each page, or a 403 where their
    permissions (or a read-only model) refuse it, never the login page."""
    client_as(client, world, role)
    names = [
        name
        for name, pattern in _patterns(get_resolver().url_patterns)
        if name.startswith("admin:") and not pattern.pattern.regex.groupindex
    ]
    wrong = []
    for name in names:
        status = client.get(reverse(name)).status_code
        if name == "admin:login":
            expected = {302} if role == STAFF else {200}  # non-staff may log in as someone else
        elif role != STAFF:
            expected = {302}
        elif name == "admin:logout":
            expected = {405}
        else:
            expected = {200, 403}
        if status not in expected:
            wrong.append(f"GET {name}: {status}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
