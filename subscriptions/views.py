"""Customer billing pages: thin views that read through selectors and change through services.

Every page is scoped to `request.account`; owners and billing admins may act, members see the
summary read-only. A refused change (`InvalidTransition` and its subclasses) is shown as a
message and changes nothing.
"""

from functools import wraps
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.reauth import recent_login_required
from billing_portal.lib import clock
from billing_portal.lib.feedback import bad_request
from billing_portal.lib.redirects import local_url

from . import activity, declines, gateway, lifecycle, page_cache, selectors, services
from . import pricing as pricing_table
from .decorators import allow_stripe_js
from .lifecycle import InvalidTransition
from .models import Invoice, Payment, Price
from .templatetags.billing import money

# Which way a confirmed change goes: now (with proration) or at the end of the current period.
WHEN_NOW, WHEN_PERIOD_END = "now", "period_end"


# --- Access ------------------------------------------------------------------------------------------
def _forbidden(request):
    """Members (and operators without an account) may look but not act: say who can."""
    managers = selectors.account_billing_managers(account=request.account) if request.account else []
    return render(request, "subscriptions/forbidden.html", {"managers": managers}, status=403)


def billing_manager_required(view):
    """Logged in, a member of an account, and its owner or billing admin."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if request.account is None or not request.membership.can_manage_billing:
            return _forbidden(request)
        return view(request, *args, **kwargs)

    return wrapper


def _live_subscription_or_redirect(request):
    """The live subscription, or None after queueing a message (the caller redirects)."""
    subscription = selectors.subscription_live_for_account(account=request.account)
    if subscription is None:
        messages.error(request, _("You have no running subscription."))
    return subscription


def _date(account, value) -> str:
    return activity.date_in(value, ZoneInfo(account.timezone)) if value else ""


def _safe_next(request, value: str | None) -> str:
    """A local URL to come back to, or the billing page."""
    return local_url(request, value, reverse("subscriptions:billing"))


def _verify_first_message() -> str:
    return _("Please verify your email address before starting a paid plan. We can send you a new link.")


def _needs_verified_email(request, *, price: Price, in_trial: bool) -> bool:
    """Unverified users may run a trial (or use a free plan) but not start paying (docs/rules.md)."""
    return not price.is_free and not in_trial and not request.user.is_email_verified


# --- Public pricing page ------------------------------------------------------------------------------
@require_safe
def home(request):
    """The front door: the pricing page for visitors, the billing page for customers."""
    if request.user.is_authenticated:
        return redirect("subscriptions:billing")
    return pricing(request)


@require_safe
def pricing(request):
    """Active plans side by side in one billing cycle (?cycle=), with their call to action.

    Visitors are sent to signup; a logged-in customer sees their plan marked and goes to the
    change preview. Works without JavaScript: the cycle switch is three links.
    """
    account = request.account
    subscription = selectors.subscription_live_for_account(account=account) if account else None
    default_cycle = subscription.price.cycle if subscription else lifecycle.MONTHLY
    cycle = request.GET.get("cycle")
    if cycle not in pricing_table.CYCLES:
        cycle = default_cycle
    currency = account.currency if account else settings.ACCOUNTS_SIGNUP_CURRENCY
    prices = selectors.prices_available(currency=currency)
    offers = pricing_table.plan_offers(prices=prices, cycle=cycle)
    can_manage = bool(request.membership and request.membership.can_manage_billing)
    cycle_names = dict(lifecycle.CYCLE_CHOICES)
    cards = []
    for offer in offers:
        price = offer.price
        is_current_plan = subscription is not None and subscription.price.plan_id == offer.plan.pk
        is_current_price = price is not None and subscription is not None and subscription.price_id == price.pk
        url = ""
        if price is not None and not is_current_price:
            if not request.user.is_authenticated:
                url = f"{reverse('accounts:signup')}?{urlencode({'price': price.pk})}"
            elif can_manage:
                url = reverse("subscriptions:change", args=[price.pk])
        cards.append(
            {
                "offer": offer,
                "is_current_plan": is_current_plan,
                "is_current_price": is_current_price,
                "url": url,
                "has_trial": bool(offer.plan.trial_days) and not offer.is_free,
                "fallback_label": cycle_names.get(offer.fallback_cycle, ""),
            }
        )
    context = {
        "cycles": [(c, cycle_names[c]) for c in pricing_table.CYCLES],
        "cycle": cycle,
        "cards": cards,
        "account": account,
        "subscription": subscription,
        "can_manage": can_manage,
        "managers": selectors.account_billing_managers(account=account) if account and not can_manage else [],
        # The trial is offered once per account (docs/rules.md): a customer who had one sees none.
        "show_trial": account is None or not selectors.account_has_trialed(account=account),
        "annual_saving_percent": pricing_table.best_saving_percent(prices=prices, cycle=lifecycle.ANNUAL),
        "currency": currency,
    }
    return render(request, "subscriptions/pricing.html", context)


# --- Summary ------------------------------------------------------------------------------------------
@require_GET
@login_required
def billing(request):
    """The billing summary: plan, cycle, status, next billing date, card, credit, state, history.
    Served from the cache while nothing it shows has changed (subscriptions/page_cache.py)."""
    account = request.account
    if account is None:
        return render(request, "subscriptions/no_account.html", status=200)

    def draw(extra_context: dict) -> str:
        context = {**_billing_context(request), **extra_context}
        return render_to_string("subscriptions/billing.html", context, request=request)

    return page_cache.billing_page(request, draw)


def _billing_context(request) -> dict:
    account = request.account
    membership = request.membership
    can_manage = membership.can_manage_billing
    subscription = selectors.subscription_latest_for_account(account=account)
    now = clock.now()
    context = {
        "account": account,
        "membership": membership,
        "can_manage": can_manage,
        "subscription": subscription,
        "credit_balance_minor": selectors.account_credit_balance_minor(account=account),
        "activity": activity.account_activity(account=account),
        "managers": [] if can_manage else selectors.account_billing_managers(account=account),
        "invoices": selectors.account_invoices_recent(account=account) if can_manage else [],
        "dunning": None,
        "payment_action": selectors.payment_requiring_action_for_account(account=account),
        "open_invoice": None,
        "in_commitment": False,
        "can_pause": False,
        "resubscribe_price": None,
    }
    if subscription is not None:
        status = subscription.status
        context["in_commitment"] = subscription.in_commitment(now)
        context["can_pause"] = (
            status == lifecycle.ACTIVE
            and not subscription.cancel_at
            and lifecycle.can_pause_cycle(subscription.price.cycle)
        )
        context["scheduled_at"] = selectors.subscription_scheduled_change_at(subscription=subscription, now=now)
        if status == lifecycle.PAST_DUE:
            context["dunning"] = selectors.subscription_dunning(subscription=subscription)
            context["open_invoice"] = selectors.invoice_open_for_subscription(subscription=subscription)
        if status == lifecycle.CANCELED:
            price = subscription.price
            if price.is_active and price.plan.is_active and price.currency == account.currency:
                context["resubscribe_price"] = price
    return context


# --- Choose a plan, preview and confirm a change ------------------------------------------------------
@require_GET
@billing_manager_required
def plans(request):
    """Plans side by side, each with its prices per cycle; the current price is marked."""
    account = request.account
    subscription = selectors.subscription_live_for_account(account=account)
    prices = selectors.prices_available_for_account(account=account)
    plans_by_code: dict[str, dict] = {}
    for price in prices:
        entry = plans_by_code.setdefault(price.plan.code, {"plan": price.plan, "prices": []})
        entry["prices"].append(price)
    cards = []
    for entry in plans_by_code.values():
        prices = sorted(entry["prices"], key=lambda p: _CYCLE_ORDER.get(p.cycle, 9))
        if all(price.is_free for price in prices):
            # A free plan costs nothing in every cycle: one choice (the current one, if it is) is enough.
            prices = [next((p for p in prices if subscription and p.pk == subscription.price_id), prices[0])]
        monthly = next((p for p in prices if p.cycle == lifecycle.MONTHLY), None)
        options = []
        for price in prices:
            is_current = subscription is not None and price.pk == subscription.price_id
            saving_minor = 0
            if monthly and price.cycle != lifecycle.MONTHLY:
                saving_minor = max(0, _per_year_minor(monthly) - _per_year_minor(price))
            options.append(
                {
                    "price": price,
                    "is_current": is_current,
                    "is_scheduled": subscription is not None and price.pk == subscription.scheduled_price_id,
                    "saving_minor": saving_minor,
                    "saving_percent": round(100 * saving_minor / _per_year_minor(monthly)) if saving_minor else 0,
                }
            )
        cards.append(
            {
                "plan": entry["plan"],
                "options": options,
                "is_current": subscription is not None and subscription.price.plan_id == entry["plan"].pk,
            }
        )
    blocked_reason = ""
    if subscription is not None:
        try:
            lifecycle.next_status(subscription.status, "price_changed")
        except InvalidTransition as error:
            blocked_reason = str(error)
    context = {
        "account": account,
        "subscription": subscription,
        "cards": cards,
        "blocked_reason": blocked_reason,
        "now": clock.now(),
    }
    return render(request, "subscriptions/plans.html", context)


_CYCLE_ORDER = {lifecycle.MONTHLY: 0, lifecycle.ANNUAL: 1, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 2}


def _per_year_minor(price: Price) -> int:
    """What a year on this price costs, to show the saving of annual billing or a commitment."""
    return price.amount_minor * (12 // lifecycle.CYCLE_MONTHS[price.cycle])


def _price_or_404(request, price_id: int) -> Price:
    """A price this account may choose; another currency, inactive or unknown is a 404."""
    price = selectors.price_available_for_account(account=request.account, pk=price_id)
    if price is None:
        raise Http404(_("This price is not available."))
    return price


@require_GET
@billing_manager_required
def change_preview(request, price_id: int):
    """The exact money of changing to `price_id` (from `subscription_preview_change`)."""
    account = request.account
    price = _price_or_404(request, price_id)
    subscription = selectors.subscription_live_for_account(account=account)
    if subscription is None:
        return redirect("subscriptions:subscribe", price_id=price.pk)
    now = clock.now()
    try:
        preview = services.subscription_preview_change(subscription=subscription, price=price, now=now)
        later = None
        if preview.applies == services.NOW and preview.would_forfeit:
            later = services.subscription_preview_change(
                subscription=subscription, price=price, now=now, at_period_end=True
            )
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:plans" if subscription.is_live else "subscriptions:billing")
    context = {
        "account": account,
        "subscription": subscription,
        "preview": preview,
        "later": later,
        "now": now,
        "is_upgrade": price.plan.rank > subscription.price.plan.rank,
        "needs_card": preview.amount_due_minor > 0 and not account.has_payment_method,
        "card_url": _card_url(reverse("subscriptions:change", args=[price.pk])),
        "verify_required": _needs_verified_email(request, price=price, in_trial=preview.applies == services.TRIAL),
    }
    return render(request, "subscriptions/change_preview.html", context)


def _card_url(next_url: str) -> str:
    return f"{reverse('subscriptions:card')}?{urlencode({'next': next_url})}"


@require_POST
@billing_manager_required
def change_confirm(request, price_id: int):
    """Confirm a change: everything is computed again here from the price id, never from the form."""
    account = request.account
    price = _price_or_404(request, price_id)
    when = request.POST.get("when")
    if when not in (WHEN_NOW, WHEN_PERIOD_END):
        return bad_request(
            request,
            _("Choose when the change applies: now or at the end of the period."),
            back_url=reverse("subscriptions:change", args=[price.pk]),
        )
    subscription = _live_subscription_or_redirect(request)
    if subscription is None:
        return redirect("subscriptions:billing")
    preview_url = reverse("subscriptions:change", args=[price.pk])
    if _needs_verified_email(request, price=price, in_trial=subscription.status == lifecycle.TRIALING):
        messages.error(request, _verify_first_message())
        return redirect(preview_url)
    try:
        preview = services.subscription_change(
            subscription=subscription,
            price=price,
            actor=request.user,
            now=clock.now(),
            at_period_end=when == WHEN_PERIOD_END,
        )
    except services.PaymentMethodRequired as error:
        messages.error(request, str(error))
        return redirect(_card_url(preview_url))
    except services.PaymentFailed as error:
        messages.error(request, str(error))
        return redirect(preview_url)
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    name = f"{price.plan.name} ({price.get_cycle_display().lower()})"
    if preview.applies == services.NOW:
        if preview.amount_due_minor:
            text = _("You are now on %(plan)s. We charged %(amount)s to your card.") % {
                "plan": name,
                "amount": money(preview.amount_due_minor, preview.currency),
            }
        else:
            text = _("You are now on %(plan)s. Nothing was charged today.") % {"plan": name}
    elif preview.applies == services.TRIAL:
        text = _("Your trial continues on %(plan)s until %(date)s.") % {
            "plan": name,
            "date": _date(account, preview.period_end),
        }
    else:
        text = _("Your plan changes to %(plan)s on %(date)s. You can withdraw this change until then.") % {
            "plan": name,
            "date": _date(account, preview.effective_at),
        }
    messages.success(request, text)
    return redirect("subscriptions:billing")


@require_POST
@billing_manager_required
def change_withdraw(request):
    subscription = _live_subscription_or_redirect(request)
    if subscription is not None:
        try:
            services.subscription_withdraw_scheduled_change(
                subscription=subscription, actor=request.user, now=clock.now()
            )
        except InvalidTransition as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("The scheduled change was withdrawn. Your plan stays as it is."))
    return redirect("subscriptions:billing")


# --- Pause and resume ------------------------------------------------------------------------------------
@billing_manager_required
def pause(request):
    """Choose 1, 2 or 3 months, see the resume date of each, confirm."""
    account = request.account
    subscription = _live_subscription_or_redirect(request)
    if subscription is None:
        return redirect("subscriptions:billing")
    now = clock.now()
    if request.method == "POST":
        months = request.POST.get("months", "")
        if months not in {str(m) for m in lifecycle.PAUSE_MONTHS}:
            return bad_request(request, _("A pause lasts 1, 2 or 3 months."), back_url=reverse("subscriptions:pause"))
        try:
            services.subscription_pause(subscription=subscription, actor=request.user, months=int(months), now=now)
        except InvalidTransition as error:
            messages.error(request, str(error))
            return redirect("subscriptions:billing")
        messages.success(
            request,
            _("Your subscription is paused. It resumes on %(date)s; you can resume earlier at any time.")
            % {"date": _date(account, subscription.resume_at)},
        )
        return redirect("subscriptions:billing")
    if request.method != "GET":
        return HttpResponseBadRequest()
    refusal = ""
    try:
        lifecycle.next_status(subscription.status, "paused")
        if not lifecycle.can_pause_cycle(subscription.price.cycle):
            refusal = _("Only monthly subscriptions can be paused.")
        elif subscription.cancel_at:
            refusal = _("Undo the cancellation before pausing.")
    except InvalidTransition as error:
        refusal = str(error)
    options = [{"months": m, "resume_at": lifecycle.pause_resume_at(now, m)} for m in lifecycle.PAUSE_MONTHS]
    context = {"account": account, "subscription": subscription, "options": options, "refusal": refusal, "now": now}
    return render(request, "subscriptions/pause.html", context)


@require_POST
@billing_manager_required
def resume(request):
    subscription = _live_subscription_or_redirect(request)
    if subscription is None:
        return redirect("subscriptions:billing")
    try:
        services.subscription_resume(subscription=subscription, actor=request.user, now=clock.now())
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    if subscription.status == lifecycle.PAST_DUE:
        messages.error(request, _("Your subscription resumed, but the payment for the new period failed."))
    else:
        messages.success(
            request,
            _("Your subscription is running again. Next billing date: %(date)s.")
            % {"date": _date(request.account, subscription.current_period_end)},
        )
    return redirect("subscriptions:billing")


# --- Cancellation undo, pay now, resubscribe -------------------------------------------------------------
@require_POST
@billing_manager_required
def undo_cancel(request):
    subscription = _live_subscription_or_redirect(request)
    if subscription is not None:
        try:
            services.subscription_undo_cancel(subscription=subscription, actor=request.user, now=clock.now())
        except InvalidTransition as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Your subscription continues. The cancellation was undone."))
    return redirect("subscriptions:billing")


@require_POST
@billing_manager_required
def pay_now(request):
    """Past due: try the open invoice again on the card on file."""
    subscription = _live_subscription_or_redirect(request)
    if subscription is None:
        return redirect("subscriptions:billing")
    try:
        payment = services.subscription_retry_now(subscription=subscription, actor=request.user, now=clock.now())
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    _message_for_payment(request, payment)
    return redirect("subscriptions:billing")


def _message_for_payment(request, payment: Payment | None) -> None:
    if payment is None or payment.status == Payment.SUCCEEDED:
        messages.success(request, _("Thank you: the open invoice is paid and your subscription is active."))
    elif payment.status == Payment.PENDING:
        messages.warning(request, _("We could not reach the payment processor. We will try again shortly."))
    else:
        messages.error(
            request,
            _("The payment failed again (%(reason)s). Please update your card.")
            % {"reason": declines.decline_reason(payment.failure_code)},
        )


@billing_manager_required
def subscribe(request, price_id: int):
    """Start (or restart after a cancellation) on a price, with a preview of today's charge."""
    account = request.account
    price = _price_or_404(request, price_id)
    url = reverse("subscriptions:subscribe", args=[price.pk])
    now = clock.now()
    if request.method == "POST":
        try:
            in_trial = services.subscription_preview_start(account=account, price=price, now=now).is_trial
            if _needs_verified_email(request, price=price, in_trial=in_trial):
                messages.error(request, _verify_first_message())
                return redirect(url)
            subscription = services.subscription_start(account=account, price=price, actor=request.user, now=now)
        except services.PaymentMethodRequired as error:
            messages.error(request, str(error))
            return redirect(_card_url(url))
        except services.PaymentFailed as error:
            messages.error(request, str(error))
            return redirect(url)
        except InvalidTransition as error:
            messages.error(request, str(error))
            return redirect("subscriptions:billing")
        if subscription.status == lifecycle.TRIALING:
            text = _("Welcome to %(plan)s. Your trial runs until %(date)s.")
            date = subscription.trial_end
        else:
            text = _("Welcome to %(plan)s. Your next billing date is %(date)s.")
            date = subscription.current_period_end
        messages.success(request, text % {"plan": price.plan.name, "date": _date(account, date)})
        return redirect("subscriptions:billing")
    if request.method != "GET":
        return HttpResponseBadRequest()
    try:
        preview = services.subscription_preview_start(account=account, price=price, now=now)
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    previous = selectors.subscription_latest_for_account(account=account)
    context = {
        "account": account,
        "preview": preview,
        "previous": previous,
        "is_resubscribe": previous is not None and previous.price_id == price.pk,
        "card_url": _card_url(url),
        "now": now,
        "verify_required": _needs_verified_email(request, price=price, in_trial=preview.is_trial),
    }
    return render(request, "subscriptions/subscribe.html", context)


# --- Payment method -----------------------------------------------------------------------------------------
@require_GET
@billing_manager_required
@allow_stripe_js
@recent_login_required()
def card(request):
    """Card entry with Stripe.js: a SetupIntent is created for this page; the card never reaches us."""
    account = request.account
    next_url = _safe_next(request, request.GET.get("next"))
    try:
        setup_intent_id, client_secret = services.account_card_setup_start(account=account)
    except gateway.GatewayError:
        messages.error(request, _("Card entry is unavailable right now. Please try again in a few minutes."))
        return redirect("subscriptions:billing")
    subscription = selectors.subscription_live_for_account(account=account)
    context = {
        "account": account,
        "client_secret": client_secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": gateway.stripe_js_url(),
        "next": next_url,
        "is_past_due": subscription is not None and subscription.status == lifecycle.PAST_DUE,
    }
    return render(request, "subscriptions/card.html", context)


@require_POST
@billing_manager_required
@recent_login_required(return_to=lambda request: reverse("subscriptions:card"))
def card_finish(request):
    """After Stripe.js confirmed the SetupIntent: make its card the default (and retry if past due)."""
    account = request.account
    next_url = _safe_next(request, request.POST.get("next"))
    setup_intent_id = request.POST.get("setup_intent_id", "").strip()
    retry_url = f"{reverse('subscriptions:card')}?{urlencode({'next': next_url})}"
    if not setup_intent_id.startswith("seti_"):
        return bad_request(request, _("This card setup did not complete."), back_url=retry_url)
    before = selectors.subscription_live_for_account(account=account)
    try:
        card = services.account_card_setup_finish(
            account=account, setup_intent_id=setup_intent_id, actor=request.user, now=clock.now()
        )
    except (InvalidTransition, gateway.GatewayError):
        messages.error(request, _("This card setup did not complete. Nothing was changed; please try again."))
        return redirect(retry_url)
    text = _("Your %(brand)s card ending in %(last4)s is now your default payment method.") % {
        "brand": card.brand.capitalize(),
        "last4": card.last4,
    }
    if before is not None and before.status == lifecycle.PAST_DUE:
        after = selectors.subscription_latest_for_account(account=account)
        if after is not None and after.status == lifecycle.ACTIVE:
            text = "{} {}".format(text, _("The open invoice is paid and your subscription is active again."))
        else:
            messages.success(request, text)
            messages.error(request, _("The open invoice could not be paid with this card. Please try another card."))
            return redirect("subscriptions:billing")
    messages.success(request, text)
    return redirect(next_url)


# --- Invoices ---------------------------------------------------------------------------------------------------
INVOICES_PER_PAGE = 25


@require_GET
@billing_manager_required
def invoices(request):
    paginator = Paginator(selectors.account_invoices(account=request.account), INVOICES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "subscriptions/invoices.html", {"account": request.account, "page": page})


@require_GET
@billing_manager_required
def invoice_detail(request, invoice_id: int):
    invoice = selectors.invoice_for_account(account=request.account, pk=invoice_id)
    if invoice is None:
        raise Http404(_("No such invoice."))
    return render(request, "subscriptions/invoice.html", {"account": request.account, "invoice": invoice})


@require_http_methods(["GET", "POST"])
@billing_manager_required
@allow_stripe_js
def payment_authenticate(request, invoice_id):
    """Complete a renewal payment the bank wants to authenticate, on-session with Stripe.js.

    GET shows the page (Stripe is asked for the intent's client secret: the page needs it);
    the script confirms the payment in the browser, then POSTs here, and the server asks Stripe
    what happened before anything changes.
    """
    invoice = get_object_or_404(
        Invoice.objects.select_related("account", "price__plan"), pk=invoice_id, account=request.account
    )
    if request.method == "POST":
        return _payment_authenticate_finish(request, invoice)
    payment = selectors.payment_requiring_action(invoice=invoice)
    if payment is None:
        messages.info(request, _("This invoice has no payment waiting for your confirmation."))
        return redirect("subscriptions:billing")
    try:
        intent = gateway.payment_intent_status(payment_intent_id=payment.stripe_payment_intent_id)
    except gateway.GatewayError:
        messages.error(request, _("We could not reach the payment processor. Please try again in a minute."))
        return redirect("subscriptions:billing")
    context = {
        "account": request.account,
        "invoice": invoice,
        "payment": payment,
        "needs_action": intent.status == gateway.REQUIRES_ACTION,
        "client_secret": intent.client_secret if intent.status == gateway.REQUIRES_ACTION else "",
        "stripe_js_url": gateway.stripe_js_url(),
        "publishable_key": gateway.publishable_key(),
    }
    return render(request, "subscriptions/payment_authenticate.html", context)


def _payment_authenticate_finish(request, invoice: Invoice):
    try:
        payment = services.payment_authentication_finish(invoice=invoice, actor=request.user, now=clock.now())
    except gateway.GatewayError:
        messages.error(request, _("We could not reach the payment processor. Please try again in a minute."))
        return redirect("subscriptions:payment-authenticate", invoice_id=invoice.pk)
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    if payment is None:
        messages.info(request, _("This invoice has no payment waiting for your confirmation."))
    elif payment.status == Payment.SUCCEEDED:
        messages.success(request, _("Thank you: the payment is confirmed and your subscription is active."))
    elif payment.status == Payment.REQUIRES_ACTION:
        messages.warning(request, _("The payment is not confirmed yet. Please confirm it with your bank."))
        return redirect("subscriptions:payment-authenticate", invoice_id=invoice.pk)
    else:
        messages.error(
            request,
            _(
                "Your bank did not confirm the payment, so nothing was charged. "
                "Please update your card: we will try again at once."
            ),
        )
    return redirect("subscriptions:billing")
