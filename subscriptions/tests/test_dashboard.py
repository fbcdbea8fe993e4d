"""The revenue dashboard on a known history, computed by hand (see docs/rules.md for the definitions)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from retention.models import CancellationFlow
from subscriptions import dashboard, lifecycle, services
from subscriptions.dashboard import monthly_minor
from subscriptions.models import Price, Subscription, SubscriptionEvent

from .admin_support import OPERATOR, SUPPORT, staff_in
from .factories import DECLINING_CARD, PlanFactory, PriceFactory, give_card, give_card_number, owner_with_account

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)


def test_monthly_share_of_a_price_rounds_annual_prices_half_up():
    assert monthly_minor(1900, lifecycle.MONTHLY) == 1900
    assert monthly_minor(1700, lifecycle.ANNUAL_COMMITMENT_MONTHLY) == 1700  # billed monthly
    assert monthly_minor(49002, lifecycle.ANNUAL) == 4084  # 4083.5 rounds up
    assert monthly_minor(49001, lifecycle.ANNUAL) == 4083  # 4083.42
    assert monthly_minor(0, lifecycle.ANNUAL) == 0


@pytest.fixture
def history(stripe_fake, settings):
    """Thirteen accounts whose subscriptions did everything the dashboard counts, January to June 2026.

    MRR now, by hand: A 19.00 + B 490.02/12 = 40.835 → 40.84 + C 17.00 (commitment, billed monthly)
    + G 49.00 + H 19.00 (past due counts) + J 19.00 + K 49.00 + M 19.00 = 231.84. Not counted:
    D and I (ended), E (trial), F (paused), L (trial expired).
    """
    settings.BILLING_DUNNING_RETRY_DAYS = [1, 3, 5, 7]
    settings.BILLING_DUNNING_FINAL_ACTION = "cancel"
    operator = staff_in(OPERATOR)
    pro = PlanFactory(code="pro", name="Pro", rank=1)
    team = PlanFactory(code="team", name="Team", rank=2, trial_days=14)
    business = PlanFactory(code="business", name="Business", rank=3)
    pro_monthly = PriceFactory(plan=pro, amount_minor=1900)
    pro_commitment = PriceFactory(plan=pro, cycle=lifecycle.ANNUAL_COMMITMENT_MONTHLY, amount_minor=1700)
    team_monthly = PriceFactory(plan=team, amount_minor=4900)
    business_monthly = PriceFactory(plan=business, amount_minor=4900)
    business_annual = PriceFactory(plan=business, cycle=lifecycle.ANNUAL, amount_minor=49002)

    def start(price, when, card=True):
        owner, account = owner_with_account()
        if card:
            give_card(account)
        return owner, services.subscription_start(account=account, price=price, actor=owner, now=when)

    def renew_failing(sub, when):
        give_card_number(sub.account, DECLINING_CARD)
        services.subscription_process_due(subscription_id=sub.pk, now=when)

    _, d = start(pro_monthly, at(1, 15))
    m_owner, m = start(pro_monthly, at(1, 5))
    _, c = start(pro_commitment, at(2, 1))
    _, j = start(pro_monthly, at(2, 10))
    services.subscription_cancel_now(subscription=m, actor=operator, now=at(2, 10))
    renew_failing(j, at(3, 10))
    give_card(j.account)
    services.subscription_retry_now(subscription=j, actor="job", now=at(3, 11))
    f_owner, f = start(pro_monthly, at(3, 1))
    _, i = start(pro_monthly, at(3, 5))
    _, a = start(pro_monthly, at(3, 10))
    g_owner, g = start(pro_monthly, at(4, 1))
    b_owner, b = start(business_annual, at(4, 5))
    renew_failing(i, at(4, 5))
    for day in (6, 8, 10, 12):  # dunning retries 1, 3, 5, 7 days after the failure; the last gives up
        services.subscription_process_due(subscription_id=i.pk, now=at(4, day))
    services.subscription_start(account=m.account, price=pro_monthly, actor=m_owner, now=at(4, 10))
    _, h = start(pro_monthly, at(4, 20))
    _, k = start(team_monthly, at(5, 1))
    _, ell = start(team_monthly, at(5, 3), card=False)
    services.subscription_change(subscription=g, price=business_monthly, actor=g_owner, now=at(5, 10))
    services.subscription_process_due(subscription_id=k.pk, now=at(5, 15))
    services.subscription_process_due(subscription_id=ell.pk, now=at(5, 17))
    services.subscription_cancel_now(subscription=d, actor=operator, now=at(5, 20))
    renew_failing(h, at(5, 20))
    _, e = start(team_monthly, at(6, 1), card=False)
    services.subscription_pause(subscription=f, actor=f_owner, months=1, now=at(6, 2))
    services.subscription_schedule_cancel(subscription=b, actor=b_owner, now=at(6, 10))

    named = {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "i": i, "j": j, "k": k, "l": ell}
    statuses = {name: Subscription.objects.get(pk=sub.pk).status for name, sub in named.items()}
    assert statuses == {
        "a": "active",
        "b": "active",  # canceling
        "c": "active",
        "d": "canceled",
        "e": "trialing",
        "f": "paused",
        "g": "active",
        "h": "past_due",
        "i": "canceled",
        "j": "active",
        "k": "active",
        "l": "canceled",
    }


MRR_NOW = 1900 + 4084 + 1700 + 4900 + 1900 + 1900 + 4900 + 1900  # 23184, as in the docstring above


def test_mrr_and_its_movement_month_by_month(history, django_assert_max_num_queries):
    # Each subscription's state before the months shown, their events, the accounts that paid
    # before them, the plans' table, the retention app's save rate.
    with django_assert_max_num_queries(5):
        figures = dashboard.revenue_dashboard(now=NOW)
    assert figures.currency == "eur"
    assert figures.mrr_minor == MRR_NOW == dashboard.mrr_minor(currency="eur")
    months = {month.start.strftime("%Y-%m"): month for month in figures.months}
    assert list(months)[0] == "2025-07" and list(months)[-1] == "2026-06"
    assert all(month.mrr_end_minor == 0 for key, month in months.items() if key < "2026-01")

    def movement(key):
        month = months[key]
        return (
            month.mrr_start_minor,
            month.new_minor,
            month.expansion_minor,
            month.reactivation_minor,
            month.contraction_minor,
            month.churn_minor,
            month.mrr_end_minor,
        )

    # start, new, expansion, reactivation, contraction, churn, end
    assert movement("2026-01") == (0, 3800, 0, 0, 0, 0, 3800)  # D, M
    assert movement("2026-02") == (3800, 3600, 0, 0, 0, 1900, 5500)  # C, J new; M canceled
    assert movement("2026-03") == (5500, 5700, 0, 0, 0, 0, 11200)  # F, I, A
    assert movement("2026-04") == (11200, 7884, 0, 1900, 0, 1900, 19084)  # G, B, H; M back; I lost
    assert movement("2026-05") == (19084, 4900, 3000, 0, 0, 1900, 25084)  # K; G upgraded; D canceled
    assert movement("2026-06") == (25084, 0, 0, 0, 0, 1900, MRR_NOW)  # F paused
    for month in figures.months:
        gains = month.new_minor + month.expansion_minor + month.reactivation_minor
        assert month.mrr_start_minor + gains - month.contraction_minor - month.churn_minor == month.mrr_end_minor

    april, may = months["2026-04"], months["2026-05"]
    assert (april.involuntary_churned, april.involuntary_churn_minor, april.paying_at_start) == (1, 1900, 6)
    assert april.involuntary_churn_percent == Decimal("16.7")
    assert (months["2026-03"].dunning_recovered, april.dunning_lost) == (1, 1)
    assert (may.trials_ended, may.trials_converted, may.trial_conversion_percent) == (2, 1, Decimal("50.0"))

    recent = figures.recent  # since 17 March: J's recovery on 11 March is older
    assert (recent.trials_ended, recent.trials_converted) == (2, 1)
    assert (recent.dunning_recovered, recent.dunning_lost, recent.dunning_recovery_percent) == (0, 1, Decimal("0.0"))
    assert (recent.involuntary_churned, recent.involuntary_churn_minor) == (1, 1900)
    assert (figures.save_rate.available, figures.save_rate.total) == (True, 0)  # no cancellation flows yet


def test_live_subscriptions_by_plan_and_status(history):
    figures = dashboard.revenue_dashboard(now=NOW)
    table = {row.plan: {badge: count for badge, count in row.counts.items() if count} for row in figures.plans}
    assert table == {
        "Pro": {"active": 4, "paused": 1, "past_due": 1},
        "Team": {"active": 1, "trialing": 1},
        "Business": {"active": 1, "canceling": 1},
    }
    assert figures.status_totals == [1, 6, 1, 1, 1]  # trialing, active, canceling, past due, paused


def test_the_dashboard_page_draws_its_charts_as_inline_svg(client, history, django_assert_max_num_queries):
    client.force_login(staff_in(SUPPORT))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("billing_admin:dashboard"))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('<svg class="billing-chart') == 3
    assert "<script" not in page.split('id="content"')[1]  # no JavaScript library
    assert "€231.84" in page  # MRR now
    assert "16.7" in page  # April's involuntary churn rate


def test_the_save_rate_counts_saves_that_held_among_settled_cancellation_flows(db):
    owner, account = owner_with_account()
    subscription = services.subscription_start(
        account=account, price=PriceFactory(amount_minor=0), actor=owner, now=NOW - timedelta(days=60)
    )
    outcomes = [(CancellationFlow.SAVED, True)] * 3 + [(CancellationFlow.CANCELED, None), (CancellationFlow.OPEN, None)]
    for outcome, held in outcomes:
        CancellationFlow.objects.create(
            account=account,
            subscription=subscription,
            started_by=owner,
            reason="other",
            started_at=NOW - timedelta(days=10),
            outcome=outcome,
            save_held=held,
        )
    save_rate = dashboard.revenue_dashboard(now=NOW).save_rate
    assert (save_rate.available, save_rate.saved, save_rate.total, save_rate.percent) == (True, 3, 4, Decimal("75.0"))


def test_an_empty_dashboard_shows_zeros_not_errors(client, db):
    client.force_login(staff_in(SUPPORT))
    response = client.get(reverse("billing_admin:dashboard"))
    assert response.status_code == 200
    assert "No live subscriptions yet." in response.content.decode()


def test_history_before_the_months_shown_is_read_as_each_subscriptions_state(history, django_assert_max_num_queries):
    """Years of history are not replayed event by event, and the figures are those of replaying all of it."""
    operator = staff_in(OPERATOR)
    pro_monthly = Price.objects.get(plan__code="pro", cycle=lifecycle.MONTHLY)
    business_monthly = Price.objects.get(plan__code="business", cycle=lifecycle.MONTHLY)
    team_monthly = Price.objects.get(plan__code="team", cycle=lifecycle.MONTHLY)
    long_ago = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)  # the months shown begin on 1 July 2025

    def start(price, when, card=True):
        owner, account = owner_with_account()
        if card:
            give_card(account)
        return owner, services.subscription_start(account=account, price=price, actor=owner, now=when)

    p_owner, p = start(pro_monthly, long_ago)  # paying all along, upgraded before the months shown
    services.subscription_change(subscription=p, price=business_monthly, actor=p_owner, now=long_ago + timedelta(60))
    q_owner, q = start(pro_monthly, long_ago + timedelta(20))  # paid, left, and came back: a reactivation
    services.subscription_cancel_now(subscription=q, actor=operator, now=long_ago + timedelta(80))
    services.subscription_start(account=q.account, price=pro_monthly, actor=q_owner, now=at(3, 20))
    r_owner, r = start(team_monthly, long_ago + timedelta(100), card=False)  # a trial that never paid...
    services.subscription_process_due(subscription_id=r.pk, now=long_ago + timedelta(115))
    give_card(r.account)
    services.subscription_start(account=r.account, price=pro_monthly, actor=r_owner, now=at(4, 25))  # ...new

    with django_assert_max_num_queries(5):
        figures = dashboard.revenue_dashboard(now=NOW)

    since = dashboard.month_starts(NOW)[0]
    assert len(dashboard._state_at(since)) == 3  # one row for each subscription older than the months shown
    everything = list(
        SubscriptionEvent.objects.filter(created_at__lte=NOW)
        .order_by("created_at", "id")
        .values_list(*dashboard.EVENT_FIELDS)
    )
    assert sum(1 for row in everything if row[5] < since) > 3
    replayed = dashboard._replay(
        everything, dashboard.month_starts(NOW), NOW, "eur", paid_before=lambda accounts: set()
    )
    assert (figures.months, figures.recent) == replayed
    months = {month.start.strftime("%Y-%m"): month for month in figures.months}
    assert months["2025-07"].mrr_start_minor == 4900  # P, on Business since March 2025
    assert months["2026-03"].reactivation_minor == 1900  # Q, who paid in 2025, came back
    assert months["2026-04"].new_minor == 7884 + 1900  # G, B, H as before, and R: its trial never paid
    assert figures.mrr_minor == MRR_NOW + 4900 + 1900 + 1900 == dashboard.mrr_minor(currency="eur")
