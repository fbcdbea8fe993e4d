"""Changes of the cancellation flow. Subscription changes go through subscriptions.services.

A flow is claimed with a conditional UPDATE (outcome open → final) before the subscription
service runs, so a double click or two tabs apply an offer or a cancellation once; if the
subscription service refuses, the claim is given back and nothing changed. No transaction is
held around the subscription services: a plan change may call Stripe.
"""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils.translation import gettext as _

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from subscriptions import emails, lifecycle
from subscriptions import services as subscription_services
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import Subscription, SubscriptionEvent

from . import rules, selectors
from .models import CancellationFlow, OfferKind, SessionRequest

log = logging.getLogger(__name__)


class FlowFinished(InvalidTransition):
    """The flow was already finished (or expired): start again."""


class OfferNotShown(InvalidTransition):
    """An offer that this flow did not show was sent back."""


def _require_billing_role(actor: User, account: Account) -> None:
    """Owners and billing admins of the account, or operators; members may not cancel."""
    membership = Membership.objects.filter(user=actor, account=account).first()
    if membership is None and not actor.is_staff:
        raise InvalidTransition(_("You cannot change this subscription."))
    if membership is not None and not membership.can_manage_billing:
        raise InvalidTransition(_("Only owners and billing admins can cancel the subscription."))


# --- Start --------------------------------------------------------------------------------------
def flow_start(
    *,
    account: Account,
    subscription: Subscription,
    actor: User,
    reason: str,
    reason_text: str = "",
    skip_offers: bool = False,
    now: datetime | None = None,
) -> CancellationFlow:
    """Record why the customer leaves and pick the offer to show (none when skipped or none applies).

    An attempt started less than a day ago continues (the customer went back to step 1); an
    older open one is abandoned and a new one starts.
    """
    now = now or clock.now()
    _require_billing_role(actor, account)
    if subscription.account_id != account.pk or not subscription.is_live:
        raise InvalidTransition(_("There is no subscription to cancel."))
    if subscription.is_canceling:
        raise InvalidTransition(_("This subscription is already set to end."))
    offer = None if skip_offers else selectors.offer_for(subscription=subscription, reason=reason, now=now)
    fields = {
        "reason": reason,
        "reason_text": reason_text.strip(),
        "offer": offer,
        "offer_kind": offer.kind if offer else "",
        "offer_terms": selectors.offer_terms_for(offer=offer, subscription=subscription) if offer else {},
    }
    open_flows = CancellationFlow.objects.filter(subscription=subscription, outcome=CancellationFlow.OPEN)
    open_flows.filter(started_at__lte=now - rules.ABANDON_AFTER).update(
        outcome=CancellationFlow.ABANDONED, finished_at=now
    )
    if open_flows.update(**fields):
        return open_flows.get()
    try:
        with transaction.atomic():
            return CancellationFlow.objects.create(
                account=account, subscription=subscription, started_by=actor, started_at=now, **fields
            )
    except IntegrityError:
        # Another tab (or another billing admin) opened one at the same moment: continue it.
        open_flows.update(**fields)
        return open_flows.get()


# --- Claiming a flow ------------------------------------------------------------------------------
def _claim(flow: CancellationFlow, now: datetime, **changes) -> None:
    """Finish an open flow, once: a second click or an expired flow raises FlowFinished."""
    claimed = CancellationFlow.objects.filter(
        pk=flow.pk, outcome=CancellationFlow.OPEN, started_at__gt=now - rules.ABANDON_AFTER
    ).update(finished_at=now, **changes)
    if not claimed:
        raise FlowFinished(_("This cancellation is already finished. Start again if you want to cancel."))


def _unclaim(flow: CancellationFlow, outcome: str) -> None:
    CancellationFlow.objects.filter(pk=flow.pk, outcome=outcome).update(
        outcome=CancellationFlow.OPEN, finished_at=None, offer_accepted_at=None, cancel_at=None
    )


def _subscription(flow: CancellationFlow) -> Subscription:
    return Subscription.objects.select_related("account", "price__plan").get(pk=flow.subscription_id)


# --- Accept an offer, or keep the subscription ------------------------------------------------------
def flow_accept_offer(
    *,
    flow: CancellationFlow,
    offer_id: int | None,
    actor: User,
    now: datetime | None = None,
    proposed_times: list[datetime] | None = None,
    note: str = "",
) -> CancellationFlow:
    """Apply the offer the flow showed, at once, and end the flow as a save.

    The terms applied are the ones shown (the flow's snapshot), even if an operator edited the
    offer since.
    """
    now = now or clock.now()
    _require_billing_role(actor, flow.account)
    if not flow.offer_kind or offer_id is None or offer_id != flow.offer_id:
        raise OfferNotShown(_("This offer was not made to you."))
    if flow.offer_kind == OfferKind.SESSION and not proposed_times:
        raise InvalidTransition(_("Propose at least one time for the session."))
    _claim(flow, now, outcome=CancellationFlow.SAVED, offer_accepted_at=now)
    try:
        _apply_offer(flow, actor=actor, now=now, proposed_times=proposed_times or [], note=note)
    except Exception:
        _unclaim(flow, CancellationFlow.SAVED)
        raise
    flow.refresh_from_db()
    return flow


def _apply_offer(flow: CancellationFlow, *, actor: User, now: datetime, proposed_times, note: str) -> None:
    subscription = _subscription(flow)
    terms = flow.offer_terms
    why = _("Retention offer accepted in the cancellation flow")
    if flow.offer_kind == OfferKind.DISCOUNT:
        if selectors.discount_used_recently(account=flow.account, now=now):
            raise InvalidTransition(_("A discount was already given in the last 12 months."))
        subscription_services.subscription_apply_discount(
            subscription=subscription,
            percent=terms["percent"],
            periods=terms["periods"],
            actor=actor,
            now=now,
            reason=why,
        )
    elif flow.offer_kind == OfferKind.PAUSE:
        subscription_services.subscription_pause(
            subscription=subscription, actor=actor, months=terms["months"], now=now
        )
    elif flow.offer_kind == OfferKind.CHEAPER_PLAN:
        numbers = selectors.cheaper_plan_numbers(subscription=subscription, price_id=terms["price_id"], now=now)
        subscription_services.subscription_change(
            subscription=subscription,
            price=numbers.price,
            actor=actor,
            now=now,
            at_period_end=numbers.at_period_end,
        )
    elif flow.offer_kind == OfferKind.SESSION:
        _session_request(flow, actor=actor, now=now, proposed_times=proposed_times, note=note)
    else:  # pragma: no cover - the model refuses other kinds
        raise InvalidTransition(f"Unknown offer kind {flow.offer_kind!r}")


def _session_request(flow: CancellationFlow, *, actor: User, now: datetime, proposed_times, note: str) -> None:
    times = sorted(proposed_times)
    if any(moment <= now for moment in times):
        raise InvalidTransition(_("Propose times in the future."))
    request = SessionRequest.objects.create(
        account=flow.account,
        flow=flow,
        requested_by=actor,
        contact_email=actor.email,
        proposed_times=[moment.astimezone(UTC).isoformat() for moment in times],
        note=note.strip(),
        created_at=now,
    )
    session_request_notify_team(session_request=request, now=now)


def session_request_notify_team(*, session_request: SessionRequest, now: datetime | None = None) -> bool:
    """Email the success team about a request (in the site language); False if the email failed."""
    now = now or clock.now()
    context = {
        "session_request": session_request,
        "account": session_request.account,
        "site_url": settings.SITE_URL,
        "proposed": [datetime.fromisoformat(moment) for moment in session_request.proposed_times],
    }
    subject, text, html = emails.email_render(
        kind="retention-session-request", context=context, language=settings.LANGUAGE_CODE
    )
    message = EmailMultiAlternatives(
        subject,
        text,
        settings.DEFAULT_FROM_EMAIL,
        [settings.RETENTION_TEAM_EMAIL],
        reply_to=[session_request.contact_email],
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:
        # The request is saved and listed in admin either way; "team emailed at" stays empty.
        log.exception("Could not email the success team about session request %s", session_request.pk)
        return False
    SessionRequest.objects.filter(pk=session_request.pk).update(team_notified_at=now)
    return True


def flow_keep(*, flow: CancellationFlow, actor: User, now: datetime | None = None) -> CancellationFlow:
    """ "Keep my subscription": the flow ends as a save without an offer."""
    now = now or clock.now()
    _require_billing_role(actor, flow.account)
    _claim(flow, now, outcome=CancellationFlow.SAVED)
    flow.refresh_from_db()
    return flow


# --- Confirm and undo ----------------------------------------------------------------------------------
def flow_confirm(*, flow: CancellationFlow, actor: User, now: datetime | None = None) -> CancellationFlow:
    """Schedule the cancellation (subscription_schedule_cancel, which emails the confirmation)."""
    now = now or clock.now()
    _require_billing_role(actor, flow.account)
    subscription = _subscription(flow)
    _claim(flow, now, outcome=CancellationFlow.CANCELED)
    try:
        subscription_services.subscription_schedule_cancel(
            subscription=subscription, actor=actor, now=now, reason=flow.reason or "not_given"
        )
    except Exception:
        _unclaim(flow, CancellationFlow.CANCELED)
        raise
    CancellationFlow.objects.filter(pk=flow.pk).update(cancel_at=subscription.cancel_at)
    flow.refresh_from_db()
    return flow


def cancellation_undo(*, account: Account, actor: User, now: datetime | None = None) -> Subscription:
    """Take back a scheduled cancellation; the flow that set it now counts as a save."""
    now = now or clock.now()
    _require_billing_role(actor, account)
    subscription = selectors.subscription_for_cancellation(account=account)
    if subscription is None or subscription.cancel_at is None:
        raise InvalidTransition(_("There is no cancellation to undo."))
    cancel_at = subscription.cancel_at
    subscription_services.subscription_undo_cancel(subscription=subscription, actor=actor, now=now)
    CancellationFlow.objects.filter(
        subscription=subscription, outcome=CancellationFlow.CANCELED, cancel_at=cancel_at
    ).update(outcome=CancellationFlow.SAVED, undone_at=now, save_held=None)
    return subscription


# --- The daily job ---------------------------------------------------------------------------------------
# Events after which a canceled flow's customer is staying after all (undone on the billing page,
# or a plan change, which clears the cancellation).
STAYING_EVENTS = ("cancel_undone", "price_changed", "price_change_scheduled")


def flows_settle(*, now: datetime | None = None) -> dict[str, int]:
    """Abandon flows open for more than a day, and decide saves 30 days after they happened.

    Idempotent: each step only touches flows that are not settled yet.
    """
    now = now or clock.now()
    abandoned = CancellationFlow.objects.filter(
        outcome=CancellationFlow.OPEN, started_at__lte=now - rules.ABANDON_AFTER
    ).update(outcome=CancellationFlow.ABANDONED, finished_at=now)

    # A cancellation taken back outside the flow (the billing page's undo, a plan change).
    staying = SubscriptionEvent.objects.filter(
        subscription=OuterRef("subscription"), kind__in=STAYING_EVENTS, created_at__gt=OuterRef("finished_at")
    )
    undone = 0
    candidates = (
        CancellationFlow.objects.filter(
            outcome=CancellationFlow.CANCELED,
            subscription__status__in=lifecycle.LIVE_STATUSES,
            subscription__cancel_at__isnull=True,
        )
        .annotate(staying_at=Subquery(staying.order_by("created_at").values("created_at")[:1]))
        .filter(staying_at__isnull=False)
    )
    for flow_id, staying_at in candidates.values_list("pk", "staying_at"):
        undone += CancellationFlow.objects.filter(pk=flow_id, outcome=CancellationFlow.CANCELED).update(
            outcome=CancellationFlow.SAVED, undone_at=staying_at, save_held=None
        )

    due = CancellationFlow.objects.filter(outcome=CancellationFlow.SAVED, save_held__isnull=True).filter(
        Q(undone_at__lte=now - rules.SAVE_HOLDS_AFTER)
        | Q(undone_at__isnull=True, finished_at__lte=now - rules.SAVE_HOLDS_AFTER)
    )
    live = Q(subscription__status__in=lifecycle.LIVE_STATUSES, subscription__cancel_at__isnull=True)
    held_ids = list(due.filter(live).values_list("pk", flat=True))
    lost_ids = list(due.exclude(live).values_list("pk", flat=True))
    held = CancellationFlow.objects.filter(pk__in=held_ids, save_held__isnull=True).update(
        save_held=True, save_checked_at=now
    )
    lost = CancellationFlow.objects.filter(pk__in=lost_ids, save_held__isnull=True).update(
        save_held=False, save_checked_at=now
    )
    return {"abandoned": abandoned, "undone": undone, "saves_held": held, "saves_lost": lost}
