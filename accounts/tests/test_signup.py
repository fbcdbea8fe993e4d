"""Self-service signup: a visitor becomes a trialing, free or paying customer; bad input creates nothing."""

import re
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from accounts import services
from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from subscriptions import lifecycle
from subscriptions.models import Invoice, Payment, Price, Subscription, SubscriptionEvent
from subscriptions.tests.factories import DECLINING_CARD, PASSWORD, PlanFactory, PriceFactory
from subscriptions.tests.pages import FORMS_SCRIPT, messages_of, subscribed
from subscriptions.tests.test_pages_card import confirmed_setup_intent

from .conftest import link_in_last_email

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "plum-orchard-1987"


def form(price, **fields) -> dict:
    return {
        "email": "ada@lovelace.example",
        "password": GOOD_PASSWORD,
        "account_name": "Analytical Engines",
        "price": price.pk,
        **fields,
    }


def nothing_created() -> bool:
    return not (User.objects.exists() or Account.objects.exists() or Subscription.objects.exists())


# --- The signup page ----------------------------------------------------------------------------------
def test_the_signup_page_shows_the_chosen_plan_and_asks_email_password_and_account_name(client, trial_plans):
    price = trial_plans["pro"]["annual"]
    html = client.get(f"/accounts/signup/?price={price.pk}").content.decode()
    assert f'<input type="hidden" name="price" value="{price.pk}"' in html
    for field in ['name="email"', 'name="password"', 'name="account_name"']:
        assert field in html
    assert "Pro" in html and "Annual" in html and "Billed once a year: €190.00" in html
    assert "Free for 14 days, no card needed." in html
    assert "amount" not in html.split("<form")[1].split("</form>")[0].replace("account_name", "")
    assert re.findall(r"<script[^>]*>", html) == [FORMS_SCRIPT]  # only the busy buttons of every page


def test_signup_without_a_plan_sends_the_visitor_to_the_pricing_page(client, plans):
    response = client.get("/accounts/signup/", follow=True)
    assert response.redirect_chain == [("/pricing/", 302)]
    assert messages_of(response) == ["Choose a plan to get started."]


@pytest.mark.parametrize("case", ["inactive_price", "inactive_plan", "unknown", "usd", "garbage"])
def test_a_plan_that_is_not_on_offer_is_refused_with_a_message(client, plans, case):
    price_id = _unavailable_price_id(plans, case)
    response = client.get(f"/accounts/signup/?price={price_id}", follow=True)
    assert response.redirect_chain == [("/pricing/", 302)]
    assert messages_of(response) == ["This plan is not available any more. Please choose another one."]


def _unavailable_price_id(plans, case: str):
    price = plans["pro"]["monthly"]
    if case == "inactive_price":
        Price.objects.filter(pk=price.pk).update(is_active=False)
    elif case == "inactive_plan":
        type(price.plan).objects.filter(pk=price.plan_id).update(is_active=False)
    elif case == "unknown":
        return 999999
    elif case == "usd":
        return PriceFactory(plan=price.plan, currency="usd").pk
    elif case == "garbage":
        return "1%20OR%201=1"
    return price.pk


def test_a_logged_in_customer_is_sent_to_the_change_preview_instead(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    price = plans["business"]["monthly"]
    assert client.get(f"/accounts/signup/?price={price.pk}")["Location"] == f"/billing/plans/{price.pk}/"
    assert client.get("/accounts/signup/")["Location"] == "/billing/"


# --- Trial, free and paid ----------------------------------------------------------------------------------
def test_a_plan_with_a_trial_starts_the_trial_without_a_card(client, trial_plans, stripe_fake):
    price = trial_plans["pro"]["monthly"]
    before = clock.now()
    response = client.post("/accounts/signup/", form(price, name=" Ada Lovelace "), follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    user = User.objects.get()
    assert user.email == "ada@lovelace.example" and not user.is_email_verified
    assert user.name == "Ada Lovelace" and user.check_password(GOOD_PASSWORD)
    membership = Membership.objects.select_related("account").get(user=user)
    account = membership.account
    assert membership.role == Membership.OWNER
    assert (account.name, account.billing_email, account.currency) == (
        "Analytical Engines",
        "ada@lovelace.example",
        "eur",
    )
    assert account.stripe_customer_id.startswith("cus_")
    assert not account.has_payment_method
    sub = Subscription.objects.get(account=account)
    assert sub.status == lifecycle.TRIALING and sub.price == price
    assert before + timedelta(days=14) <= sub.trial_end <= clock.now() + timedelta(days=14)
    assert list(SubscriptionEvent.objects.values_list("kind", "actor")) == [("trial_started", user.pk)]
    assert not Invoice.objects.exists() and not Payment.objects.exists()
    html = response.content.decode()
    assert 'badge-trialing">Trial<' in html and "Trial ends on" in html
    assert messages_of(response)[0].startswith("Welcome! Your free trial of Pro runs until ")
    assert response.context["user"] == user  # logged in
    assert [m.to for m in mail.outbox] == [["ada@lovelace.example"]]
    assert mail.outbox[0].subject == "Please verify your email address"


def test_the_free_plan_needs_no_card(client, plans, stripe_fake):
    response = client.post("/accounts/signup/", form(plans["free"]["monthly"]), follow=True)
    sub = Subscription.objects.get()
    assert (sub.status, sub.price) == (lifecycle.ACTIVE, plans["free"]["monthly"])
    assert messages_of(response)[0] == "Welcome to Free!"
    assert not Invoice.objects.exists()


def test_the_account_speaks_the_language_of_the_signup_page(client, plans, stripe_fake):
    client.post("/accounts/signup/", form(plans["free"]["monthly"]), HTTP_ACCEPT_LANGUAGE="nl")
    assert Account.objects.get().language == "nl"


def test_a_paid_plan_asks_to_verify_the_email_then_for_the_card_then_charges_the_first_invoice(
    client, plans, stripe_fake
):
    price = plans["business"]["monthly"]
    response = client.post("/accounts/signup/", form(price))
    pay_url = f"/accounts/signup/pay/{price.pk}/"
    assert response["Location"] == pay_url
    account = Account.objects.get()
    assert account.stripe_customer_id and not Subscription.objects.exists()

    page = client.get(pay_url).content.decode()
    assert "Verify your email address" in page and "ada@lovelace.example" in page
    assert "card-element" not in page and "js.stripe.com" not in page  # no card before verification

    verify = client.get(link_in_last_email("verify"), follow=True)
    assert verify.redirect_chain == [(pay_url, 302)]
    assert messages_of(verify) == ["Thank you: your email address is verified."]
    page = verify.content.decode()
    assert 'id="card-form"' in page and 'data-client-secret="seti_' in page and "/static/js/card.js" in page
    assert f"script-src 'self' {stripe_fake.url}" in verify["Content-Security-Policy"]
    assert "Pay €49.00 and start" in page

    response = client.post(
        pay_url, {"setup_intent_id": confirmed_setup_intent(account, "4242424242424242")}, follow=True
    )
    assert response.redirect_chain == [("/billing/", 302)]
    sub = Subscription.objects.get()
    assert (sub.status, sub.price, sub.current_period_paid_minor) == (lifecycle.ACTIVE, price, 4900)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_due_minor, invoice.subscription) == (Invoice.PAID, 4900, sub)
    assert Payment.objects.get().status == Payment.SUCCEEDED
    assert len(stripe_fake.succeeded_payment_intents()) == 1
    assert 'badge-active">Active<' in response.content.decode()
    assert messages_of(response)[0].startswith("Welcome to Business! Your payment went through")


def _verified_paid_signup(client, price) -> Account:
    client.post("/accounts/signup/", form(price))
    client.get(link_in_last_email("verify"))
    return Account.objects.get()


def test_a_declined_card_creates_no_subscription_says_why_and_another_card_can_be_tried(client, plans, stripe_fake):
    price = plans["business"]["monthly"]
    account = _verified_paid_signup(client, price)
    pay_url = f"/accounts/signup/pay/{price.pk}/"
    response = client.post(pay_url, {"setup_intent_id": confirmed_setup_intent(account, DECLINING_CARD)}, follow=True)
    assert response.redirect_chain == [(pay_url, 302)]
    text = messages_of(response)[-1]
    assert text.startswith("Your card was declined (") and text.endswith("Please try another card.")
    assert not Subscription.objects.exists()
    assert list(Invoice.objects.values_list("status", flat=True)) == [Invoice.VOID]
    assert stripe_fake.succeeded_payment_intents() == []
    # The account and its owner stay: the customer tries again with another card.
    assert Membership.objects.get().role == Membership.OWNER
    client.post(pay_url, {"setup_intent_id": confirmed_setup_intent(account, "4242424242424242")})
    assert Subscription.objects.get().status == lifecycle.ACTIVE


def test_the_pay_step_refuses_an_unverified_address_and_charges_nothing(client, plans, stripe_fake):
    price = plans["business"]["monthly"]
    client.post("/accounts/signup/", form(price))
    account = Account.objects.get()
    response = client.post(
        f"/accounts/signup/pay/{price.pk}/", {"setup_intent_id": confirmed_setup_intent(account)}, follow=True
    )
    assert messages_of(response) == ["Please verify your email address before starting a paid plan."]
    assert not Subscription.objects.exists() and not Payment.objects.exists()
    account.refresh_from_db()
    assert not account.has_payment_method


@pytest.mark.parametrize("value", ["", "pm_card_visa", "4242424242424242"])
def test_the_pay_step_takes_only_a_setup_intent_id(client, plans, stripe_fake, value):
    price = plans["business"]["monthly"]
    _verified_paid_signup(client, price)
    assert client.post(f"/accounts/signup/pay/{price.pk}/", {"setup_intent_id": value}).status_code == 400
    assert not Subscription.objects.exists()


def test_the_pay_step_of_a_trial_or_free_plan_goes_to_the_ordinary_start(client, trial_plans, stripe_fake):
    account = _verified_paid_signup(client, trial_plans["business"]["monthly"])
    assert account
    pro = trial_plans["pro"]["monthly"]
    assert client.get(f"/accounts/signup/pay/{pro.pk}/")["Location"] == f"/billing/subscribe/{pro.pk}/"


def test_the_pay_step_of_an_account_with_a_subscription_goes_to_billing(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    client.force_login(owner)
    response = client.get(f"/accounts/signup/pay/{plans['business']['monthly'].pk}/", follow=True)
    assert response.redirect_chain == [("/billing/", 302)]
    assert messages_of(response) == ["Your account already has a subscription."]


def test_the_pay_step_is_for_logged_in_billing_managers_and_available_prices(client, plans, stripe_fake):
    price = plans["business"]["monthly"]
    assert client.get(f"/accounts/signup/pay/{price.pk}/")["Location"].startswith("/accounts/login/")
    _verified_paid_signup(client, price)
    assert client.get("/accounts/signup/pay/999999/").status_code == 404


def test_the_amount_is_never_taken_from_the_form(client, plans, stripe_fake):
    price = plans["business"]["monthly"]
    client.post("/accounts/signup/", form(price, amount_minor=1, amount="0.01"))
    client.get(link_in_last_email("verify"))
    account = Account.objects.get()
    client.post(
        f"/accounts/signup/pay/{price.pk}/",
        {"setup_intent_id": confirmed_setup_intent(account, "4242424242424242"), "amount_minor": 1},
    )
    assert Invoice.objects.get().amount_due_minor == 4900


# --- An address that already has an account ------------------------------------------------------------
def test_an_email_with_an_account_is_told_to_log_in_and_lands_on_the_change_preview(client, plans, stripe_fake):
    owner, account, sub = subscribed(plans["pro"]["monthly"])
    price = plans["business"]["annual"]
    response = client.post("/accounts/signup/", form(price, email=owner.email.upper(), password="x"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "There is already an account for" in html and "Log in and we take you straight to Business." in html
    login_url = f"/accounts/login/?next=%2Fbilling%2Fplans%2F{price.pk}%2F"
    assert f'href="{login_url}"' in html
    assert User.objects.count() == 1 and Account.objects.count() == 1
    login_page = client.get(login_url).content.decode()
    assert f'name="next" value="/billing/plans/{price.pk}/"' in login_page
    response = client.post(
        login_url, {"username": owner.email, "password": PASSWORD, "next": f"/billing/plans/{price.pk}/"}, follow=True
    )
    assert response.redirect_chain == [(f"/billing/plans/{price.pk}/", 302)]
    assert "Review your change" in response.content.decode()


def test_duplicate_signups_with_the_same_email_make_one_user(client, trial_plans, stripe_fake):
    price = trial_plans["pro"]["monthly"]
    client.post("/accounts/signup/", form(price))
    other = Client()
    response = other.post("/accounts/signup/", form(price, email="Ada@Lovelace.example", account_name="Copy"))
    assert "There is already an account for" in response.content.decode()
    assert (User.objects.count(), Account.objects.count(), Subscription.objects.count()) == (1, 1, 1)


def test_concurrent_duplicate_signups_make_one_user_one_account_and_one_owner(
    transactional_db, trial_plans, stripe_fake, uses_postgres
):
    price = trial_plans["pro"]["monthly"]
    start = threading.Barrier(4)
    outcomes = []

    def sign_up(n: int) -> None:
        try:
            start.wait()
            services.account_signup(
                email="race@example.com", password=GOOD_PASSWORD, account_name=f"Racer {n}", price=price
            )
            outcomes.append("created")
        except services.EmailTaken:
            outcomes.append("taken")
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "taken", "taken", "taken"]
    assert User.objects.count() == Account.objects.count() == Membership.objects.count() == 1
    assert Subscription.objects.count() == 1
    # No account is left without an owner.
    assert not Account.objects.filter(memberships__isnull=True).exists()


# --- Bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("4815162342", "This password is entirely numeric."),
        ("ada.lovelace", "The password is too similar to the email address."),
        ("countess-augusta", "The password is too similar to the name."),
    ],
)
def test_weak_passwords_are_refused_and_nothing_is_created(client, plans, stripe_fake, password, message):
    data = form(plans["free"]["monthly"], password=password, name="Countess Augusta")
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert nothing_created()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"account_name": "   "}, "This field is required."),
        ({"password": ""}, "This field is required."),
    ],
)
def test_missing_or_invalid_fields_are_refused_and_nothing_is_created(client, plans, stripe_fake, fields, message):
    response = client.post("/accounts/signup/", form(plans["free"]["monthly"], **fields))
    assert message in response.content.decode()
    assert nothing_created()


@pytest.mark.parametrize("case", ["inactive_price", "inactive_plan", "unknown", "usd", "garbage"])
def test_a_tampered_or_withdrawn_price_is_a_400_and_creates_nothing(client, plans, stripe_fake, case):
    price_id = _unavailable_price_id(plans, case).__str__().replace("%20", " ")
    response = client.post("/accounts/signup/", {**form(plans["pro"]["monthly"]), "price": price_id})
    assert response.status_code == 400
    assert "The plan you picked is not available. Nothing was created" in response.content.decode()
    assert nothing_created()


def test_signup_needs_a_csrf_token(plans, stripe_fake):
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.post("/accounts/signup/", form(plans["free"]["monthly"])).status_code == 403
    assert nothing_created()


def test_when_stripe_cannot_be_reached_nothing_is_created(client, plans, stripe_fake, settings):
    settings.LOCALSTRIPE_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    response = client.post("/accounts/signup/", form(plans["free"]["monthly"]))
    assert response.status_code == 503
    assert "We could not reach our payment processor, so nothing was created." in response.content.decode()
    assert nothing_created()
    assert not response.wsgi_request.user.is_authenticated


def test_a_price_switched_off_during_signup_leaves_an_owner_without_a_plan(plans, stripe_fake):
    price = plans["pro"]["monthly"]
    Price.objects.filter(pk=price.pk).update(is_active=False)
    result = services.account_signup(email="late@example.com", password=GOOD_PASSWORD, account_name="Late", price=price)
    assert result.start_error == "This price is not available."
    assert not result.needs_payment
    assert Membership.objects.get(account=result.account).role == Membership.OWNER
    assert not Subscription.objects.exists()


def test_a_removed_member_can_sign_up_again_with_the_same_address(client, trial_plans, stripe_fake):
    from subscriptions.tests.pages import customer, teammate

    owner, account = customer(card=False)
    former = teammate(account, Membership.MEMBER)
    services.membership_remove(account=account, membership_id=former.membership.pk, actor=owner)
    response = client.post("/accounts/signup/", form(trial_plans["pro"]["monthly"], email=former.email))
    assert response.status_code == 302
    former.refresh_from_db()
    assert former.is_active and not former.is_email_verified
    assert former.membership.account.name == "Analytical Engines"
    assert former.membership.role == Membership.OWNER


def test_an_email_that_already_has_a_login_cannot_be_revived_by_signup(client, plans, stripe_fake):
    staff = User.objects.create_user("ops@example.com", GOOD_PASSWORD, is_staff=True)
    response = client.post("/accounts/signup/", form(plans["free"]["monthly"], email=staff.email))
    assert "There is already an account for" in response.content.decode()
    assert not Account.objects.exists()


def test_a_plan_with_a_trial_is_not_given_a_second_trial_by_signup_rules(client, trial_plans, stripe_fake):
    # A new account never had a trial: the trial is offered; the pay step is not needed.
    response = client.post("/accounts/signup/", form(trial_plans["pro"]["annual"]))
    assert response["Location"] == "/billing/"
    assert Subscription.objects.get().status == lifecycle.TRIALING


def test_signup_by_get_never_creates_anything(client, plans):
    client.get(f"/accounts/signup/?price={plans['free']['monthly'].pk}&email=a@b.example&password=x")
    assert nothing_created()


def test_the_plan_summary_of_a_paid_plan_says_what_is_charged_and_when(client, plans):
    html = client.get(f"/accounts/signup/?price={plans['business']['monthly'].pk}").content.decode()
    assert "Step 1 of 2" in html
    assert "Charged today: €49.00, after you verify your email address and enter your card." in html


def test_a_new_plan_without_a_trial_can_be_bought(client, plans, stripe_fake):
    studio = PriceFactory(plan=PlanFactory(code="studio", name="Studio", rank=5, trial_days=0), amount_minor=9900)
    account = _verified_paid_signup(client, studio)
    client.post(
        f"/accounts/signup/pay/{studio.pk}/", {"setup_intent_id": confirmed_setup_intent(account, "4242424242424242")}
    )
    assert Subscription.objects.get().price == studio


def test_a_failed_verification_email_does_not_undo_the_signup(client, trial_plans, stripe_fake):
    from unittest import mock

    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("mail server down")):
        response = client.post("/accounts/signup/", form(trial_plans["pro"]["monthly"]))
    assert response["Location"] == "/billing/"
    assert Subscription.objects.get().status == lifecycle.TRIALING
    assert mail.outbox == []
    response = client.post("/accounts/verify/resend/", follow=True)  # nothing was recorded: a link goes out now
    assert messages_of(response)[-1].startswith("We sent a new link to ada@lovelace.example.")
    assert len(mail.outbox) == 1
