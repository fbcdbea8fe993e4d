"""Every path through the flow with the test client: each reason × accept / skip / keep / abandon.

The offers are the defaults the data migration seeds (one per reason).
"""

from datetime import timedelta

import pytest
from django.core import mail

from retention import services
from retention.models import CancellationFlow, OfferKind, Reason, RetentionOffer, SessionRequest
from subscriptions import lifecycle
from subscriptions.models import EmailSent, SubscriptionEvent

from .conftest import T0, snapshot

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=10)  # a third into the April period of the €49 Business monthly subscription
SEEDED = {
    Reason.TOO_EXPENSIVE: OfferKind.DISCOUNT,
    Reason.MISSING_FEATURES: OfferKind.SESSION,
    Reason.NOT_USING: OfferKind.CHEAPER_PLAN,
    Reason.SWITCHING: OfferKind.DISCOUNT,
    Reason.TEMPORARY: OfferKind.PAUSE,
    Reason.TECHNICAL: OfferKind.SESSION,
    Reason.OTHER: OfferKind.SESSION,
}


def test_the_data_migration_seeds_one_active_offer_per_reason(db):
    offers = RetentionOffer.objects.filter(is_active=True)
    assert {offer.reason: offer.kind for offer in offers} == SEEDED
    assert offers.count() == len(Reason.choices)


def start_flow(client, reason, text="Our budget was cut."):
    response = client.post("/billing/cancel/", {"reason": reason, "reason_text": text})
    flow = CancellationFlow.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/billing/cancel/{flow.pk}/offer/"
    return flow


def accept_data(flow, kind):
    data = {"offer": flow.offer_id}
    if kind == OfferKind.SESSION:
        data |= {"proposed_1": "2026-04-14T10:00", "proposed_2": "2026-04-15T15:30", "note": "Show me the roadmap"}
    return data


def assert_offer_applied(kind, customer, flow):
    sub = customer.refresh()
    events = list(SubscriptionEvent.objects.filter(subscription=sub, created_at=NOW).values_list("kind", flat=True))
    if kind == OfferKind.DISCOUNT:
        terms = flow.offer_terms
        assert (sub.discount_percent, sub.discount_periods_left) == (terms["percent"], terms["periods"])
        assert events == ["discount_applied"]
    elif kind == OfferKind.PAUSE:
        assert sub.status == lifecycle.PAUSED
        assert sub.resume_at == NOW.replace(month=7)  # 3 months
        assert events == ["paused"]
    elif kind == OfferKind.CHEAPER_PLAN:
        # Switching now would forfeit €32.67 of unused Business time, so it waits for the period end.
        assert sub.scheduled_price.plan.code == "pro"
        assert sub.scheduled_price.cycle == lifecycle.MONTHLY
        assert sub.price.plan.code == "business"
        assert events == ["price_change_scheduled"]
    elif kind == OfferKind.SESSION:
        request = SessionRequest.objects.get(flow=flow)
        assert request.proposed_times == ["2026-04-14T08:00:00+00:00", "2026-04-15T13:30:00+00:00"]  # Amsterdam
        assert request.note == "Show me the roadmap"
        assert request.team_notified_at == NOW
        assert [message.to for message in mail.outbox] == [["success@example.com"]]
        assert events == []
    assert sub.cancel_at is None


@pytest.mark.parametrize("reason", Reason.values)
def test_accepting_the_offer_applies_it_at_once_and_ends_the_flow_as_a_save(reason, owner_client, customer, frozen):
    frozen.set(NOW)
    flow = start_flow(owner_client, reason)
    kind = SEEDED[reason]
    assert (flow.reason, flow.reason_text, flow.offer_kind) == (reason, "Our budget was cut.", kind)
    page = owner_client.get(f"/billing/cancel/{flow.pk}/offer/")
    assert page.status_code == 200
    assert 'id="accept-offer"' in page.content.decode()
    assert "Skip, continue to cancel" in page.content.decode()

    response = owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", accept_data(flow, kind))
    assert response.status_code == 302
    assert response["Location"] == f"/billing/cancel/{flow.pk}/kept/"
    flow.refresh_from_db()
    assert (flow.outcome, flow.offer_accepted_at, flow.finished_at, flow.save_held) == ("saved", NOW, NOW, None)
    assert_offer_applied(kind, customer, flow)
    assert owner_client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize("reason", Reason.values)
def test_skipping_the_offer_and_confirming_schedules_the_cancellation(
    reason, owner_client, customer, frozen, django_capture_on_commit_callbacks
):
    frozen.set(NOW)
    flow = start_flow(owner_client, reason)
    review = owner_client.get(f"/billing/cancel/{flow.pk}/before-you-go/")
    assert review.status_code == 200
    assert 'id="confirm-cancel"' in review.content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # the email is queued after the commit
        response = owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    assert response["Location"] == f"/billing/cancel/{flow.pk}/canceled/"
    sub = customer.refresh()
    assert (sub.status, sub.cancel_at, sub.cancel_reason) == (lifecycle.ACTIVE, T0.replace(month=5), reason)
    flow.refresh_from_db()
    assert (flow.outcome, flow.cancel_at, flow.finished_at) == ("canceled", sub.cancel_at, NOW)
    assert flow.offer_kind == SEEDED[reason] and flow.offer_accepted_at is None  # shown, not taken
    assert SubscriptionEvent.objects.filter(subscription=sub, kind="cancel_scheduled").count() == 1

    # The confirmation email, once, to the billing contacts.
    assert EmailSent.objects.filter(kind="cancellation-scheduled").count() == 1
    (message,) = [m for m in mail.outbox if "ends on" in m.subject]
    assert customer.account.billing_email in message.to
    assert message.subject == "Your Business subscription ends on May 1, 2026"
    assert "undo the cancellation until May 1, 2026" in message.body

    done = owner_client.get(response["Location"]).content.decode()
    assert "Business stays active until May 1, 2026" in done
    assert 'id="undo-cancel"' in done


@pytest.mark.parametrize("step", ["offer", "before-you-go"])
@pytest.mark.parametrize("reason", Reason.values)
def test_keep_my_subscription_on_any_step_ends_the_flow_as_a_save_and_changes_nothing(
    reason, step, owner_client, customer, frozen
):
    frozen.set(NOW)
    before = snapshot(customer.subscription)
    flow = start_flow(owner_client, reason)
    page = owner_client.get(f"/billing/cancel/{flow.pk}/{step}/").content.decode()
    assert f'action="/billing/cancel/{flow.pk}/keep/"' in page

    response = owner_client.post(f"/billing/cancel/{flow.pk}/keep/")
    assert response["Location"] == f"/billing/cancel/{flow.pk}/kept/"
    flow.refresh_from_db()
    assert (flow.outcome, flow.offer_accepted_at, flow.finished_at) == ("saved", None, NOW)
    assert snapshot(customer.subscription) == before
    assert "Glad you are staying" in owner_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("reason", Reason.values)
def test_a_flow_left_open_is_abandoned_by_the_daily_job_after_a_day(reason, owner_client, customer, frozen):
    frozen.set(NOW)
    before = snapshot(customer.subscription)
    flow = start_flow(owner_client, reason)
    owner_client.get(f"/billing/cancel/{flow.pk}/offer/")

    assert services.flows_settle(now=NOW + timedelta(hours=23))["abandoned"] == 0
    flow.refresh_from_db()
    assert flow.outcome == "open"

    later = NOW + timedelta(days=1, minutes=1)
    assert services.flows_settle(now=later)["abandoned"] == 1
    flow.refresh_from_db()
    assert (flow.outcome, flow.finished_at) == ("abandoned", later)
    assert snapshot(customer.subscription) == before


def test_skip_on_the_first_step_goes_straight_to_before_you_go_without_reason_or_offer(owner_client, customer, frozen):
    frozen.set(NOW)
    page = owner_client.get("/billing/cancel/").content.decode()
    assert 'form="reason-form" name="skip"' in page and "formnovalidate" in page
    response = owner_client.post("/billing/cancel/", {"skip": "1"})
    flow = CancellationFlow.objects.get()
    assert response["Location"] == f"/billing/cancel/{flow.pk}/before-you-go/"
    assert (flow.reason, flow.offer, flow.offer_kind) == ("", None, "")
    owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    assert customer.refresh().cancel_reason == "not_given"


def test_a_cancellation_takes_three_requests_after_opening_the_flow(owner_client, customer, frozen):
    """Billing page → cancel link (1), reason (2), skip (3), confirm (4): never more than four clicks."""
    frozen.set(NOW)
    assert owner_client.get("/billing/cancel/").status_code == 200  # click 1 lands here
    offer = owner_client.post("/billing/cancel/", {"reason": "too_expensive"}, follow=True)  # click 2
    skip_url = f"/billing/cancel/{CancellationFlow.objects.get().pk}/before-you-go/"
    assert f'href="{skip_url}"' in offer.content.decode()
    review = owner_client.get(skip_url)  # click 3
    confirm_url = f"/billing/cancel/{CancellationFlow.objects.get().pk}/confirm/"
    assert f'action="{confirm_url}"' in review.content.decode()
    owner_client.post(confirm_url)  # click 4
    assert customer.refresh().is_canceling


def test_going_back_to_the_first_step_continues_the_same_attempt(owner_client, customer, frozen):
    frozen.set(NOW)
    first = start_flow(owner_client, Reason.TOO_EXPENSIVE)
    page = owner_client.get("/billing/cancel/")
    assert page.context["form"]["reason"].value() == "too_expensive"
    assert 'value="too_expensive" id="id_reason_0" required checked' in page.content.decode()
    owner_client.post("/billing/cancel/", {"reason": Reason.TEMPORARY, "reason_text": ""})
    flow = CancellationFlow.objects.get()
    assert flow.pk == first.pk
    assert (flow.reason, flow.offer_kind, flow.offer_terms) == (Reason.TEMPORARY, OfferKind.PAUSE, {"months": 3})


def test_undo_on_the_done_page_keeps_the_subscription_and_turns_the_flow_into_a_save(owner_client, customer, frozen):
    frozen.set(NOW)
    flow = start_flow(owner_client, Reason.OTHER)
    owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    frozen.set(NOW + timedelta(days=3))
    response = owner_client.post("/billing/cancel/undo/", follow=True)
    assert response.redirect_chain[-1][0] == "/billing/"
    assert "Your cancellation is undone: Business continues." in response.content.decode()
    assert customer.refresh().cancel_at is None
    flow.refresh_from_db()
    assert (flow.outcome, flow.undone_at, flow.save_held) == ("saved", NOW + timedelta(days=3), None)
    # The done page of that flow now sends to the "kept" page.
    assert owner_client.get(f"/billing/cancel/{flow.pk}/canceled/")["Location"] == f"/billing/cancel/{flow.pk}/kept/"


def test_opening_the_flow_again_after_confirming_shows_the_end_date_and_undo(owner_client, customer, frozen):
    frozen.set(NOW)
    flow = start_flow(owner_client, Reason.OTHER)
    owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    assert owner_client.get("/billing/cancel/")["Location"] == f"/billing/cancel/{flow.pk}/canceled/"


def test_a_billing_admin_can_cancel_too(client, customer, frozen):
    from accounts.models import Membership
    from subscriptions.tests.factories import PASSWORD

    from .conftest import add_member

    admin = add_member(customer.account, Membership.BILLING_ADMIN)
    frozen.set(NOW)
    client.login(username=admin.email, password=PASSWORD)
    client.post("/billing/cancel/", {"skip": "1"})
    flow = CancellationFlow.objects.get()
    client.post(f"/billing/cancel/{flow.pk}/confirm/")
    assert customer.refresh().is_canceling
    assert flow.started_by_id == admin.pk


def test_a_failing_confirmation_email_does_not_undo_the_cancellation(owner_client, customer, frozen, monkeypatch):
    from django.core.mail import EmailMultiAlternatives

    def broken(self, *args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken)
    frozen.set(NOW)
    flow = start_flow(owner_client, Reason.OTHER)
    # The email is a task queued after the commit: whatever becomes of it, the cancellation stands.
    response = owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    assert response["Location"] == f"/billing/cancel/{flow.pk}/canceled/"
    assert customer.refresh().is_canceling
    assert not EmailSent.objects.exists()  # recorded only when sent, so it can be sent again
