"""Bad input gets a clear 4xx or a redirect to the right step, and changes nothing."""

from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import Membership
from retention.models import CancellationFlow, OfferKind, Reason, RetentionOffer, SessionRequest
from subscriptions import lifecycle
from subscriptions.models import EmailSent
from subscriptions.tests.factories import PASSWORD, UserFactory

from .conftest import T0, add_member, make_customer, snapshot

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=10)
POST_URLS = ["offer/accept/", "keep/", "confirm/"]
GET_URLS = ["offer/", "before-you-go/", "canceled/", "kept/"]


@pytest.fixture
def flow(owner_client, customer, frozen) -> CancellationFlow:
    """An open flow for "too expensive" that shows the 30 % discount."""
    frozen.set(NOW)
    owner_client.post("/billing/cancel/", {"reason": Reason.TOO_EXPENSIVE})
    return CancellationFlow.objects.get()


def state(customer, flow) -> tuple:
    row = CancellationFlow.objects.filter(pk=flow.pk).values().get()
    return snapshot(customer.subscription), row, EmailSent.objects.count(), SessionRequest.objects.count()


# --- Jumping ahead ---------------------------------------------------------------------------------
def test_the_end_pages_of_an_open_flow_redirect_to_its_current_step(owner_client, flow):
    for page in ("canceled/", "kept/"):
        response = owner_client.get(f"/billing/cancel/{flow.pk}/{page}")
        assert response["Location"] == f"/billing/cancel/{flow.pk}/offer/"


def test_the_offer_page_of_a_flow_without_offer_redirects_to_before_you_go(owner_client, customer, frozen):
    frozen.set(NOW)
    owner_client.post("/billing/cancel/", {"skip": "1"})
    flow = CancellationFlow.objects.get()
    assert (
        owner_client.get(f"/billing/cancel/{flow.pk}/offer/")["Location"] == f"/billing/cancel/{flow.pk}/before-you-go/"
    )
    assert (
        owner_client.get(f"/billing/cancel/{flow.pk}/canceled/")["Location"]
        == f"/billing/cancel/{flow.pk}/before-you-go/"
    )


def test_a_flow_id_that_does_not_exist_is_a_404(owner_client, flow):
    for url in GET_URLS:
        assert owner_client.get(f"/billing/cancel/{flow.pk + 100}/{url}").status_code == 404


# --- Reusing a finished flow -------------------------------------------------------------------------
def test_a_canceled_flow_cannot_be_reused_to_accept_keep_or_confirm_again(owner_client, customer, flow):
    owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    before = state(customer, flow)
    for url in POST_URLS:
        response = owner_client.post(f"/billing/cancel/{flow.pk}/{url}", {"offer": flow.offer_id})
        assert response["Location"] == f"/billing/cancel/{flow.pk}/canceled/", url
    for url in ("offer/", "before-you-go/", "kept/"):
        assert (
            owner_client.get(f"/billing/cancel/{flow.pk}/{url}")["Location"] == f"/billing/cancel/{flow.pk}/canceled/"
        )
    assert state(customer, flow) == before


def test_a_saved_flow_cannot_be_reused_to_cancel(owner_client, customer, flow):
    owner_client.post(f"/billing/cancel/{flow.pk}/keep/")
    before = state(customer, flow)
    response = owner_client.post(f"/billing/cancel/{flow.pk}/confirm/", follow=True)
    assert response.redirect_chain == [(f"/billing/cancel/{flow.pk}/kept/", 302)]
    assert "This cancellation is already finished." in response.content.decode()
    assert owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id}).status_code == 302
    assert state(customer, flow) == before
    assert not customer.refresh().is_canceling


def test_a_flow_open_for_more_than_a_day_has_expired_and_changes_nothing(owner_client, customer, flow, frozen):
    frozen.set(NOW + timedelta(days=1, seconds=1))
    before = state(customer, flow)
    for url in POST_URLS:
        response = owner_client.post(f"/billing/cancel/{flow.pk}/{url}", {"offer": flow.offer_id}, follow=True)
        assert response.redirect_chain == [("/billing/cancel/", 302)]
        assert "That cancellation expired." in response.content.decode()
    assert state(customer, flow) == before
    # Starting again abandons the stale attempt and opens a new one.
    owner_client.post("/billing/cancel/", {"reason": Reason.OTHER})
    assert list(CancellationFlow.objects.order_by("pk").values_list("outcome", flat=True)) == ["abandoned", "open"]


def test_a_double_click_on_confirm_schedules_once(owner_client, customer, flow, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the email is queued after the commit
        owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
        owner_client.post(f"/billing/cancel/{flow.pk}/confirm/")
    sub = customer.refresh()
    assert sub.events.filter(kind="cancel_scheduled").count() == 1
    assert EmailSent.objects.filter(kind="cancellation-scheduled").count() == 1


# --- Offers that were not shown ------------------------------------------------------------------------
def test_accepting_an_offer_that_was_not_shown_is_a_400_and_changes_nothing(owner_client, customer, flow):
    other = RetentionOffer.objects.get(reason=Reason.TEMPORARY)  # the 3-month pause
    before = state(customer, flow)
    for tampered in ({"offer": other.pk}, {"offer": "abc"}, {}):
        response = owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", tampered)
        assert response.status_code == 400
        assert "This offer was not made to you" in response.content.decode()
    assert state(customer, flow) == before


def test_accepting_when_the_customer_skipped_the_offers_is_a_400(owner_client, customer, frozen):
    frozen.set(NOW)
    owner_client.post("/billing/cancel/", {"reason": Reason.TOO_EXPENSIVE, "skip": "1"})
    flow = CancellationFlow.objects.get()
    assert (flow.reason, flow.offer_kind) == (Reason.TOO_EXPENSIVE, "")
    discount = RetentionOffer.objects.get(reason=Reason.TOO_EXPENSIVE)
    before = state(customer, flow)
    assert owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": discount.pk}).status_code == 400
    assert state(customer, flow) == before


def test_the_terms_applied_are_the_ones_shown_even_if_an_operator_edits_the_offer(owner_client, customer, flow):
    RetentionOffer.objects.filter(pk=flow.offer_id).update(discount_percent=90, discount_periods=12)
    owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id})
    sub = customer.refresh()
    assert (sub.discount_percent, sub.discount_periods_left) == (30, 3)


def test_an_offer_refused_by_the_rules_leaves_the_flow_open_with_the_reason(owner_client, customer, flow):
    # Meanwhile, an operator paused the subscription: a discount needs a running one.
    from subscriptions import services as subscription_services

    subscription_services.subscription_pause(
        subscription=customer.subscription, actor=UserFactory(is_staff=True), months=1, now=NOW
    )
    before = state(customer, flow)
    response = owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id}, follow=True)
    assert response.redirect_chain[0] == (f"/billing/cancel/{flow.pk}/offer/", 302)
    assert state(customer, flow) == before
    flow.refresh_from_db()
    assert flow.outcome == "open"


def test_a_session_request_with_a_past_time_is_refused_with_the_form_shown_again(owner_client, customer, frozen):
    frozen.set(NOW)
    owner_client.post("/billing/cancel/", {"reason": Reason.TECHNICAL})
    flow = CancellationFlow.objects.get()
    assert flow.offer_kind == OfferKind.SESSION
    before = state(customer, flow)
    for data in ({"proposed_1": "2026-04-02T10:00"}, {"proposed_1": ""}, {"proposed_1": "2027-01-01T10:00"}):
        response = owner_client.post(f"/billing/cancel/{flow.pk}/offer/accept/", {"offer": flow.offer_id, **data})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert state(customer, flow) == before


# --- Other accounts, roles, methods, CSRF ---------------------------------------------------------------
def test_another_accounts_flow_is_a_404_on_every_url(client, customer, flow, catalog):
    stranger = make_customer(catalog["pro"][lifecycle.MONTHLY], name="Other Co", now=T0)
    client.login(username=stranger.owner.email, password=PASSWORD)
    before = state(customer, flow)
    for url in GET_URLS:
        assert client.get(f"/billing/cancel/{flow.pk}/{url}").status_code == 404, url
    for url in POST_URLS:
        assert client.post(f"/billing/cancel/{flow.pk}/{url}", {"offer": flow.offer_id}).status_code == 404, url
    assert state(customer, flow) == before
    assert stranger.refresh().cancel_at is None


def test_a_member_is_told_who_can_cancel_and_every_post_is_a_403(client, customer, flow):
    admin = add_member(customer.account, Membership.BILLING_ADMIN, name="Bea Billing", email="bea@example.com")
    member = add_member(customer.account, Membership.MEMBER, name="Max Member")
    client.login(username=member.email, password=PASSWORD)
    page = client.get("/billing/cancel/")
    assert page.status_code == 403
    html = page.content.decode()
    assert "Only owners and billing admins can cancel" in html
    assert "Bea Billing" in html and admin.email in html and customer.owner.email in html
    assert "Max Member" not in html
    before = state(customer, flow)
    assert client.post("/billing/cancel/", {"reason": Reason.OTHER}).status_code == 403
    assert client.post("/billing/cancel/undo/").status_code == 403
    for url in POST_URLS:
        assert client.post(f"/billing/cancel/{flow.pk}/{url}", {"offer": flow.offer_id}).status_code == 403, url
    for url in GET_URLS:
        assert client.get(f"/billing/cancel/{flow.pk}/{url}").status_code == 403, url
    assert state(customer, flow) == before


def test_a_get_on_an_action_is_a_405(owner_client, flow):
    for url in POST_URLS:
        assert owner_client.get(f"/billing/cancel/{flow.pk}/{url}").status_code == 405
    assert owner_client.get("/billing/cancel/undo/").status_code == 405


def test_a_post_without_csrf_token_is_a_403_and_changes_nothing(customer, flow):
    client = Client(enforce_csrf_checks=True)
    client.login(username=customer.owner.email, password=PASSWORD)
    before = state(customer, flow)
    assert client.post(f"/billing/cancel/{flow.pk}/confirm/").status_code == 403
    assert client.post("/billing/cancel/", {"reason": Reason.OTHER}).status_code == 403
    assert state(customer, flow) == before


def test_anonymous_visitors_go_to_the_login_page(client, db):
    response = client.get("/billing/cancel/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_staff_without_an_account_cannot_use_the_flow(client, flow):
    staff = UserFactory(is_staff=True)
    client.login(username=staff.email, password=PASSWORD)
    assert client.get("/billing/cancel/").status_code == 403
    assert client.get(f"/billing/cancel/{flow.pk}/offer/").status_code == 403


def test_the_reason_is_required_unless_the_customer_skips(owner_client, customer, frozen):
    frozen.set(NOW)
    response = owner_client.post("/billing/cancel/", {"reason_text": "no"})
    assert response.status_code == 200
    assert "Choose a reason, or skip this question." in response.content.decode()
    response = owner_client.post("/billing/cancel/", {"reason": "bored"})
    assert response.status_code == 200
    assert not CancellationFlow.objects.exists()


def test_undo_without_a_scheduled_cancellation_says_so_and_changes_nothing(owner_client, customer, frozen):
    frozen.set(NOW)
    before = snapshot(customer.subscription)
    response = owner_client.post("/billing/cancel/undo/", follow=True)
    assert "There is no cancellation to undo." in response.content.decode()
    assert snapshot(customer.subscription) == before


def test_nothing_to_cancel_without_a_live_subscription(client, catalog, stripe_fake, frozen):
    nobody = make_customer(None, card=False, name="Empty Co")
    client.login(username=nobody.owner.email, password=PASSWORD)
    page = client.get("/billing/cancel/")
    assert page.status_code == 200
    assert "There is no subscription to cancel" in page.content.decode()
    response = client.post("/billing/cancel/", {"reason": Reason.OTHER})
    assert response.status_code == 302
    assert not CancellationFlow.objects.exists()


def test_a_subscription_already_set_to_end_without_a_flow_shows_its_end_and_undo(owner_client, customer, frozen):
    from subscriptions import services as subscription_services

    subscription_services.subscription_schedule_cancel(subscription=customer.subscription, actor=customer.owner, now=T0)
    frozen.set(NOW)
    page = owner_client.get("/billing/cancel/").content.decode()
    assert "Your subscription is already canceled" in page
    assert "Business stays active until May 1, 2026" in page
    assert 'id="undo-cancel"' in page
    assert not CancellationFlow.objects.exists()
