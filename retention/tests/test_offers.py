"""Which offer a customer sees, what the offer page says, and what accepting it does."""

from datetime import timedelta

import pytest

from retention import selectors
from retention.models import CancellationFlow, OfferKind, Reason, RetentionOffer
from subscriptions import lifecycle
from subscriptions import services as subscription_services
from subscriptions.models import Invoice, SubscriptionEvent
from subscriptions.tests.factories import PASSWORD, PriceFactory, UserFactory

from .conftest import T0, make_customer

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=10)


def offered(subscription, reason, now=NOW):
    offer = selectors.offer_for(subscription=subscription, reason=reason, now=now)
    return offer.kind if offer else None


# --- Which offer applies ----------------------------------------------------------------------------
def test_pause_is_offered_on_monthly_prices_only(catalog, stripe_fake):
    monthly = make_customer(catalog["business"][lifecycle.MONTHLY]).subscription
    annual = make_customer(catalog["business"][lifecycle.ANNUAL], name="Annual Co").subscription
    commitment = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY], name="Commit Co").subscription
    assert offered(monthly, Reason.TEMPORARY) == OfferKind.PAUSE
    assert offered(annual, Reason.TEMPORARY) is None
    assert offered(commitment, Reason.TEMPORARY) is None


def test_the_next_active_offer_in_order_is_shown_when_the_first_does_not_apply(catalog, stripe_fake):
    annual = make_customer(catalog["business"][lifecycle.ANNUAL]).subscription
    RetentionOffer.objects.create(reason=Reason.TEMPORARY, kind=OfferKind.SESSION, order=20)
    RetentionOffer.objects.create(
        reason=Reason.TEMPORARY, kind=OfferKind.DISCOUNT, order=30, discount_percent=10, discount_periods=1
    )
    assert offered(annual, Reason.TEMPORARY) == OfferKind.SESSION
    RetentionOffer.objects.filter(kind=OfferKind.SESSION, reason=Reason.TEMPORARY).update(is_active=False)
    assert offered(annual, Reason.TEMPORARY) == OfferKind.DISCOUNT
    RetentionOffer.objects.filter(reason=Reason.TEMPORARY, kind=OfferKind.DISCOUNT).update(order=1)
    monthly = make_customer(catalog["business"][lifecycle.MONTHLY], name="Monthly Co").subscription
    assert offered(monthly, Reason.TEMPORARY) == OfferKind.DISCOUNT  # order 1 beats the pause's 10


def test_a_switched_off_offer_is_never_shown(customer):
    RetentionOffer.objects.filter(reason=Reason.TOO_EXPENSIVE).update(is_active=False)
    assert offered(customer.subscription, Reason.TOO_EXPENSIVE) is None


def test_no_cheaper_plan_is_offered_on_the_cheapest_paid_plan(catalog, stripe_fake):
    pro = make_customer(catalog["pro"][lifecycle.MONTHLY]).subscription
    assert offered(pro, Reason.NOT_USING) is None  # Free is not a "cheaper plan" unless an operator says so
    RetentionOffer.objects.filter(reason=Reason.NOT_USING).update(target_price=catalog["free"][lifecycle.MONTHLY])
    assert offered(pro, Reason.NOT_USING) == OfferKind.CHEAPER_PLAN


def test_the_automatic_cheaper_plan_is_the_most_expensive_paid_price_below_in_the_same_cycle(catalog, customer):
    assert selectors.cheaper_price_for(subscription=customer.subscription) == catalog["pro"][lifecycle.MONTHLY]


def test_an_operators_target_price_applies_only_when_it_is_cheaper_active_and_in_the_currency(catalog, customer):
    sub = customer.subscription
    pro_annual = catalog["pro"][lifecycle.ANNUAL]  # €190 a year < €49 a month
    assert selectors.cheaper_price_for(subscription=sub, target=pro_annual) == pro_annual
    business_annual = catalog["business"][lifecycle.ANNUAL]  # €490 a year < €588
    assert selectors.cheaper_price_for(subscription=sub, target=business_annual) == business_annual
    studio = catalog["studio"][lifecycle.MONTHLY]
    assert selectors.cheaper_price_for(subscription=sub, target=studio) is None  # dearer
    assert selectors.cheaper_price_for(subscription=sub, target=sub.price) is None
    dollars = PriceFactory(plan=pro_annual.plan, cycle=lifecycle.MONTHLY, currency="usd", amount_minor=900)
    assert selectors.cheaper_price_for(subscription=sub, target=dollars) is None
    pro_annual.is_active = False
    pro_annual.save()
    assert selectors.cheaper_price_for(subscription=sub, target=pro_annual) is None


def test_a_discount_is_not_offered_again_within_twelve_months(customer):
    sub = customer.subscription
    operator = UserFactory(is_staff=True)
    subscription_services.subscription_apply_discount(subscription=sub, percent=10, periods=1, actor=operator, now=T0)
    assert offered(sub, Reason.TOO_EXPENSIVE) is None  # still running
    sub.discount_percent = sub.discount_periods_left = 0
    sub.save()
    assert offered(sub, Reason.TOO_EXPENSIVE, now=T0 + timedelta(days=364)) is None
    assert offered(sub, Reason.TOO_EXPENSIVE, now=T0.replace(year=2027) + timedelta(seconds=1)) == OfferKind.DISCOUNT


def test_a_free_subscription_gets_no_discount_pause_or_cheaper_plan(catalog, stripe_fake):
    free = make_customer(catalog["free"][lifecycle.MONTHLY], card=False).subscription
    for reason in (Reason.TOO_EXPENSIVE, Reason.TEMPORARY, Reason.NOT_USING):
        assert offered(free, reason) is None
    assert offered(free, Reason.TECHNICAL) == OfferKind.SESSION


def test_a_trial_can_get_a_discount_and_a_cheaper_plan_but_no_pause(catalog, stripe_fake):
    trial = make_customer(catalog["studio"][lifecycle.MONTHLY], card=False).subscription
    assert trial.status == lifecycle.TRIALING
    assert offered(trial, Reason.TOO_EXPENSIVE) == OfferKind.DISCOUNT
    assert offered(trial, Reason.NOT_USING) == OfferKind.CHEAPER_PLAN
    assert offered(trial, Reason.TEMPORARY) is None


# --- What the offer page says, and accepting ----------------------------------------------------------
def start(client, customer, reason):
    client.login(username=customer.owner.email, password=PASSWORD)
    client.post("/billing/cancel/", {"reason": reason})
    flow = CancellationFlow.objects.get(account=customer.account)
    return flow, client.get(f"/billing/cancel/{flow.pk}/offer/").content.decode()


def test_the_discount_offer_shows_the_next_invoice_and_what_is_saved(client, customer, frozen):
    frozen.set(NOW)
    flow, page = start(client, customer, Reason.TOO_EXPENSIVE)
    assert "Stay and get 30% off your next 3 invoices" in page
    assert "May 1, 2026" in page
    assert "€49.00</span>€34.30" in page
    assert "€44.10" in page  # 3 × €14.70


def test_an_accepted_discount_shows_on_the_next_invoices_then_stops(client, customer, frozen):
    frozen.set(NOW)
    flow, _page = start(client, customer, Reason.TOO_EXPENSIVE)
    client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id})
    kept = client.get(f"/billing/cancel/{flow.pk}/kept/").content.decode()
    assert "Your discount is on" in kept and "€34.30" in kept
    sub = customer.subscription
    for month in (5, 6, 7, 8):
        subscription_services.subscriptions_renew_due(now=T0.replace(month=month))
    invoices = Invoice.objects.filter(subscription=sub, billing_reason=Invoice.CYCLE).order_by("period_start")
    assert [invoice.amount_due_minor for invoice in invoices] == [3430, 3430, 3430, 4900]
    assert [[(line.kind, line.amount_minor) for line in invoice.lines.all()] for invoice in invoices][0] == [
        ("plan", 4900),
        ("discount", -1470),
    ]
    assert invoices[0].lines.get(kind="discount").description == "Discount 30%"
    sub.refresh_from_db()
    assert (sub.discount_percent, sub.discount_periods_left) == (0, 0)


def test_the_pause_offer_shows_when_it_resumes_and_the_longer_period(client, customer, frozen):
    frozen.set(NOW)
    flow, page = start(client, customer, Reason.TEMPORARY)
    assert "Pause for 3 months instead" in page
    assert "July 11, 2026" in page  # resumes
    assert "July 31, 2026" in page  # May 1 + the 91 days paused


def test_the_cheaper_plan_waits_for_the_period_end_when_switching_now_would_forfeit_money(client, customer, frozen):
    frozen.set(NOW)
    flow, page = start(client, customer, Reason.NOT_USING)
    assert "Switch to Pro and pay less" in page
    assert "The switch happens at the end of the period you paid for, on May 1, 2026" in page
    assert "Due today" in page and "€0.00" in page
    client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id})
    kept = client.get(f"/billing/cancel/{flow.pk}/kept/").content.decode()
    assert "Your switch to Pro is scheduled" in kept
    assert "From May 1, 2026 you pay €19.00." in kept


def test_the_cheaper_plan_applies_at_once_late_in_the_period_with_the_preview_numbers(
    client, customer, frozen, stripe_fake
):
    late = T0 + timedelta(days=28)  # 2 days left: credit €3.27
    frozen.set(late)
    flow, page = start(client, customer, Reason.NOT_USING)
    assert "Credit for unused time" in page and "€3.27" in page
    assert "€15.73" in page  # due today
    client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id})
    sub = customer.refresh()
    assert (sub.price.plan.code, sub.current_period_start) == ("pro", late)
    assert [intent["amount"] for intent in stripe_fake.succeeded_payment_intents()] == [4900, 1573]
    assert "You are now on Pro" in client.get(f"/billing/cancel/{flow.pk}/kept/").content.decode()


def test_in_a_commitment_the_cheaper_plan_starts_at_the_commitment_end(client, catalog, stripe_fake, frozen):
    customer = make_customer(catalog["business"][lifecycle.ANNUAL_COMMITMENT_MONTHLY])
    frozen.set(NOW)
    flow, page = start(client, customer, Reason.NOT_USING)
    assert "Your commitment runs until April 1, 2027, so the switch happens then." in page
    client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id})
    sub = customer.refresh()
    assert sub.scheduled_price == catalog["pro"][lifecycle.ANNUAL_COMMITMENT_MONTHLY]
    assert "From April 1, 2027 you pay €17.00." in client.get(f"/billing/cancel/{flow.pk}/kept/").content.decode()


def test_a_declined_card_on_the_cheaper_plan_changes_nothing_and_says_so(client, customer, frozen, stripe_fake):
    from subscriptions.tests.factories import DECLINING_CARD, give_card_number

    give_card_number(customer.account, DECLINING_CARD)
    frozen.set(T0 + timedelta(days=28))
    flow, _page = start(client, customer, Reason.NOT_USING)
    response = client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id}, follow=True)
    assert "Your card was declined" in response.content.decode()
    sub = customer.refresh()
    assert sub.price.plan.code == "business"
    flow.refresh_from_db()
    assert (flow.outcome, flow.offer_accepted_at) == ("open", None)


def test_the_session_request_is_listed_for_operators_and_emailed_to_the_team(client, customer, frozen, settings):
    from django.core import mail

    settings.RETENTION_TEAM_EMAIL = "team@example.com"
    frozen.set(NOW)
    flow, page = start(client, customer, Reason.MISSING_FEATURES)
    assert "Times are in your time zone (Europe/Amsterdam)." in page
    client.post(
        f"/billing/cancel/{flow.pk}/offer/accept/",
        {"offer": flow.offer_id, "proposed_1": "2026-04-20T09:30", "note": "We need SAML"},
    )
    (message,) = mail.outbox
    assert message.to == ["team@example.com"]
    assert message.reply_to == [customer.owner.email]
    assert message.subject == "1:1 session request from Acme Studio"
    body = " ".join(message.body.split())
    assert "April 20, 2026, 9:30 a.m." in body and "We need SAML" in body
    assert "It is missing features I need" in body
    kept = client.get(f"/billing/cancel/{flow.pk}/kept/").content.decode()
    assert "Your session request is in" in kept and "April 20, 2026, 9:30 a.m." in kept
    assert not SubscriptionEvent.objects.filter(subscription=customer.subscription, created_at=NOW).exists()


def test_a_session_request_is_kept_even_if_the_team_email_fails(client, customer, frozen, monkeypatch):
    from django.core.mail import EmailMultiAlternatives

    def broken(self, *args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken)
    frozen.set(NOW)
    flow, _page = start(client, customer, Reason.TECHNICAL)
    client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id, "proposed_1": "2026-04-20T09:30"})
    flow.refresh_from_db()
    assert flow.outcome == "saved"
    assert flow.session_request.team_notified_at is None
