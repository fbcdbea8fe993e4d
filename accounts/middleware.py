"""Attach the logged-in user's membership and account to the request."""

from .models import Membership


def current_account(get_response):
    """`request.membership` and `request.account`: None for anonymous users and staff without one."""

    def middleware(request):
        request.membership = None
        if request.user.is_authenticated:
            request.membership = Membership.objects.select_related("account").filter(user=request.user).first()
        request.account = request.membership.account if request.membership else None
        return get_response(request)

    return middleware
