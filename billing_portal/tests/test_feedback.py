"""Every POST answers with a message saying what happened, or why not (docs/rules.md, "Feedback").

The views that take a POST are found from the URL conf (a view that does not answer 405 to a
POST takes one) and from the admin's registered actions, so a new POST view or admin action
without a case here fails `test_every_post_view_has_a_feedback_case`, as the access matrix does.
Each case posts as a role allowed to act, follows the redirects, and looks for the answer on the
final page: a message of the messages framework (rendered by base.html as role="status" or
role="alert"), an error summary (role="alert") of a form sent back, or, on a page that is itself
the answer (the cancellation's last page, "password saved"), its sentence marked role="status".
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import tokens
from accounts.models import Account, Invitation, Membership
from billing_portal.lib import clock
from retention.models import CancellationFlow, SessionRequest
from subscriptions.models import Invoice, Payment, Price, Subscription
from subscriptions.tests.factories import PASSWORD, PriceFactory

from .conftest import ADMIN, ANON, OTHER, ROLES, STAFF, client_as
from .test_access_matrix import RULES, project_url_names

OWNER = "owner"  # the owner of account A (the world's roles have A's billing admin and B's owner)


@dataclass
class Case:
    role: str
    valid: dict | Callable | None  # the form a customer sends; a callable gets (world, client) and returns it
    invalid: dict | None = None  # bad input, for views with inputs
    kwargs: Callable | None = None  # URL arguments, when not the world's
    why_no_valid: str = ""  # a valid POST whose answer is not a message, and why
    notes: list = field(default_factory=list)


def _owner_of_a():
    return Membership.objects.get(account__name="A", role=Membership.OWNER).user


def _password_reset_kwargs(world):
    user = _owner_of_a()
    return {"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)}


def _invitation_kwargs(world):
    invitation = Invitation.objects.get(email="new@example.com")
    return {"token": tokens.invitation_token_make(invitation_id=invitation.pk)}


def _signup_data(world):
    price = Price.objects.filter(amount_minor=0, plan__rank=1).get()
    return {
        "email": "fresh@example.com",
        "name": "Fresh",
        "password": "a-long-and-unusual-passphrase",
        "account_name": "Fresh Ltd",
        "price": price.pk,
    }


# name -> how to post it. Every view that takes a POST has one (or is in EXCLUDED).
CASES: dict[str, Case] = {
    "accounts:login": Case(ANON, lambda world: {"username": _owner_of_a().email, "password": PASSWORD},
                           invalid={"username": "nobody@example.com", "password": "wrong"}),
    "accounts:logout": Case(ADMIN, {}),
    "accounts:reauthenticate": Case(ADMIN, {"password": PASSWORD}, invalid={"password": "wrong"}),
    "accounts:password_reset": Case(ANON, lambda world: {"email": _owner_of_a().email},
                                    invalid={"email": "not an email"}),
    "accounts:password_reset_confirm": Case(
        ANON, {"new_password1": "another-long-passphrase", "new_password2": "another-long-passphrase"},
        invalid={"new_password1": "another-long-passphrase", "new_password2": "a-different-one"},
        kwargs=_password_reset_kwargs,
    ),
    "set_language": Case(ADMIN, {"language": "nl", "next": "/billing/"},
                         invalid={"language": "xx", "next": "/billing/"}),
    "accounts:email-language": Case(ADMIN, {"language": "fr"}, invalid={"language": "xx"}),
    "accounts:signup": Case(ANON, _signup_data, invalid={"email": "not an email", "price": ""}),
    # Account B has no subscription yet: the pay step of a paid plan without a trial.
    "accounts:signup-pay": Case(OTHER, {"setup_intent_id": "seti_unknown"}, invalid={"setup_intent_id": "x"},
                                kwargs=lambda world: {"price_id": PriceFactory(amount_minor=1900).pk}),
    "accounts:verify-resend": Case(ADMIN, {}),
    "accounts:invitation": Case(
        ANON, {"name": "New Person", "password": "a-long-and-unusual-passphrase"},
        invalid={"name": "", "password": "1"}, kwargs=_invitation_kwargs,
    ),
    "accounts:team-invite": Case(OWNER, {"email": "colleague@example.com", "role": "member"},
                                 invalid={"email": "not an email", "role": "member"}),
    "accounts:team-role": Case(OWNER, {"role": Membership.BILLING_ADMIN}, invalid={"role": "boss"}),
    "accounts:team-remove": Case(OWNER, {}),
    "accounts:team-revoke": Case(OWNER, {}),
    "subscriptions:change-confirm": Case(ADMIN, {"when": "now"}, invalid={"when": "tomorrow"}),
    "subscriptions:change-withdraw": Case(ADMIN, {}),
    "subscriptions:subscribe": Case(ADMIN, {}),
    "subscriptions:pause": Case(ADMIN, {"months": "1"}, invalid={"months": "9"}),
    "subscriptions:resume": Case(ADMIN, {}),
    "subscriptions:undo-cancel": Case(ADMIN, {}),
    "subscriptions:pay-now": Case(ADMIN, {}),
    "subscriptions:card-finish": Case(ADMIN, {"setup_intent_id": "seti_unknown", "next": "/billing/"},
                                      invalid={"setup_intent_id": "pm_not_a_setup_intent"}),
    "subscriptions:payment-authenticate": Case(ADMIN, {}),
    "retention:start": Case(
        ADMIN, None, invalid={"reason": "bored"},
        why_no_valid="a step of the flow: the answer is the next step (the offer, or 'before you go')",
    ),
    "retention:accept": Case(ADMIN, lambda world: {"offer": ""}, invalid={"offer": "not-a-number"}),
    "retention:keep": Case(ADMIN, {}),
    "retention:confirm": Case(ADMIN, {}),
    "retention:undo": Case(ADMIN, {}),
    "privacy:export-start": Case(OWNER, {}),
    "privacy:delete": Case(OWNER, {"password": PASSWORD, "account_name": "A"},
                           invalid={"password": "wrong", "account_name": "Not A"}),
    "privacy:delete-undo": Case(OWNER, {}),
    "billing_admin:reconciliation-start": Case(STAFF, {}),
}  # fmt: skip

# Views that take a POST but answer something other than a page: nobody reads a message there.
EXCLUDED = {
    "subscriptions:stripe-webhook": "Stripe's webhook: signed JSON from Stripe, answered with a bare 200 or 400",
}

# Admin actions (they post to the changelist). name -> (model, the form that confirms it, bad input).
ADMIN_ACTIONS: dict[str, tuple] = {
    "subscriptions.subscription.cancel_now": ({}, None),
    "subscriptions.subscription.cancel_at_period_end": ({}, None),
    "subscriptions.subscription.undo_cancel": ({}, None),
    "subscriptions.subscription.pause": ({"confirm": "1", "months": "1"}, {"confirm": "1", "months": "7"}),
    "subscriptions.subscription.resume": ({}, None),
    "subscriptions.subscription.change_price": (
        lambda: {"confirm": "1", "price": Price.objects.filter(plan__rank=2).get().pk, "at_period_end": ""},
        {"confirm": "1", "price": "999999"},
    ),
    "subscriptions.subscription.retry_payment": ({}, None),
    "subscriptions.subscription.extend_trial": ({"confirm": "1", "days": "7"}, {"confirm": "1", "days": "0"}),
    "subscriptions.invoice.mark_uncollectible": ({}, None),
    "subscriptions.payment.refund": (
        lambda: {"confirm": "1", "amount": "1.00", "reason": "Goodwill", "refunds_seen": "0"},
        {"confirm": "1", "amount": "-5", "reason": "", "refunds_seen": "0"},
    ),
    "retention.sessionrequest.mark_done": ({}, None),
}
ADMIN_EXCLUDED = {
    "retention.cancellationflow.export_csv": "answers with a CSV file to download, not a page",
    "*.delete_selected": "Django's own bulk delete, with its own confirmation page and message",
    "axes.accessattempt.cleanup_expired_attempts": "django-axes' own action (login throttling records)",
}


def _admin_action_names() -> list[str]:
    names = []
    for model, model_admin in admin.site._registry.items():
        for _func, name, _description in model_admin._get_base_actions():
            names.append(f"{model._meta.app_label}.{model._meta.model_name}.{name}")
    return sorted(names)


def _takes_a_post(client, world, name: str) -> bool:
    """A view takes a POST unless some role is told 405 (a GET-only view says so before anything else)."""
    url = reverse(name, kwargs=world.kwargs.get(name))
    for role in (ANON, ADMIN, OTHER, STAFF):
        client_as(client, world, role)
        if client.post(url, {}).status_code == 405:
            return False
    return True


def test_every_post_view_has_a_feedback_case(client, world):
    names = [name for name in project_url_names() if not name.startswith("admin:")]
    post_views = {name for name in names if _takes_a_post(client, world, name)}
    assert sorted(post_views - set(CASES) - set(EXCLUDED)) == [], "add a feedback case for the new POST views"
    assert sorted((set(CASES) | set(EXCLUDED)) - post_views) == [], "remove cases of views that take no POST"
    # The access matrix lists the same POST actions.
    assert {name for name, (_get, post) in RULES.items() if post is not None} <= post_views


def test_every_admin_action_has_a_feedback_case():
    names = [n for n in _admin_action_names() if not n.endswith(".delete_selected")]
    assert sorted(set(names) - set(ADMIN_ACTIONS) - set(ADMIN_EXCLUDED)) == [], "add a case for the new admin action"
    assert sorted(set(ADMIN_ACTIONS) - set(names)) == [], "remove cases of admin actions that are gone"


def _answer(response) -> str:
    """The final page must say what happened: a message, an error summary, or the page's own sentence."""
    assert response.status_code < 500
    return response.content.decode()


def _says_something(content: str) -> bool:
    # The answer is marked data-feedback (a message, an error summary, a page's own sentence), so the
    # standing notices of a page (a payment banner, the dunning line) do not count; admin: its message list.
    return "data-feedback" in content or 'class="messagelist"' in content


def _says_why_not(content: str) -> bool:
    return re.search(r'data-feedback role="alert"', content) is not None or 'class="messagelist"' in content


def _login(client, world, role):
    if role == OWNER:
        client.logout()
        client.force_login(_owner_of_a())
    else:
        client_as(client, world, role)
    return client


def _post(client, world, name: str, case: Case, data):
    kwargs = case.kwargs(world) if case.kwargs else world.kwargs.get(name)
    url = reverse(name, kwargs=kwargs)
    if name == "accounts:password_reset_confirm":
        # Django first swaps the token in the link for one kept in the session.
        url = client.get(url)["Location"]
    return client.post(url, data, follow=True)


def test_a_view_without_a_valid_case_says_why():
    for name, case in CASES.items():
        assert case.valid is not None or case.why_no_valid, f"{name}: say why a valid POST has no message"


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case.valid is not None))
def test_a_valid_post_answers_with_a_message(client, world, name):
    case = CASES[name]
    _login(client, world, case.role)
    data = case.valid(world) if callable(case.valid) else case.valid
    content = _answer(_post(client, world, name, case, data))
    assert _says_something(content), f"{name}: the page after a valid POST says nothing"


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case.invalid is not None))
def test_an_invalid_post_says_why_not_and_changes_nothing(client, world, name):
    case = CASES[name]
    _login(client, world, case.role)
    before = _world_state()
    content = _answer(_post(client, world, name, case, case.invalid))
    assert _says_why_not(content), f"{name}: bad input is not explained"
    if name not in ("accounts:login", "set_language"):  # a failed login is recorded (throttling); a cookie
        assert _world_state() == before, f"{name}: bad input changed something"


def _world_state() -> tuple:
    return (
        list(Subscription.objects.values().order_by("pk")),
        list(Account.objects.values().order_by("pk")),
        list(Membership.objects.values().order_by("pk")),
        list(Invitation.objects.values().order_by("pk")),
        list(CancellationFlow.objects.values().order_by("pk")),
        Invoice.objects.count(),
        Payment.objects.count(),
    )


def _admin_object(model_path: str, world):
    app, model_name, _action = model_path.split(".")
    account = Account.objects.get(name="A")
    if model_name == "subscription":
        return Subscription.objects.get(account=account)
    if model_name == "invoice":
        return Invoice.objects.get(account=account)
    if model_name == "payment":
        invoice = Invoice.objects.get(account=account)
        return Payment.objects.create(
            invoice=invoice,
            amount_minor=500,
            currency="eur",
            status=Payment.SUCCEEDED,
            stripe_payment_intent_id="pi_unknown_to_stripe",
            attempt=1,
            created_at=clock.now(),
        )
    if model_name == "sessionrequest":
        flow = CancellationFlow.objects.get(account=account)
        return SessionRequest.objects.create(
            account=account, flow=flow, contact_email="a@example.com", created_at=clock.now()
        )
    raise AssertionError(f"no object for {model_path}")


def _post_admin_action(client, world, path: str, data, obj=None):
    obj = obj or _admin_object(path, world)
    _app, _model, action = path.split(".")
    changelist = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_changelist")
    payload = {"action": action, "_selected_action": [obj.pk], "index": "0", **data}
    client_as(client, world, STAFF)
    return client.post(changelist, payload, follow=True)


@pytest.mark.parametrize("path", sorted(ADMIN_ACTIONS))
def test_an_admin_action_answers_with_a_message(client, world, path):
    valid, _invalid = ADMIN_ACTIONS[path]
    data = valid() if callable(valid) else valid
    content = _answer(_post_admin_action(client, world, path, data))
    assert 'class="messagelist"' in content, f"{path}: the operator is not told what happened"


@pytest.mark.parametrize("path", sorted(p for p, (_v, invalid) in ADMIN_ACTIONS.items() if invalid is not None))
def test_an_admin_action_with_bad_input_says_why_and_changes_nothing(client, world, path):
    _valid, invalid = ADMIN_ACTIONS[path]
    obj = _admin_object(path, world)
    before = _world_state()
    response = _post_admin_action(client, world, path, invalid, obj)
    content = _answer(response)
    assert 'class="errorlist' in content or 'class="messagelist"' in content, f"{path}: bad input is not explained"
    assert _world_state() == before


def test_roles_used_here_exist():
    assert {case.role for case in CASES.values()} <= {*ROLES, OWNER}
