"""View decorators shared by the customer pages."""

from functools import wraps

from . import gateway


def allow_stripe_js(view):
    """Let this page (and only this page) load Stripe.js and its frames under the CSP."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response._csp_update = gateway.stripe_js_csp()
        return response

    return wrapped
