"""Reads for the cancellation flow and the retention figures, in a bounded number of queries."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Membership, User
from billing_portal.lib.money import percent_of
from subscriptions import lifecycle
from subscriptions import selectors as subscription_selectors
from subscriptions import services as subscription_services
from subscriptions.models import Invoice, Price, Subscription, SubscriptionEvent

from . import rules
from .models import CancellationFlow, OfferKind, Reason, RetentionOffer

RUNNING = (lifecycle.TRIALING, lifecycle.ACTIVE)


# --- Who, which subscription, which flow ----------------------------------------------------------
def account_billing_managers(*, account: Account) -> list[User]:
    """The owners and billing admins: the people a member must ask to cancel."""
    memberships = (
        Membership.objects.filter(account=account, role__in=Membership.BILLING_ROLES)
        .select_related("user")
        .order_by("role", "user__name", "user__email")
    )
    return [membership.user for membership in memberships]


def subscription_for_cancellation(*, account: Account) -> Subscription | None:
    """The live subscription a flow is about (None when there is nothing to cancel)."""
    return subscription_selectors.subscription_live_for_account(account=account)


def flow_get_for_account_or_404(*, account: Account, pk: int) -> CancellationFlow:
    """A flow of this account only: another account's flow id is a 404."""
    return get_object_or_404(
        CancellationFlow.objects.select_related(
            "account", "subscription__price__plan", "subscription__account", "subscription__scheduled_price__plan"
        ),
        account=account,
        pk=pk,
    )


def flow_open_for_subscription(*, subscription: Subscription, now: datetime) -> CancellationFlow | None:
    """The attempt in progress, if one was started less than a day ago."""
    flow = CancellationFlow.objects.filter(subscription=subscription, outcome=CancellationFlow.OPEN).first()
    if flow is None or rules.flow_expired(flow.started_at, now):
        return None
    return flow


def flow_confirmed_for_subscription(*, subscription: Subscription) -> CancellationFlow | None:
    """The flow that set the subscription's current cancellation date, if a flow did."""
    if subscription.cancel_at is None:
        return None
    return (
        CancellationFlow.objects.filter(
            subscription=subscription, outcome=CancellationFlow.CANCELED, cancel_at=subscription.cancel_at
        )
        .order_by("-finished_at")
        .first()
    )


# --- Which offer applies ----------------------------------------------------------------------------
def discount_used_recently(*, account: Account, now: datetime) -> bool:
    """Whether any of the account's subscriptions got a discount in the last 12 months."""
    return SubscriptionEvent.objects.filter(
        subscription__account=account,
        kind="discount_applied",
        created_at__gt=now - rules.DISCOUNT_AGAIN_AFTER,
    ).exists()


def _cheaper(price: Price, subscription: Subscription) -> bool:
    """Cheaper per month than what the subscription costs (cycles compared per month)."""
    current_months = lifecycle.CYCLE_MONTHS[subscription.price.cycle]
    months = lifecycle.CYCLE_MONTHS[price.cycle]
    return price.amount_minor * current_months < subscription.amount_minor * months


def cheaper_price_for(*, subscription: Subscription, target: Price | None = None) -> Price | None:
    """The price a cheaper-plan offer proposes: the operator's target, or the next cheaper paid one."""
    if subscription.status not in RUNNING:
        return None
    if target is not None:
        usable = (
            target.is_active
            and target.plan.is_active
            and target.currency == subscription.currency
            and target.pk != subscription.price_id
            and _cheaper(target, subscription)
        )
        return target if usable else None
    return (
        Price.objects.available()
        .select_related("plan")
        .filter(
            cycle=subscription.price.cycle,
            currency=subscription.currency,
            amount_minor__gt=0,
            amount_minor__lt=subscription.amount_minor,
        )
        .exclude(pk=subscription.price_id)
        .order_by("-amount_minor", "-plan__rank", "pk")
        .first()
    )


def offer_applies(*, offer: RetentionOffer, subscription: Subscription, now: datetime) -> bool:
    """Whether this customer can take the offer now (pause on monthly only, one discount a year...)."""
    price = subscription.price
    if offer.kind == OfferKind.DISCOUNT:
        return (
            subscription.status in RUNNING
            and not price.is_free
            and not (subscription.discount_percent and subscription.discount_periods_left)
            and not discount_used_recently(account=subscription.account, now=now)
        )
    if offer.kind == OfferKind.PAUSE:
        return (
            subscription.status == lifecycle.ACTIVE
            and lifecycle.can_pause_cycle(price.cycle)
            and not price.is_free
            and subscription.cancel_at is None
        )
    if offer.kind == OfferKind.CHEAPER_PLAN:
        return cheaper_price_for(subscription=subscription, target=offer.target_price) is not None
    if offer.kind == OfferKind.SESSION:
        return subscription.is_live
    return False


def offer_for(*, subscription: Subscription, reason: str, now: datetime) -> RetentionOffer | None:
    """The first active offer for the reason, in the operators' order, that applies."""
    if not reason:
        return None
    offers = RetentionOffer.objects.filter(reason=reason, is_active=True).select_related("target_price__plan")
    for offer in offers.order_by("order", "id"):
        if offer_applies(offer=offer, subscription=subscription, now=now):
            return offer
    return None


def offer_terms_for(*, offer: RetentionOffer, subscription: Subscription) -> dict:
    """The terms shown to this customer; a cheaper-plan offer names the price it resolved to."""
    if offer.kind == OfferKind.CHEAPER_PLAN:
        price = cheaper_price_for(subscription=subscription, target=offer.target_price)
        return {"price_id": price.pk, "price_label": str(price)}
    return offer.terms


# --- What the offer page shows ------------------------------------------------------------------------
@dataclass(frozen=True)
class DiscountNumbers:
    percent: int
    periods: int
    next_invoice_at: datetime
    regular_minor: int
    discounted_minor: int
    saving_minor: int
    currency: str


@dataclass(frozen=True)
class PauseNumbers:
    months: int
    resume_at: datetime
    period_end_after: datetime  # the current period's end, moved later by the pause


@dataclass(frozen=True)
class CheaperPlanNumbers:
    price: Price
    preview: subscription_services.ChangePreview
    at_period_end: bool  # switch at the period end because switching now would forfeit money
    current_amount_minor: int


def discount_numbers(*, subscription: Subscription, percent: int, periods: int) -> DiscountNumbers:
    next_price = subscription.scheduled_price or subscription.price
    regular = next_price.amount_minor
    off = percent_of(regular, percent)
    return DiscountNumbers(
        percent=percent,
        periods=periods,
        next_invoice_at=subscription.trial_end
        if subscription.status == lifecycle.TRIALING
        else subscription.current_period_end,
        regular_minor=regular,
        discounted_minor=regular - off,
        saving_minor=off * periods,
        currency=next_price.currency,
    )


def pause_numbers(*, subscription: Subscription, months: int, now: datetime) -> PauseNumbers:
    resume_at = lifecycle.pause_resume_at(now, months)
    return PauseNumbers(
        months=months,
        resume_at=resume_at,
        period_end_after=lifecycle.shift_after_pause(subscription.current_period_end, now, resume_at),
    )


def cheaper_plan_numbers(*, subscription: Subscription, price_id: int, now: datetime) -> CheaperPlanNumbers:
    """The preview of the switch: now when nothing is lost, else at the end of the period.

    Raises InvalidTransition when the switch is no longer possible.
    """
    price = Price.objects.select_related("plan").filter(pk=price_id).first()
    if price is None:
        raise lifecycle.InvalidTransition(str(_("This price is not available.")))
    preview = subscription_services.subscription_preview_change(subscription=subscription, price=price, now=now)
    at_period_end = False
    if preview.would_forfeit:
        preview = subscription_services.subscription_preview_change(
            subscription=subscription, price=price, now=now, at_period_end=True
        )
        at_period_end = True
    return CheaperPlanNumbers(
        price=price, preview=preview, at_period_end=at_period_end, current_amount_minor=subscription.amount_minor
    )


# --- Before you go --------------------------------------------------------------------------------
TRIAL, COMMITMENT, PERIOD = "trial", "commitment", "period"
OUTSTANDING_BALANCE, PAUSED, PAST_DUE = "outstanding_balance", "paused", "past_due"


@dataclass(frozen=True)
class CancellationSummary:
    """What a cancellation asked for now means: when it ends, what is lost, what still gets charged."""

    subscription: Subscription
    cancel_at: datetime
    ends_with: str  # TRIAL, COMMITMENT or PERIOD
    features: list[str]
    payments: list[tuple[datetime, int]] = field(default_factory=list)  # commitment payments still due
    outstanding_minor: int = 0
    blockers: list[str] = field(default_factory=list)  # OUTSTANDING_BALANCE, PAUSED, PAST_DUE

    @property
    def currency(self) -> str:
        return self.subscription.currency

    @property
    def payments_count(self) -> int:
        return len(self.payments)

    @property
    def payments_total_minor(self) -> int:
        return sum(amount for _at, amount in self.payments)

    @property
    def payment_amounts(self) -> list[int]:
        return sorted({amount for _at, amount in self.payments})

    @property
    def regular_payment_minor(self) -> int:
        return self.subscription.amount_minor

    @property
    def can_confirm(self) -> bool:
        return not self.blockers


def cancellation_summary(*, subscription: Subscription, now: datetime) -> CancellationSummary:
    cancel_at = subscription_services.subscription_cancel_date(subscription=subscription, now=now)
    if subscription.status == lifecycle.TRIALING:
        ends_with = TRIAL
    elif subscription.in_commitment(now):
        ends_with = COMMITMENT
    else:
        ends_with = PERIOD
    payments: list[tuple[datetime, int]] = []
    if ends_with == COMMITMENT and subscription.status == lifecycle.ACTIVE:
        dates = rules.payments_before(
            anchor=subscription.billing_anchor_at,
            cycle=subscription.price.cycle,
            period_number=subscription.period_number,
            end=cancel_at,
        )
        amounts = rules.payment_amounts(
            amount_minor=subscription.amount_minor,
            count=len(dates),
            discount_percent=subscription.discount_percent,
            discount_periods_left=subscription.discount_periods_left,
        )
        payments = list(zip(dates, amounts, strict=True))
    outstanding = (
        Invoice.objects.filter(account=subscription.account, status=Invoice.OPEN).aggregate(
            total=Sum("amount_due_minor")
        )["total"]
        or 0
    )
    blockers = []
    has_open_invoice = Invoice.objects.filter(account=subscription.account, status=Invoice.OPEN).exists()
    if has_open_invoice:
        blockers.append(OUTSTANDING_BALANCE)
    if subscription.status == lifecycle.PAUSED:
        blockers.append(PAUSED)
    elif subscription.status == lifecycle.PAST_DUE and not has_open_invoice:
        blockers.append(PAST_DUE)
    return CancellationSummary(
        subscription=subscription,
        cancel_at=cancel_at,
        ends_with=ends_with,
        features=subscription.price.plan.features_in(),
        payments=payments,
        outstanding_minor=outstanding,
        blockers=blockers,
    )


# --- Figures for operators -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OfferRow:
    label: str
    shown: int | None  # None for the rows that are not offers (kept, undone)
    accepted: int
    held: int
    lost: int
    pending: int


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    label: str
    started: int
    canceled: int
    saved_held: int


@dataclass(frozen=True)
class FlowFigures:
    """What operators learn from the flows started in [start, end)."""

    start: datetime
    end: datetime
    started: int
    open: int
    canceled: int
    abandoned: int
    saves_held: int
    saves_lost: int
    saves_pending: int
    by_offer: list[OfferRow]
    by_reason: list[ReasonRow]
    answers: list[CancellationFlow]

    @property
    def settled(self) -> int:
        """Flows whose result is final: canceled, abandoned, and saves checked after 30 days."""
        return self.canceled + self.abandoned + self.saves_held + self.saves_lost

    @property
    def save_rate(self) -> float | None:
        """Saves that held 30 days, as a percentage of the settled flows (None when none settled)."""
        if not self.settled:
            return None
        return round(100 * self.saves_held / self.settled, 1)


def flows_filtered(*, start: datetime, end: datetime, reason: str = "", offer_kind: str = ""):
    flows = CancellationFlow.objects.started_between(start, end)
    if reason:
        flows = flows.filter(reason="" if reason == "none" else reason)
    if offer_kind:
        flows = flows.filter(offer_kind="" if offer_kind == "none" else offer_kind)
    return flows


def _counts() -> dict:
    """Conditional counts over flows: outcomes, and saves split by how they came about."""
    saved = Q(outcome=CancellationFlow.SAVED)
    accepted = saved & Q(offer_accepted_at__isnull=False)
    kept = saved & Q(offer_accepted_at__isnull=True, undone_at__isnull=True)
    undone = saved & Q(offer_accepted_at__isnull=True, undone_at__isnull=False)
    counts = {
        "started": Count("pk"),
        "open": Count("pk", filter=Q(outcome=CancellationFlow.OPEN)),
        "canceled": Count("pk", filter=Q(outcome=CancellationFlow.CANCELED)),
        "abandoned": Count("pk", filter=Q(outcome=CancellationFlow.ABANDONED)),
        "accepted": Count("pk", filter=accepted),
    }
    for name, which in (("", saved), ("accepted_", accepted), ("kept_", kept), ("undone_", undone)):
        counts[f"{name}held"] = Count("pk", filter=which & Q(save_held=True))
        counts[f"{name}lost"] = Count("pk", filter=which & Q(save_held=False))
        counts[f"{name}pending"] = Count("pk", filter=which & Q(save_held__isnull=True))
    return counts


def flow_figures(
    *, start: datetime, end: datetime, reason: str = "", offer_kind: str = "", answers_limit: int = 500
) -> FlowFigures:
    """Flows started, outcomes, save rate, saves by offer, cancellations by reason, free-text answers.

    Four queries, whatever the number of flows.
    """
    flows = flows_filtered(start=start, end=end, reason=reason, offer_kind=offer_kind)
    total = flows.aggregate(**_counts())

    by_kind = {row["offer_kind"]: row for row in flows.values("offer_kind").annotate(**_counts()).order_by()}
    by_offer = [
        OfferRow(
            label=str(label),
            shown=row["started"],
            accepted=row["accepted"],
            held=row["accepted_held"],
            lost=row["accepted_lost"],
            pending=row["accepted_pending"],
        )
        for kind, label in OfferKind.choices
        if (row := by_kind.get(kind))
    ]
    for prefix, label in (("kept_", _("Kept without an offer")), ("undone_", _("Undid the cancellation"))):
        by_offer.append(
            OfferRow(
                label=str(label),
                shown=None,
                accepted=0,
                held=total[f"{prefix}held"],
                lost=total[f"{prefix}lost"],
                pending=total[f"{prefix}pending"],
            )
        )

    labels = dict(Reason.choices)
    by_reason = [
        ReasonRow(
            reason=row["reason"] or "none",
            label=str(labels.get(row["reason"], _("No reason given"))),
            started=row["started"],
            canceled=row["canceled"],
            saved_held=row["held"],
        )
        for row in flows.values("reason").annotate(**_counts()).order_by("-canceled", "-started", "reason")
    ]
    answers = list(
        flows.exclude(reason_text="").select_related("account").order_by("-started_at", "-id")[:answers_limit]
    )
    return FlowFigures(
        start=start,
        end=end,
        started=total["started"],
        open=total["open"],
        canceled=total["canceled"],
        abandoned=total["abandoned"],
        saves_held=total["held"],
        saves_lost=total["lost"],
        saves_pending=total["pending"],
        by_offer=by_offer,
        by_reason=by_reason,
        answers=answers,
    )


def cancellation_save_rate(*, start: datetime, end: datetime) -> tuple[int, int]:
    """(saves that held 30 days, settled flows) for flows started in [start, end): the admin dashboard's figure."""
    total = flows_filtered(start=start, end=end).aggregate(**_counts())
    settled = total["canceled"] + total["abandoned"] + total["held"] + total["lost"]
    return total["held"], settled
