"""Admin: the figures on a known data set, CSV export, offers and session requests."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from retention import selectors
from retention.models import CancellationFlow, OfferKind, Reason, RetentionOffer, SessionRequest

from .conftest import T0

pytestmark = pytest.mark.django_db

REPORT = "/admin/retention/cancellationflow/report/"
APRIL = "?start=2026-04-01&end=2026-04-30"


def at(day: int, month: int = 4) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def known_flows(customer):
    """Eleven flows: nine started in April 2026, one in March, one at May 1 00:00 (outside April)."""
    offers = {offer.reason: offer for offer in RetentionOffer.objects.all()}

    def flow(started, reason, outcome, *, accepted=False, held=None, text="", undone=False, offer=True):
        shown = offers[reason] if reason and offer else None
        return CancellationFlow.objects.create(
            account=customer.account,
            subscription=customer.subscription,
            started_by=customer.owner,
            started_at=started,
            reason=reason,
            reason_text=text,
            offer=shown,
            offer_kind=shown.kind if shown else "",
            offer_terms=shown.terms if shown else {},
            offer_accepted_at=started if accepted else None,
            outcome=outcome,
            finished_at=None if outcome == "open" else started,
            undone_at=started + timedelta(days=1) if undone else None,
            save_held=held,
        )

    return [
        flow(at(2), Reason.TOO_EXPENSIVE, "saved", accepted=True, held=True, text="Too pricey for us"),
        flow(at(3), Reason.TOO_EXPENSIVE, "canceled"),
        flow(at(5), Reason.TEMPORARY, "saved", accepted=True, held=False),
        flow(at(6), Reason.NOT_USING, "saved", accepted=True),
        flow(at(7), Reason.OTHER, "saved", held=True, text="=cmd|' /C calc'!A0"),
        flow(at(8), "", "canceled"),
        flow(at(9), Reason.TECHNICAL, "abandoned"),
        flow(at(10), Reason.OTHER, "open"),
        flow(at(11), Reason.SWITCHING, "saved", held=True, undone=True),
        flow(at(20, month=3), Reason.TOO_EXPENSIVE, "canceled"),
        flow(datetime(2026, 5, 1, tzinfo=UTC), Reason.OTHER, "canceled"),
    ]


def april_figures(**filters):
    return selectors.flow_figures(start=at(1).replace(hour=0), end=datetime(2026, 5, 1, tzinfo=UTC), **filters)


def test_the_figures_of_a_period_on_known_data(known_flows, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        figures = april_figures()
    assert (figures.started, figures.open, figures.canceled, figures.abandoned) == (9, 1, 2, 1)
    assert (figures.saves_held, figures.saves_lost, figures.saves_pending) == (3, 1, 1)
    assert figures.settled == 7
    assert figures.save_rate == 42.9  # 3 held of 7 settled
    rows = [(r.label, r.shown, r.accepted, r.held, r.lost, r.pending) for r in figures.by_offer]
    assert rows == [
        ("Discount on the next invoices", 3, 1, 1, 0, 0),
        ("Pause", 1, 1, 0, 1, 0),
        ("Cheaper plan", 1, 1, 0, 0, 1),
        ("Free 1:1 session with the success team", 3, 0, 0, 0, 0),
        ("Kept without an offer", None, 0, 1, 0, 0),
        ("Undid the cancellation", None, 0, 1, 0, 0),
    ]
    assert [(r.reason, r.started, r.canceled, r.saved_held) for r in figures.by_reason] == [
        ("too_expensive", 2, 1, 1),
        ("none", 1, 1, 0),
        ("other", 2, 0, 1),
        ("not_using_enough", 1, 0, 0),
        ("switching_product", 1, 0, 1),
        ("technical_problems", 1, 0, 0),
        ("temporary_need", 1, 0, 0),
    ]
    assert [flow.reason_text for flow in figures.answers] == ["=cmd|' /C calc'!A0", "Too pricey for us"]


def test_the_figures_filter_by_reason_and_offer(known_flows):
    assert april_figures(reason=Reason.TOO_EXPENSIVE).started == 2
    assert april_figures(reason="none").started == 1
    assert april_figures(offer_kind=OfferKind.SESSION).started == 3
    assert april_figures(offer_kind="none").started == 1
    empty = april_figures(reason=Reason.MISSING_FEATURES)
    assert (empty.started, empty.save_rate) == (0, None)


def test_the_report_page_shows_the_figures_for_the_chosen_period(admin_client, known_flows):
    page = admin_client.get(REPORT + APRIL)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<div class="figure" id="figure-started"><strong>9</strong>' in html
    assert '<div class="figure" id="figure-save-rate"><strong>42.9 %</strong>' in html
    assert "Too pricey for us" in html
    assert "=cmd|&#x27; /C calc&#x27;!A0" in html  # escaped, never run
    assert "Free 1:1 session with the success team" in html
    assert 'href="?start=2026-04-01&amp;end=2026-04-30&amp;reason=&amp;offer_kind=&amp;format=csv"' in html


def test_the_report_defaults_to_the_last_30_days(admin_client, known_flows, frozen):
    frozen.set(at(30))
    page = admin_client.get(REPORT)
    assert page.context["form"].cleaned_data["start"].isoformat() == "2026-04-01"
    assert page.context["figures"].started == 9


def test_a_bad_period_shows_the_form_error_and_no_figures(admin_client, known_flows):
    page = admin_client.get(REPORT + "?start=2026-04-30&end=2026-04-01")
    assert page.status_code == 200
    assert page.context["figures"] is None
    assert "The end date is before the start date." in page.content.decode()


def test_the_flows_of_the_period_export_as_csv(admin_client, known_flows):
    response = admin_client.get(REPORT + APRIL + "&reason=too_expensive&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="cancellation-flows-2026-04-01-2026-04-30.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["reason"], row["outcome"], row["offer_kind"], row["save_held"]) for row in rows] == [
        ("too_expensive", "saved", "discount", "yes"),
        ("too_expensive", "canceled", "discount", ""),
    ]
    assert rows[0]["offer_terms"] == "30% off the next 3 invoices"
    assert rows[0]["started_at"] == "2026-04-02T12:00:00+00:00"
    assert rows[0]["plan"] == "Business"
    assert rows[0]["reason_text"] == "Too pricey for us"


def test_free_text_cannot_become_a_spreadsheet_formula(admin_client, known_flows):
    response = admin_client.get(REPORT + APRIL + "&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 9
    assert "'=cmd|' /C calc'!A0" in [row["reason_text"] for row in rows]
    assert [row["save_held"] for row in rows if row["offer_kind"] == "cheaper_plan"] == ["pending"]


def test_selected_flows_export_as_csv_from_the_list(admin_client, known_flows):
    chosen = known_flows[:2]
    response = admin_client.post(
        "/admin/retention/cancellationflow/",
        {"action": "export_csv", "_selected_action": [flow.pk for flow in chosen]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["id"]) for row in rows] == [flow.pk for flow in chosen]


def test_the_flow_list_links_to_the_report_and_filters(admin_client, known_flows):
    page = admin_client.get("/admin/retention/cancellationflow/?outcome__exact=saved")
    assert page.status_code == 200
    assert REPORT in page.content.decode()
    assert page.context["cl"].result_count == 5
    detail = admin_client.get(f"/admin/retention/cancellationflow/{known_flows[0].pk}/change/")
    assert detail.status_code == 200 and "Too pricey for us" in detail.content.decode()


def test_only_staff_reach_the_report(client, known_flows):
    from subscriptions.tests.factories import PASSWORD

    client.login(username=known_flows[0].started_by.email, password=PASSWORD)
    response = client.get(REPORT + APRIL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_operators_configure_offers_with_validated_terms(admin_client, db):
    add = "/admin/retention/retentionoffer/add/"
    base = {"reason": Reason.OTHER, "is_active": "on", "order": "5"}
    response = admin_client.post(
        add, {**base, "kind": OfferKind.DISCOUNT, "discount_percent": "0", "discount_periods": "3"}
    )
    assert response.status_code == 200
    assert "A discount is between 1 and 100 percent." in response.content.decode()
    response = admin_client.post(add, {**base, "kind": OfferKind.PAUSE, "pause_months": "6"})
    assert "A pause lasts 1, 2 or 3 months." in response.content.decode()
    assert RetentionOffer.objects.count() == 7
    response = admin_client.post(
        add, {**base, "kind": OfferKind.DISCOUNT, "discount_percent": "20", "discount_periods": "2"}
    )
    assert response.status_code == 302
    offer = RetentionOffer.objects.get(order=5)
    assert str(offer) == "Another reason: 20% off the next 2 invoices"
    assert "20% off the next 2 invoices" in admin_client.get("/admin/retention/retentionoffer/").content.decode()


def test_an_offer_that_was_shown_cannot_be_deleted_only_switched_off(admin_client, known_flows):
    shown = known_flows[0].offer
    assert admin_client.post(f"/admin/retention/retentionoffer/{shown.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RetentionOffer.objects.filter(pk=shown.pk).exists()


def test_operators_see_session_requests_and_mark_them_done(admin_client, known_flows, customer):
    request = SessionRequest.objects.create(
        account=customer.account,
        flow=known_flows[4],
        requested_by=customer.owner,
        contact_email=customer.owner.email,
        proposed_times=["2026-04-14T08:00:00+00:00"],
        note="Roadmap please",
        created_at=T0,
    )
    page = admin_client.get("/admin/retention/sessionrequest/")
    assert "2026-04-14 08:00 UTC" in page.content.decode()
    admin_client.post("/admin/retention/sessionrequest/", {"action": "mark_done", "_selected_action": [request.pk]})
    request.refresh_from_db()
    assert request.status == SessionRequest.DONE
    assert admin_client.get(f"/admin/retention/sessionrequest/{request.pk}/change/").status_code == 200
