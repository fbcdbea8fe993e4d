"""Account views: login and logout (with a message), the language switcher, the emails' language."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from . import services


class LoginView(auth_views.LoginView):
    """Django's login, which also says who is now logged in."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("You are logged in as %(email)s.") % {"email": form.get_user().email})
        return response


class LogoutView(auth_views.LogoutView):
    """Django's logout (POST only), which then says so on the login page."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You are logged out."))
        return response


def language_name(code: str) -> str:
    """A language as its speakers write it, for choosing: "Nederlands", "Français", "Italiano"."""
    return translation.get_language_info(code)["name_local"].capitalize()


def language_in_sentence(code: str) -> str:
    """A language named in the active language, to use inside a sentence ("in het Frans", "en français")."""
    name = str(translation.get_language_info(code)["name_translated"])
    # French and Italian write language names in lower case (Django's catalogues capitalise them).
    return name.lower() if translation.get_language() in ("fr", "it") else name


def _safe_next(request) -> str:
    next_url = request.POST.get("next", "")
    allowed = {request.get_host()}
    return next_url if url_has_allowed_host_and_scheme(next_url, allowed, request.is_secure()) else "/"


@require_POST
def language_switch(request):
    """Django's set_language (a cookie, kept a year), then a message in the chosen language."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        # Django would accept any language it has a catalogue for; the portal speaks these four.
        messages.error(request, _("Choose one of the languages offered."))
        return redirect(_safe_next(request))
    response = set_language(request)
    if response.status_code == 302:
        with translation.override(language):
            text = _("The pages are now shown in %(language)s.") % {"language": language_in_sentence(language)}
            messages.success(request, text)
    return response


@require_POST
@login_required
def email_language(request):
    """Owners and billing admins choose the language of the account's emails (and invoice lines)."""
    back = reverse("privacy:account") + "#email-language"
    if request.account is None or not request.membership.can_manage_billing:
        from subscriptions.selectors import account_billing_managers

        managers = account_billing_managers(account=request.account) if request.account else []
        return render(request, "subscriptions/forbidden.html", {"managers": managers}, status=403)
    language = request.POST.get("language", "")
    try:
        changed = services.account_language_set(account=request.account, language=language)
    except ValueError as error:
        messages.error(request, str(error))
        return redirect(back)
    if changed:
        text = _("Emails about this account now go out in %(language)s.")
    else:
        text = _("Emails about this account already go out in %(language)s.")
    messages.success(request, text % {"language": language_in_sentence(language)})
    return redirect(back)
