"""Customer billing pages: thin views that read through selectors and change through services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors


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
    }
    return render(request, "subscriptions/billing.html", context)
