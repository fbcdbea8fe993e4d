"""Re-authentication: ask for the password again before sensitive steps when the login is old.

The time the password was last checked is kept in the session (set at login and by the
re-authentication page). Card changes and the final cancellation step require it to be younger
than ACCOUNTS_REAUTH_MINUTES (15).
"""

from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from billing_portal.lib import clock
from billing_portal.lib.redirects import local_url

SESSION_KEY = "password_checked_at"


@receiver(user_logged_in)
def _remember_login_time(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = clock.now().timestamp()


def login_is_recent(request) -> bool:
    checked_at = request.session.get(SESSION_KEY)
    if checked_at is None:
        return False
    age = clock.now().timestamp() - float(checked_at)
    return age < timedelta(minutes=settings.ACCOUNTS_REAUTH_MINUTES).total_seconds()


def recent_login_required(return_to=None):
    """Send the user to re-enter their password first when their login is older than allowed.

    A GET comes back to the same page; a POST cannot be replayed, so it comes back to the page
    `return_to(request, *args, **kwargs)` names (the form it was sent from).
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if login_is_recent(request):
                return view(request, *args, **kwargs)
            if request.method == "GET" or return_to is None:
                next_url = request.get_full_path()
            else:
                next_url = return_to(request, *args, **kwargs)
            return redirect(f"{reverse('accounts:reauthenticate')}?{urlencode({'next': next_url})}")

        return wrapped

    return decorator


class PasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


@require_http_methods(["GET", "POST"])
@login_required
def reauthenticate(request):
    """Check the password again; on success go back to where the user was going."""
    next_url = local_url(request, request.POST.get("next") or request.GET.get("next"), reverse("subscriptions:billing"))
    form = PasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(request, username=request.user.email, password=form.cleaned_data["password"])
        if user is not None and user.pk == request.user.pk:
            request.session[SESSION_KEY] = clock.now().timestamp()
            messages.success(request, _("Thank you: your password is confirmed."))
            return redirect(next_url)
        form.add_error("password", _("That is not your password. Please try again."))
    return render(request, "registration/reauthenticate.html", {"form": form, "next": next_url})
