"""Customer billing pages: thin views that read through selectors and change through services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from billing_portal.lib import clock

from . import gateway, selectors, services
from .lifecycle import InvalidTransition
from .models import Invoice, Payment


@login_required
def billing(request):
    """The billing summary: plan, cycle, status, next billing date, card, credit."""
    account = request.account
    if account is None:
        return render(request, "subscriptions/no_account.html", status=200)
    subscription = selectors.subscription_latest_for_account(account=account)
    context = {
        "account": account,
        "membership": request.membership,
        "subscription": subscription,
        "credit_balance_minor": selectors.account_credit_balance_minor(account=account),
        "dunning": selectors.subscription_dunning(subscription=subscription),
        "payment_action": selectors.payment_requiring_action_for_account(account=account),
    }
    return render(request, "subscriptions/billing.html", context)


def _role_required(request):
    """403 for a member: the page names who can act."""
    context = {"managers": selectors.account_billing_managers(account=request.account)}
    return render(request, "subscriptions/role_required.html", context, status=403)


@login_required
def payment_authenticate(request, invoice_id):
    """Complete a renewal payment the bank wants to authenticate, on-session with Stripe.js.

    GET shows the page (Stripe is asked for the intent's client secret: the page needs it);
    the script confirms the payment in the browser, then POSTs here, and the server asks Stripe
    what happened before anything changes.
    """
    if request.account is None:
        raise Http404
    invoice = get_object_or_404(
        Invoice.objects.select_related("account", "price__plan"), pk=invoice_id, account=request.account
    )
    if not request.membership.can_manage_billing:
        return _role_required(request)
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
