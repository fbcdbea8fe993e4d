"""Signup, the card step of a paid signup, email verification, and the team page with invitations.

Thin views: parse the form, call one service, redirect with a message. Team objects are looked
up within `request.account` only; only owners manage the team.
"""

from functools import wraps
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.i18n import set_language

from billing_portal.lib import clock
from billing_portal.lib.feedback import bad_request
from billing_portal.lib.redirects import local_url
from subscriptions import activity, gateway, lifecycle, pricing
from subscriptions import selectors as subscription_selectors
from subscriptions import services as subscription_services
from subscriptions.decorators import allow_stripe_js
from subscriptions.lifecycle import InvalidTransition
from subscriptions.views import billing_manager_required

from . import selectors, services, tokens
from .forms import AcceptInvitationForm, InviteForm, RoleForm, SignupForm
from .models import Invitation, Membership

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _local(request, url: str | None, default: str) -> str:
    return local_url(request, url, default)


def _date(account, value) -> str:
    return activity.date_in(value, ZoneInfo(account.timezone))


def _language() -> str:
    language = (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


# --- Signup -----------------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def signup(request):
    """Email, password and account name for the plan picked on the pricing page (?price=<id>)."""
    price_id = request.POST.get("price") if request.method == "POST" else request.GET.get("price")
    if request.user.is_authenticated:
        # A customer changes plan from their own account; a login belongs to one account.
        if price_id and str(price_id).isdigit():
            return redirect("subscriptions:change", price_id=int(price_id))
        return redirect("subscriptions:billing")
    price = selectors.price_for_signup(pk=price_id)
    if request.method == "GET":
        if price is None:
            if price_id:
                messages.error(request, _("This plan is not available any more. Please choose another one."))
            else:
                messages.info(request, _("Choose a plan to get started."))
            return redirect("subscriptions:pricing")
        return _signup_page(request, SignupForm(initial={"price": price.pk}), price)
    form = SignupForm(request.POST)
    valid = form.is_valid()
    email = form.cleaned_data.get("email")
    if email and selectors.email_has_login(email=email):
        return _signup_page(request, form, price, taken_email=email)
    if price is None:
        # A tampered or outdated price id: nothing is created, the visitor picks again.
        return _signup_page(request, form, None, status=400)
    if not valid:
        return _signup_page(request, form, price)
    try:
        result = services.account_signup(
            email=email,
            password=form.cleaned_data["password"],
            name=form.cleaned_data["name"],
            account_name=form.cleaned_data["account_name"],
            price=price,
            language=_language(),
            now=clock.now(),
        )
    except services.EmailTaken:
        return _signup_page(request, form, price, taken_email=email)
    except services.SignupRefused as error:
        form.add_error(None, str(error))
        return _signup_page(request, form, price, status=503)
    login(request, result.user, backend=LOGIN_BACKEND)
    account, subscription = result.account, result.subscription
    if result.start_error:
        messages.error(request, "{} {}".format(result.start_error, _("Your account is ready: please choose a plan.")))
        return redirect("subscriptions:pricing")
    if result.needs_payment:
        return redirect("accounts:signup-pay", price_id=price.pk)
    if subscription.status == lifecycle.TRIALING:
        text = _("Welcome! Your free trial of %(plan)s runs until %(date)s. No card is needed until then.") % {
            "plan": price.plan.name,
            "date": _date(account, subscription.trial_end),
        }
    else:
        text = _("Welcome to %(plan)s!") % {"plan": price.plan.name}
    messages.success(request, text)
    return redirect("subscriptions:billing")


def _signup_page(request, form, price, *, taken_email: str = "", status: int = 200):
    login_url = reverse("accounts:login")
    if price is not None:
        login_url += "?" + urlencode({"next": reverse("subscriptions:change", args=[price.pk])})
    context = {
        "form": form,
        "price": price,
        "offer": _offer_for(price),
        "taken_email": taken_email,
        "login_url": login_url,
        "pricing_url": reverse("subscriptions:pricing") + (f"?cycle={price.cycle}" if price else ""),
    }
    return render(request, "accounts/signup.html", context, status=status)


def _offer_for(price):
    """Per month and the saving against monthly billing, as the pricing page shows them."""
    if price is None:
        return None
    monthly = price.plan.prices.available().filter(cycle=lifecycle.MONTHLY, currency=price.currency).first()
    saving, percent = pricing.annual_saving(price, monthly)
    return {"per_month_minor": pricing.per_month_minor(price), "saving_minor": saving, "saving_percent": percent}


# --- Paid signup: verify the address, then the card pays the first invoice --------------------------
@require_http_methods(["GET", "POST"])
@billing_manager_required
@allow_stripe_js
def signup_pay(request, price_id: int):
    """Step 2 of a paid signup: once the email is verified, the Card Element pays the first invoice."""
    account = request.account
    price = subscription_selectors.price_available_for_account(account=account, pk=price_id)
    if price is None:
        raise Http404(_("This price is not available."))
    url = reverse("accounts:signup-pay", args=[price.pk])
    if subscription_selectors.subscription_live_for_account(account=account) is not None:
        messages.info(request, _("Your account already has a subscription."))
        return redirect("subscriptions:billing")
    now = clock.now()
    try:
        preview = subscription_services.subscription_preview_start(account=account, price=price, now=now)
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    if preview.is_trial or price.is_free:
        return redirect("subscriptions:subscribe", price_id=price.pk)
    if request.method == "POST":
        return _signup_pay_finish(request, price, url)
    context = {
        "account": account,
        "price": price,
        "preview": preview,
        "now": now,
        "client_secret": "",
        "verify_days": settings.ACCOUNTS_VERIFY_DAYS,
    }
    if request.user.is_email_verified:
        try:
            _setup_intent_id, context["client_secret"] = subscription_services.account_card_setup_start(account=account)
        except gateway.GatewayError:
            messages.error(request, _("Card entry is unavailable right now. Please try again in a few minutes."))
        context.update(publishable_key=settings.STRIPE_PUBLISHABLE_KEY, stripe_js_url=gateway.stripe_js_url())
    return render(request, "accounts/signup_pay.html", context)


def _signup_pay_finish(request, price, url: str):
    """Save the card Stripe.js confirmed, then start the subscription (the first invoice is charged)."""
    account = request.account
    setup_intent_id = request.POST.get("setup_intent_id", "").strip()
    if not setup_intent_id.startswith("seti_"):
        return bad_request(request, _("This card setup did not complete."), back_url=url)
    if not request.user.is_email_verified:
        messages.error(request, _("Please verify your email address before starting a paid plan."))
        return redirect(url)
    now = clock.now()
    try:
        subscription_services.account_card_setup_finish(
            account=account, setup_intent_id=setup_intent_id, actor=request.user, now=now
        )
    except (InvalidTransition, gateway.GatewayError):
        messages.error(request, _("This card setup did not complete. Nothing was charged; please try again."))
        return redirect(url)
    try:
        subscription = subscription_services.subscription_start(
            account=account, price=price, actor=request.user, now=now
        )
    except subscription_services.PaymentFailed as error:
        messages.error(request, "{} {}".format(error, _("Please try another card.")))
        return redirect(url)
    except subscription_services.PaymentPending as error:
        messages.warning(request, str(error))
        return redirect("subscriptions:billing")
    except InvalidTransition as error:
        messages.error(request, str(error))
        return redirect("subscriptions:billing")
    messages.success(
        request,
        _("Welcome to %(plan)s! Your payment went through; your next billing date is %(date)s.")
        % {"plan": price.plan.name, "date": _date(account, subscription.current_period_end)},
    )
    return redirect("subscriptions:billing")


# --- Email verification --------------------------------------------------------------------------------
@require_GET
def verify_email(request, token: str):
    """The link from the verification email; it works in any browser, logged in or not."""
    try:
        verified = services.user_verify_email(token=token, now=clock.now())
    except tokens.LinkExpired:
        return _link_problem(
            request,
            _("This link has expired"),
            _("Verification links work for %(days)s days. Log in and ask for a new link.")
            % {"days": settings.ACCOUNTS_VERIFY_DAYS},
            resend=True,
        )
    except tokens.LinkInvalid:
        return _link_problem(
            request,
            _("This link is not valid"),
            _("The link may be incomplete: copy the whole address from the email, or ask for a new link."),
            resend=True,
        )
    if verified.already:
        messages.info(request, _("Your email address is already verified. This link cannot be used again."))
    else:
        messages.success(request, _("Thank you: your email address is verified."))
    next_url = _local(request, verified.next_url, reverse("subscriptions:billing"))
    if request.user.is_authenticated and request.user.pk == verified.user.pk:
        return redirect(next_url)
    if request.user.is_authenticated:
        return redirect("subscriptions:billing")  # somebody else's session in this browser
    return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")


def _link_problem(request, title: str, text: str, *, resend: bool = False, status: int = 400):
    context = {"title": title, "text": text, "resend": resend and request.user.is_authenticated}
    return render(request, "accounts/link_problem.html", context, status=status)


@require_POST
@login_required
def verify_resend(request):
    next_url = _local(request, request.POST.get("next"), reverse("subscriptions:billing"))
    if request.user.is_email_verified:
        messages.info(request, _("Your email address is already verified."))
        return redirect(next_url)
    try:
        services.user_verification_send(user=request.user, next_url=next_url, now=clock.now())
    except services.VerificationRefused as error:
        messages.warning(request, str(error))
    else:
        messages.success(
            request,
            _("We sent a new link to %(email)s. It works for %(days)s days.")
            % {"email": request.user.email, "days": settings.ACCOUNTS_VERIFY_DAYS},
        )
    return redirect(next_url)


# --- Team ----------------------------------------------------------------------------------------------
def owner_required(view):
    """Logged in and an owner of the account; others are told who manages the team (403)."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if request.account is None:
            return render(request, "subscriptions/no_account.html", status=403)
        if request.membership.role != Membership.OWNER:
            owners = selectors.account_owners(account=request.account)
            return render(request, "accounts/team_forbidden.html", {"owners": owners}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@owner_required
def team(request):
    return _team_page(request, InviteForm())


def _team_page(request, invite_form, status: int = 200):
    account = request.account
    now = clock.now()
    context = {
        "account": account,
        "members": selectors.account_members(account=account),
        "invitations": [
            {"invitation": i, "expired": i.status(now) == Invitation.EXPIRED}
            for i in selectors.account_invitations_open(account=account, now=now)
        ],
        "invite_form": invite_form,
        "roles": Membership.ROLE_CHOICES,
        "invite_days": settings.ACCOUNTS_INVITE_DAYS,
        "now": now,
    }
    return render(request, "accounts/team.html", context, status=status)


@require_POST
@owner_required
def team_invite(request):
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, form, status=400)
    try:
        invitation, emailed = services.invitation_create(
            account=request.account,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            now=clock.now(),
        )
    except services.TeamChangeRefused as error:
        form.add_error("email", str(error))
        return _team_page(request, form, status=400)
    if emailed:
        messages.success(
            request,
            _("We emailed an invitation to %(email)s. It works for %(days)s days.")
            % {"email": invitation.email, "days": settings.ACCOUNTS_INVITE_DAYS},
        )
    else:
        messages.error(
            request,
            _("The invitation to %(email)s is saved, but the email could not be sent. Please invite again.")
            % {"email": invitation.email},
        )
    return redirect("accounts:team")


@require_POST
@owner_required
def team_role(request, membership_id: int):
    form = RoleForm(request.POST)
    if not form.is_valid():
        return bad_request(request, _("Choose one of the roles offered."), back_url=reverse("accounts:team"))
    _member_or_404(request, membership_id)
    try:
        membership = services.membership_change_role(
            account=request.account,
            membership_id=membership_id,
            role=form.cleaned_data["role"],
            actor=request.user,
            now=clock.now(),
        )
    except services.TeamChangeRefused as error:
        messages.error(request, str(error))
        return redirect("accounts:team")
    messages.success(
        request,
        _("%(name)s is now %(role)s.")
        % {"name": membership.user.get_full_name(), "role": membership.get_role_display().lower()},
    )
    if membership.user_id == request.user.pk and membership.role != Membership.OWNER:
        return redirect("subscriptions:billing")  # no longer an owner: the team page is not theirs
    return redirect("accounts:team")


@require_POST
@owner_required
def team_remove(request, membership_id: int):
    _member_or_404(request, membership_id)
    try:
        user = services.membership_remove(
            account=request.account, membership_id=membership_id, actor=request.user, now=clock.now()
        )
    except services.TeamChangeRefused as error:
        messages.error(request, str(error))
        return redirect("accounts:team")
    messages.success(request, _("%(name)s was removed from your team.") % {"name": user.get_full_name()})
    return redirect("accounts:team")


def _member_or_404(request, membership_id: int) -> Membership:
    membership = Membership.objects.filter(account=request.account, pk=membership_id).first()
    if membership is None:
        raise Http404(_("This person is not in your team."))
    return membership


@require_POST
@owner_required
def team_revoke(request, invitation_id: int):
    if selectors.invitation_for_account(account=request.account, pk=invitation_id) is None:
        raise Http404(_("There is no such invitation."))
    try:
        invitation = services.invitation_revoke(account=request.account, invitation_id=invitation_id, now=clock.now())
    except services.TeamChangeRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("The invitation to %(email)s was withdrawn; its link no longer works.") % {"email": invitation.email},
        )
    return redirect("accounts:team")


# --- Accepting an invitation -------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    """The invitee chooses a name and password and joins the account."""
    try:
        invitation = selectors.invitation_by_id(pk=tokens.invitation_token_read(token))
    except tokens.LinkInvalid:
        invitation = None
    if invitation is None:
        return _link_problem(
            request,
            _("This invitation link is not valid"),
            _("The link may be incomplete: copy the whole address from the email, or ask for a new invitation."),
        )
    now = clock.now()
    refusal = services.invitation_refusal(invitation=invitation, now=now)
    if refusal:
        status = 410 if invitation.status(now) != Invitation.PENDING else 409
        return _link_problem(request, _("This invitation cannot be used"), refusal, status=status)
    if request.user.is_authenticated:
        context = {"invitation": invitation}
        return render(request, "accounts/invitation_logged_in.html", context, status=409)
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(
                invitation=invitation,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
                now=now,
            )
        except services.TeamChangeRefused as error:
            return _link_problem(request, _("This invitation cannot be used"), str(error), status=409)
        login(request, user, backend=LOGIN_BACKEND)
        messages.success(request, _("Welcome to %(account)s!") % {"account": invitation.account.name})
        return redirect("subscriptions:billing")
    context = {"invitation": invitation, "form": form}
    return render(request, "accounts/invitation.html", context, status=400 if form.errors else 200)


# --- Login, logout and languages ---------------------------------------------------------------------------
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
    return local_url(request, request.POST.get("next", ""), "/")


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
