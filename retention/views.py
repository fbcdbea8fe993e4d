"""The cancellation flow (SPEC section 6): reason → offer → before you go → confirm.

Each step is one page; every step has "keep my subscription" and "skip, continue to cancel".
Views parse input, call one service and redirect; a flow is always looked up within the
request's account, and a finished or expired flow sends the customer where it belongs.
"""

from functools import wraps
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.reauth import recent_login_required
from billing_portal.lib import clock
from subscriptions import lifecycle
from subscriptions import selectors as subscription_selectors

from . import rules, selectors, services
from .forms import ReasonForm, SessionForm
from .models import CancellationFlow, OfferKind


def billing_role_required(view):
    """Owners and billing admins only; a member is told who can cancel (403, nothing changes)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.account is None:
            return render(request, "subscriptions/no_account.html", status=403)
        if not request.membership.can_manage_billing:
            managers = selectors.account_billing_managers(account=request.account)
            context = {"account": request.account, "managers": managers}
            return render(request, "retention/not_allowed.html", context, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _flow_url(flow: CancellationFlow, now) -> str:
    """The page a flow belongs on now."""
    if flow.outcome == CancellationFlow.CANCELED:
        return reverse("retention:done", args=[flow.pk])
    if flow.outcome == CancellationFlow.SAVED:
        return reverse("retention:kept", args=[flow.pk])
    if flow.outcome == CancellationFlow.ABANDONED or rules.flow_expired(flow.started_at, now):
        return reverse("retention:start")
    if flow.offer_kind:
        return reverse("retention:offer", args=[flow.pk])
    return reverse("retention:review", args=[flow.pk])


def _unless_open(request, flow: CancellationFlow, now):
    """A redirect for a flow that is no longer open (finished or expired), else None."""
    if flow.outcome == CancellationFlow.OPEN and not rules.flow_expired(flow.started_at, now):
        return None
    if flow.outcome in (CancellationFlow.OPEN, CancellationFlow.ABANDONED):
        messages.info(request, _("That cancellation expired. Start again if you still want to cancel."))
    else:
        messages.info(request, _("This cancellation is already finished."))
    return redirect(_flow_url(flow, now))


def _context(request, flow: CancellationFlow | None, step: int, **extra) -> dict:
    subscription = flow.subscription if flow else extra.pop("subscription")
    return {"account": request.account, "flow": flow, "subscription": subscription, "step": step, **extra}


def _bad_request(request, message: str, flow: CancellationFlow | None = None):
    return render(request, "retention/error.html", {"message": message, "flow": flow}, status=400)


# --- Step 1: why ----------------------------------------------------------------------------------
@login_required
@billing_role_required
def start(request):
    now = clock.now()
    account = request.account
    subscription = selectors.subscription_for_cancellation(account=account)
    if subscription is None or subscription.is_canceling:
        confirmed = subscription and selectors.flow_confirmed_for_subscription(subscription=subscription)
        if confirmed:
            return redirect("retention:done", confirmed.pk)
        if request.method == "POST":
            messages.error(request, _("There is no subscription to cancel."))
            return redirect("retention:start")
        latest = subscription or subscription_selectors.subscription_latest_for_account(account=account)
        return render(
            request, "retention/nothing_to_cancel.html", {"account": account, "subscription": latest, "now": now}
        )
    open_flow = selectors.flow_open_for_subscription(subscription=subscription, now=now)
    if request.method == "POST":
        skip = "skip" in request.POST
        form = ReasonForm(request.POST, skip=skip)
        if form.is_valid():
            try:
                flow = services.flow_start(
                    account=account,
                    subscription=subscription,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    reason_text=form.cleaned_data["reason_text"],
                    skip_offers=skip,
                    now=now,
                )
            except lifecycle.InvalidTransition as error:
                messages.error(request, str(error))
                return redirect("retention:start")
            return redirect(_flow_url(flow, now))
    else:
        initial = {"reason": open_flow.reason, "reason_text": open_flow.reason_text} if open_flow else None
        form = ReasonForm(initial=initial)
    return render(
        request, "retention/reason.html", _context(request, open_flow, 1, subscription=subscription, form=form)
    )


# --- Step 2: an offer that fits the reason ----------------------------------------------------------
def _offer_numbers(flow: CancellationFlow, now):
    """What the offer page shows for the flow's offer; None when it cannot be taken any more."""
    subscription, terms = flow.subscription, flow.offer_terms
    try:
        if flow.offer_kind == OfferKind.DISCOUNT:
            return selectors.discount_numbers(subscription=subscription, **terms)
        if flow.offer_kind == OfferKind.PAUSE:
            return selectors.pause_numbers(subscription=subscription, months=terms["months"], now=now)
        if flow.offer_kind == OfferKind.CHEAPER_PLAN:
            return selectors.cheaper_plan_numbers(subscription=subscription, price_id=terms["price_id"], now=now)
    except lifecycle.InvalidTransition:
        return None
    return {}  # a session: the form is the page


def _render_offer(request, flow: CancellationFlow, now, session_form=None, status=200):
    numbers = _offer_numbers(flow, now)
    if numbers is None:
        messages.info(request, _("That offer is no longer available for your subscription."))
        return redirect("retention:review", flow.pk)
    if flow.offer_kind == OfferKind.SESSION and session_form is None:
        session_form = SessionForm(now=now)
    context = _context(request, flow, 2, numbers=numbers, session_form=session_form, now=now)
    return render(request, "retention/offer.html", context, status=status)


@require_GET
@login_required
@billing_role_required
def offer(request, flow_id: int):
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if response := _unless_open(request, flow, now):
        return response
    if not flow.offer_kind:
        return redirect("retention:review", flow.pk)
    return _render_offer(request, flow, now)


@require_POST
@login_required
@billing_role_required
def accept(request, flow_id: int):
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if response := _unless_open(request, flow, now):
        return response
    try:
        offer_id = int(request.POST.get("offer", ""))
    except ValueError:
        offer_id = None
    if not flow.offer_kind or offer_id != flow.offer_id:
        return _bad_request(request, _("This offer was not made to you, so it cannot be accepted."), flow)
    session = {}
    if flow.offer_kind == OfferKind.SESSION:
        form = SessionForm(request.POST, now=now)
        with timezone.override(ZoneInfo(request.account.timezone)):
            valid = form.is_valid()
        if not valid:
            return _render_offer(request, flow, now, session_form=form)
        session = {"proposed_times": form.proposed_times, "note": form.cleaned_data["note"]}
    try:
        services.flow_accept_offer(flow=flow, offer_id=offer_id, actor=request.user, now=now, **session)
    except services.FlowFinished as error:
        messages.info(request, str(error))
        return redirect(_flow_url(flow, now))
    except lifecycle.InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("retention:offer", flow.pk)
    return redirect("retention:kept", flow.pk)


@require_POST
@login_required
@billing_role_required
def keep(request, flow_id: int):
    """ "Keep my subscription", on any step of an open flow."""
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if response := _unless_open(request, flow, now):
        return response
    try:
        flow = services.flow_keep(flow=flow, actor=request.user, now=now)
    except services.FlowFinished as error:
        messages.info(request, str(error))
        flow.refresh_from_db()
    return redirect(_flow_url(flow, now))


# --- Step 3: before you go, and confirm ------------------------------------------------------------------
@require_GET
@login_required
@billing_role_required
@recent_login_required()
def review(request, flow_id: int):
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if response := _unless_open(request, flow, now):
        return response
    subscription = flow.subscription
    if not subscription.is_live:
        messages.info(request, _("There is no subscription to cancel."))
        return redirect("retention:start")
    summary = selectors.cancellation_summary(subscription=subscription, now=now)
    return render(request, "retention/review.html", _context(request, flow, 3, summary=summary, now=now))


@require_POST
@login_required
@billing_role_required
@recent_login_required(return_to=lambda request, flow_id: reverse("retention:review", args=[flow_id]))
def confirm(request, flow_id: int):
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if response := _unless_open(request, flow, now):
        return response
    try:
        services.flow_confirm(flow=flow, actor=request.user, now=now)
    except services.FlowFinished as error:
        messages.info(request, str(error))
        flow.refresh_from_db()
        return redirect(_flow_url(flow, now))
    except lifecycle.InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("retention:review", flow.pk)
    return redirect("retention:done", flow.pk)


# --- The end pages ---------------------------------------------------------------------------------------
@require_GET
@login_required
@billing_role_required
def done(request, flow_id: int):
    """The cancellation is scheduled: the end date and an undo button."""
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if flow.outcome != CancellationFlow.CANCELED:
        return redirect(_flow_url(flow, now))
    subscription = flow.subscription
    can_undo = subscription.cancel_at is not None and subscription.cancel_at == flow.cancel_at and flow.cancel_at > now
    summary = selectors.cancellation_summary(subscription=subscription, now=now) if can_undo else None
    context = _context(request, flow, 4, can_undo=can_undo, summary=summary, now=now)
    return render(request, "retention/done.html", context)


@require_GET
@login_required
@billing_role_required
def kept(request, flow_id: int):
    """The customer stays: what was applied (discount, pause, cheaper plan, session) or just kept."""
    now = clock.now()
    flow = selectors.flow_get_for_account_or_404(account=request.account, pk=flow_id)
    if flow.outcome != CancellationFlow.SAVED:
        return redirect(_flow_url(flow, now))
    subscription = flow.subscription
    extra = {}
    if flow.offer_accepted_at and flow.offer_kind == OfferKind.DISCOUNT:
        extra["numbers"] = selectors.discount_numbers(subscription=subscription, **flow.offer_terms)
    if subscription.scheduled_price_id:
        in_commitment = subscription.in_commitment(now)
        extra["switch_at"] = subscription.commitment_end_at if in_commitment else subscription.current_period_end
    session_request = getattr(flow, "session_request", None) if flow.offer_kind == OfferKind.SESSION else None
    return render(
        request, "retention/kept.html", _context(request, flow, 4, session_request=session_request, now=now, **extra)
    )


@require_POST
@login_required
@billing_role_required
def undo(request):
    """Undo a scheduled cancellation (until its date); the flow that set it counts as a save."""
    now = clock.now()
    try:
        subscription = services.cancellation_undo(account=request.account, actor=request.user, now=now)
    except lifecycle.InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    messages.success(
        request, _("Your cancellation is undone: %(plan)s continues.") % {"plan": subscription.price.plan.name}
    )
    return redirect("subscriptions:billing")
