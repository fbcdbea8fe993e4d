"""Attach the logged-in user's account and membership to the request."""

from django.utils.functional import SimpleLazyObject

from .models import Membership


def _membership(request) -> Membership | None:
    if not request.user.is_authenticated:
        return None
    return Membership.objects.select_related("account").filter(user=request.user).first()


def current_account(get_response):
    """`request.membership` and `request.account` (None for anonymous users and staff without one)."""

    def middleware(request):
        request.membership = SimpleLazyObject(lambda: _membership(request))
        request.account = SimpleLazyObject(lambda: request.membership.account if request.membership else None)
        return get_response(request)

    return middleware
