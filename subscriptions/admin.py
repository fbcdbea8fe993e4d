"""The operators' admin: every change of state goes through services.py, never a field edit.

Each action checks its own permission (`has_<action>_permission`, from the custom permissions
on the models) and reports, for a bulk action, how many objects changed and why the others
were refused. Actions that need input (pause, change price, extend trial, refund) show an
intermediate page first; the change page of an object offers the same actions as buttons.
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing_portal.lib import clock
from billing_portal.lib.money import minor_digits

from . import gateway, lifecycle, services
from .lifecycle import InvalidTransition
from .models import (
    ONE_ACTIVE_PRICE_MESSAGE,
    PRICE_HELD_MESSAGE,
    CreditEntry,
    Invoice,
    InvoiceLine,
    Payment,
    Plan,
    Price,
    ReconciliationRun,
    Refund,
    StripeEvent,
    Subscription,
    SubscriptionEvent,
)
from .templatetags.billing import BADGES, money

admin.site.site_header = _("Billing portal admin")
admin.site.site_title = _("Billing portal admin")
admin.site.index_title = _("Operations")

ADMIN_CSS = {"all": ["css/admin-billing.css"]}
# Action buttons show progress and cannot be sent twice, as on the customer pages (static/js/forms.js).
ADMIN_JS = ["js/forms.js"]


def admin_url(obj, action: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{action}", args=[obj.pk])


def link(obj, text=None) -> str:
    if obj is None:
        return "—"
    return format_html('<a href="{}">{}</a>', admin_url(obj), text if text is not None else str(obj))


def stripe_link(payment_intent_id: str) -> str:
    if not payment_intent_id:
        return "—"
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
        gateway.dashboard_url(payment_intent_id=payment_intent_id),
        payment_intent_id,
    )


def badge_html(badge: str) -> str:
    return format_html('<span class="billing-badge billing-badge-{}">{}</span>', badge, BADGES.get(badge, badge))


def has_perm(codename: str):
    """A has_<action>_permission method for the custom permission `subscriptions.<codename>`."""

    def check(self, request, obj=None) -> bool:
        return request.user.has_perm(f"subscriptions.{codename}")

    check.__name__ = f"has_{codename}_permission"
    return check


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services only: visible, never edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OperatorActionsMixin:
    """Run a service on each selected object and report the outcome as messages."""

    def _require(self, request, action: str) -> None:
        # Django hides actions the user may not run; this refuses a forged POST as well.
        if not getattr(self, f"has_{action}_permission")(request):
            raise PermissionDenied

    def _each(self, request, queryset, change, *, done_message) -> int:
        """Apply `change(obj, now)` to each object; report successes and each refusal with its reason."""
        now = clock.now()
        done, refused = 0, []
        for obj in queryset:
            try:
                change(obj, now)
            except InvalidTransition as error:
                refused.append((obj, str(error)))
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                ngettext("%(count)d was refused:", "%(count)d were refused:", len(refused)) % {"count": len(refused)},
                messages.ERROR,
            )
            for obj, reason in refused:
                self.message_user(request, f"{self._label(obj)}: {reason}", messages.ERROR)
        return done

    def _label(self, obj) -> str:
        return str(obj)

    def _back(self, request, queryset):
        """Back to the object's page when the action came from there, else to the list."""
        object_id = request.POST.get("_from_object", "")
        if object_id and queryset.filter(pk=object_id).exists():
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
            )
        return None

    def _intermediate(self, request, queryset, *, action: str, title: str, form, template: str, **context):
        """The page between choosing an action and confirming it, carrying the selection along."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "action": action,
            "objects": list(queryset),
            "form": form,
            "from_object": request.POST.get("_from_object", ""),
            "media": self.media + form.media,
            **context,
        }
        return TemplateResponse(request, template, context)


def account_filter(path: str):
    """A list filter `?account=<id>` (links from the account page), listing only the chosen account."""

    class AccountFilter(admin.SimpleListFilter):
        title = _("account")
        parameter_name = "account"

        def lookups(self, request, model_admin):
            from accounts.models import Account

            value = self.value()
            if not value or not value.isdigit():
                return []
            return [(account.pk, account.name) for account in Account.objects.filter(pk=value)]

        def queryset(self, request, queryset):
            value = self.value()
            if value and value.isdigit():
                return queryset.filter(**{path: int(value)})
            return queryset

    return AccountFilter


# --- Plans and prices ------------------------------------------------------------------------------------
class FeaturesField(forms.CharField):
    """A plan's features as a textarea, one per line, with optional `[nl]` sections per language.

    Lines before any section are English (and every language without its own section); stored
    as a list when there are no sections, else as {language: lines} (`Plan.features_in`).
    """

    widget = forms.Textarea(attrs={"rows": 8, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(line) for line in value)
        if isinstance(value, dict):
            blocks = ["\n".join(value.get("en", []))]
            blocks += [f"[{code}]\n" + "\n".join(lines) for code, lines in value.items() if code != "en"]
            return "\n".join(block for block in blocks if block)
        return value

    def to_python(self, value):
        if isinstance(value, list | dict):
            return value
        sections: dict[str, list[str]] = {"en": []}
        current = "en"
        codes = {code for code, _name in settings.LANGUAGES}
        for raw in (value or "").splitlines():
            line = raw.strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip().lower()
                if current not in codes:
                    raise forms.ValidationError(
                        _("Unknown language %(section)s: use one of %(codes)s."),
                        params={"section": line, "codes": ", ".join(sorted(f"[{code}]" for code in codes))},
                    )
                sections.setdefault(current, [])
                continue
            sections[current].append(line)
        if len(sections) == 1:
            return sections["en"]
        return {code: lines for code, lines in sections.items() if lines}


class PlanForm(forms.ModelForm):
    features = FeaturesField(
        required=False,
        help_text=_(
            "One feature per line, shown on the plan cards. For the other languages, add a line "
            "[nl], [fr] or [it] followed by that language's lines; a language without them shows the "
            "English lines."
        ),
    )

    class Meta:
        model = Plan
        fields = ["name", "code", "rank", "features", "trial_days", "is_active"]


class PriceForm(forms.ModelForm):
    """A price; amount, currency and cycle are shown read-only once customers hold it."""

    class Meta:
        model = Price
        fields = ["cycle", "amount_minor", "currency", "is_active"]
        labels = {"amount_minor": _("Amount (minor units)")}
        help_texts = {"amount_minor": _("In cents: 1900 is 19.00."), "currency": _("ISO code, e.g. eur.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        held = getattr(self.instance, "held", None)
        self.held = self.instance.is_held() if held is None else held
        if self.held:
            # Disabled fields ignore what is posted: a tampered form cannot change them either.
            for name in Price.HELD_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Held by customers: fixed. Add a new price instead.")

    def clean_currency(self):
        return (self.cleaned_data.get("currency") or "").strip().lower()


class PriceInlineFormSet(forms.BaseInlineFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        if DELETION_FIELD_NAME in form.fields and getattr(form, "held", False):
            form.fields[DELETION_FIELD_NAME].disabled = True

    def clean(self):
        super().clean()
        active = set()
        for form in self.forms:
            if form.instance.pk and self._should_delete_form(form) and form.instance.is_held():
                raise forms.ValidationError(PRICE_HELD_MESSAGE)
            data = getattr(form, "cleaned_data", None)
            if not data or self._should_delete_form(form) or not data.get("is_active"):
                continue
            # The database allows one active price per cycle and currency; an inline row is not
            # checked against it by Django (the plan is the inline's key), so check it here.
            key = (data.get("cycle"), data.get("currency"))
            if key in active:
                raise forms.ValidationError(ONE_ACTIVE_PRICE_MESSAGE)
            active.add(key)


def _with_held(queryset):
    held = Subscription.objects.filter(Q(price=OuterRef("pk")) | Q(scheduled_price=OuterRef("pk")))
    return queryset.annotate(held=Exists(held))


class PriceInline(admin.TabularInline):
    model = Price
    form = PriceForm
    formset = PriceInlineFormSet
    extra = 1
    fields = ["cycle", "amount_minor", "currency", "is_active", "shown_as", "held_by_customers"]
    readonly_fields = ["shown_as", "held_by_customers"]

    def get_queryset(self, request):
        return _with_held(super().get_queryset(request))

    @admin.display(description=_("Shown as"))
    def shown_as(self, obj):
        return money(obj.amount_minor, obj.currency) if obj.pk else "—"

    @admin.display(description=_("Held by customers"), boolean=True)
    def held_by_customers(self, obj):
        return bool(getattr(obj, "held", False)) if obj.pk else None


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanForm
    list_display = ["name", "code", "rank", "trial_days", "is_active", "price_list"]
    list_filter = ["is_active"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    inlines = [PriceInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("prices")

    @admin.display(description=_("Prices"))
    def price_list(self, obj):
        return ", ".join(
            f"{price.get_cycle_display()} {money(price.amount_minor, price.currency)}"
            for price in obj.prices.all()
            if price.is_active
        )


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    form = PriceForm
    list_display = ["plan", "cycle", "amount", "currency", "is_active", "held_by_customers"]
    list_filter = ["cycle", "currency", "is_active", "plan"]
    list_select_related = ["plan"]
    fields = ["plan", "cycle", "amount_minor", "currency", "is_active"]

    def get_queryset(self, request):
        return _with_held(super().get_queryset(request))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            form.base_fields["plan"].disabled = True  # a price never moves to another plan
        return form

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_held():
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def amount(self, obj):
        return money(obj.amount_minor, obj.currency)

    @admin.display(description=_("Held by customers"), boolean=True)
    def held_by_customers(self, obj):
        return bool(getattr(obj, "held", False))


# --- Subscriptions -----------------------------------------------------------------------------------------
class CancelingFilter(admin.SimpleListFilter):
    title = _("canceling")
    parameter_name = "canceling"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        canceling = Q(cancel_at__isnull=False, status__in=[lifecycle.TRIALING, lifecycle.ACTIVE])
        if self.value() == "yes":
            return queryset.filter(canceling)
        if self.value() == "no":
            return queryset.exclude(canceling)
        return queryset


class PastDueForFilter(admin.SimpleListFilter):
    title = _("past due for more than")
    parameter_name = "past_due_days"
    DAYS = (3, 7, 14)

    def lookups(self, request, model_admin):
        return [(str(days), ngettext("%(days)d day", "%(days)d days", days) % {"days": days}) for days in self.DAYS]

    def queryset(self, request, queryset):
        if self.value() not in {str(days) for days in self.DAYS}:
            return queryset
        since = clock.now() - timedelta(days=int(self.value()))
        return queryset.filter(status=lifecycle.PAST_DUE, past_due_since__lt=since)


class PauseForm(forms.Form):
    months = forms.TypedChoiceField(
        label=_("Pause for"),
        coerce=int,
        choices=[
            (months, ngettext("%(n)d month", "%(n)d months", months) % {"n": months})
            for months in lifecycle.PAUSE_MONTHS
        ],
    )


class ExtendTrialForm(forms.Form):
    days = forms.IntegerField(
        label=_("Extend the trial by (days)"), min_value=1, max_value=services.MAX_TRIAL_EXTENSION_DAYS, initial=7
    )


class ChangePriceForm(forms.Form):
    price = forms.ModelChoiceField(
        label=_("New price"), queryset=Price.objects.available().select_related("plan").order_by("plan__rank", "cycle")
    )
    at_period_end = forms.BooleanField(
        label=_("Switch at the end of the current period"),
        required=False,
        help_text=_("No credit and nothing forfeited; the change waits for the renewal."),
    )


class SubscriptionEventInline(ReadOnlyInline):
    model = SubscriptionEvent
    show_change_link = False
    fields = ["created_at", "kind", "from_status", "to_status", "actor_kind", "actor", "reason"]
    readonly_fields = fields
    verbose_name_plural = _("History")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class SubscriptionInvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ["invoice_number", "billing_reason", "status", "amount_due", "period_start", "period_end", "paid_at"]
    readonly_fields = fields

    @admin.display(description=_("Invoice"))
    def invoice_number(self, obj):
        return obj.number

    @admin.display(description=_("Amount due"))
    def amount_due(self, obj):
        return money(obj.amount_due_minor, obj.currency)


SUBSCRIPTION_ACTIONS = [
    # name, label, whether it needs a page of its own, when the rules allow it
    ("cancel_now", _("Cancel now"), False, lambda sub: sub.status != lifecycle.CANCELED),
    (
        "cancel_at_period_end",
        _("Cancel at period end"),
        False,
        lambda sub: lifecycle.can(sub.status, "cancel_scheduled") and not sub.cancel_at,
    ),
    ("undo_cancel", _("Undo cancellation"), False, lambda sub: sub.is_canceling),
    (
        "pause",
        _("Pause…"),
        True,
        lambda sub: sub.status == lifecycle.ACTIVE and not sub.cancel_at and lifecycle.can_pause_cycle(sub.price.cycle),
    ),
    ("resume", _("Resume"), False, lambda sub: sub.status == lifecycle.PAUSED),
    ("change_price", _("Change price…"), True, lambda sub: lifecycle.can(sub.status, "price_changed")),
    (
        "retry_payment",
        _("Retry payment now"),
        False,
        lambda sub: sub.status == lifecycle.PAST_DUE or sub.next_retry_at is not None,
    ),
    ("extend_trial", _("Extend trial…"), True, lambda sub: sub.status == lifecycle.TRIALING),
]
# The permission each action needs (a codename on Subscription's Meta).
SUBSCRIPTION_ACTION_PERMISSIONS = {
    "cancel_now": "cancel",
    "cancel_at_period_end": "cancel",
    "undo_cancel": "undo_cancel",
    "pause": "pause",
    "resume": "resume",
    "change_price": "change_price",
    "retry_payment": "retry_payment",
    "extend_trial": "extend_trial",
}


@admin.register(Subscription)
class SubscriptionAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    list_display = [
        "account_link",
        "plan_and_cycle",
        "status_badge",
        "amount",
        "current_period_end",
        "cancel_at",
        "past_due_since",
    ]
    # The account column is a link to the account already: a second link around it (Django links
    # the first column to the subscription) would nest two links, an empty one for screen readers.
    list_display_links = ["plan_and_cycle"]
    list_filter = ["status", "price__plan", "price__cycle", CancelingFilter, PastDueForFilter]
    search_fields = [
        "account__name",
        "account__billing_email",
        "account__memberships__user__email",
        "=account__stripe_customer_id",
        "=invoices__payments__stripe_payment_intent_id",
    ]
    search_help_text = _("Account name, member or billing email, Stripe customer id or PaymentIntent id.")
    list_select_related = ["account", "price__plan"]
    date_hierarchy = "created_at"
    inlines = [SubscriptionInvoiceInline, SubscriptionEventInline]
    change_form_template = "admin/subscriptions/subscription/change_form.html"
    fieldsets = [
        (None, {"fields": ["account_link", "status_badge", "plan", "cycle", "amount"]}),
        (
            _("Period"),
            {
                "fields": [
                    "current_period_start",
                    "current_period_end",
                    "trial_end",
                    "commitment_end_at",
                    "cancel_at",
                    "cancel_reason",
                    "paused_at",
                    "resume_at",
                    "scheduled_price",
                ]
            },
        ),
        (
            _("Payments"),
            {"fields": ["current_period_paid", "discount", "past_due_since", "retries_done", "next_retry_at"]},
        ),
        (_("Dates"), {"fields": ["created_at", "ended_at"]}),
    ]
    readonly_fields = [
        "account_link",
        "status_badge",
        "plan",
        "cycle",
        "amount",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "commitment_end_at",
        "cancel_at",
        "cancel_reason",
        "paused_at",
        "resume_at",
        "scheduled_price",
        "current_period_paid",
        "discount",
        "past_due_since",
        "retries_done",
        "next_retry_at",
        "created_at",
        "ended_at",
    ]
    actions = [
        "cancel_now",
        "cancel_at_period_end",
        "undo_cancel",
        "pause",
        "resume",
        "change_price",
        "retry_payment",
        "extend_trial",
    ]

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    has_cancel_permission = has_perm("cancel_subscription")
    has_undo_cancel_permission = has_perm("undo_cancel_subscription")
    has_pause_permission = has_perm("pause_subscription")
    has_resume_permission = has_perm("resume_subscription")
    has_change_price_permission = has_perm("change_subscription_price")
    has_retry_payment_permission = has_perm("retry_subscription_payment")
    has_extend_trial_permission = has_perm("extend_subscription_trial")

    def _label(self, obj) -> str:
        return f"{obj.account.name} (#{obj.pk})"

    @admin.display(description=_("Account"), ordering="account__name")
    def account_link(self, obj):
        return link(obj.account)

    @admin.display(description=_("Plan"), ordering="price__plan__rank")
    def plan(self, obj):
        return obj.price.plan.name

    @admin.display(description=_("Cycle"), ordering="price__cycle")
    def cycle(self, obj):
        return obj.price.get_cycle_display()

    @admin.display(description=_("Plan"), ordering="price__plan__rank")
    def plan_and_cycle(self, obj):
        return f"{obj.price.plan.name} · {obj.price.get_cycle_display()}"

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return badge_html(obj.badge)

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def amount(self, obj):
        return money(obj.amount_minor, obj.currency)

    @admin.display(description=_("Paid for the current period"))
    def current_period_paid(self, obj):
        return money(obj.current_period_paid_minor, obj.currency)

    @admin.display(description=_("Discount"))
    def discount(self, obj):
        if not obj.discount_percent:
            return "—"
        return ngettext(
            "%(percent)s%% off the next renewal",
            "%(percent)s%% off the next %(periods)s renewals",
            obj.discount_periods_left,
        ) % {"percent": obj.discount_percent, "periods": obj.discount_periods_left}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sub = self.get_object(request, object_id)
        buttons = []
        if sub is not None:
            for name, label, needs_page, allowed in SUBSCRIPTION_ACTIONS:
                permitted = getattr(self, f"has_{SUBSCRIPTION_ACTION_PERMISSIONS[name]}_permission")(request)
                if permitted and allowed(sub):
                    buttons.append({"name": name, "label": label, "needs_page": needs_page})
        extra_context = {**(extra_context or {}), "object_actions": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions without input.
    @admin.action(description=_("Cancel now (no charge, open invoices voided)"), permissions=["cancel"])
    def cancel_now(self, request, queryset):
        self._require(request, "cancel")
        self._each(
            request,
            queryset,
            lambda sub, now: services.subscription_cancel_now(subscription=sub, actor=request.user, now=now),
            done_message=lambda n: (
                ngettext("%(n)d subscription canceled now.", "%(n)d subscriptions canceled now.", n) % {"n": n}
            ),
        )
        return self._back(request, queryset)

    @admin.action(description=_("Cancel at period end"), permissions=["cancel"])
    def cancel_at_period_end(self, request, queryset):
        self._require(request, "cancel")
        self._each(
            request,
            queryset,
            lambda sub, now: services.subscription_schedule_cancel(
                subscription=sub, actor=request.user, now=now, reason="Canceled by an operator"
            ),
            done_message=lambda n: (
                ngettext(
                    "%(n)d subscription set to end at its period end.",
                    "%(n)d subscriptions set to end at their period end.",
                    n,
                )
                % {"n": n}
            ),
        )
        return self._back(request, queryset)

    @admin.action(description=_("Undo cancellation"), permissions=["undo_cancel"])
    def undo_cancel(self, request, queryset):
        self._require(request, "undo_cancel")
        self._each(
            request,
            queryset,
            lambda sub, now: services.subscription_undo_cancel(subscription=sub, actor=request.user, now=now),
            done_message=lambda n: ngettext("%(n)d cancellation undone.", "%(n)d cancellations undone.", n) % {"n": n},
        )
        return self._back(request, queryset)

    @admin.action(description=_("Resume"), permissions=["resume"])
    def resume(self, request, queryset):
        self._require(request, "resume")
        self._each(
            request,
            queryset,
            lambda sub, now: services.subscription_resume(subscription=sub, actor=request.user, now=now),
            done_message=lambda n: (
                ngettext("%(n)d subscription resumed.", "%(n)d subscriptions resumed.", n) % {"n": n}
            ),
        )
        return self._back(request, queryset)

    @admin.action(description=_("Retry payment now"), permissions=["retry_payment"])
    def retry_payment(self, request, queryset):
        self._require(request, "retry_payment")

        def retry(sub, now):
            payment = services.subscription_retry_now(subscription=sub, actor=request.user, now=now)
            if payment.status == Payment.PENDING:
                raise InvalidTransition(gettext("Stripe could not be reached; the payment will be checked again."))
            if payment.status != Payment.SUCCEEDED:
                raise InvalidTransition(
                    gettext("The payment failed: %(reason)s")
                    % {"reason": payment.failure_message or payment.failure_code or payment.status}
                )

        self._each(
            request,
            queryset.select_related("account"),
            retry,
            done_message=lambda n: ngettext("%(n)d payment succeeded.", "%(n)d payments succeeded.", n) % {"n": n},
        )
        return self._back(request, queryset)

    # Actions with a page of their own.
    @admin.action(description=_("Pause…"), permissions=["pause"])
    def pause(self, request, queryset):
        self._require(request, "pause")
        form = PauseForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            months = form.cleaned_data["months"]
            self._each(
                request,
                queryset,
                lambda sub, now: services.subscription_pause(
                    subscription=sub, actor=request.user, months=months, now=now
                ),
                done_message=lambda n: (
                    ngettext("%(n)d subscription paused.", "%(n)d subscriptions paused.", n) % {"n": n}
                ),
            )
            return self._back(request, queryset)
        return self._intermediate(
            request,
            queryset.select_related("account", "price__plan"),
            action="pause",
            title=gettext("Pause subscriptions"),
            form=form,
            template="admin/subscriptions/subscription/action_form.html",
            intro=gettext("No invoices while paused; the period end moves later by the time spent paused."),
            confirm_label=gettext("Pause"),
        )

    @admin.action(description=_("Extend trial…"), permissions=["extend_trial"])
    def extend_trial(self, request, queryset):
        self._require(request, "extend_trial")
        form = ExtendTrialForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            days = form.cleaned_data["days"]
            self._each(
                request,
                queryset,
                lambda sub, now: services.subscription_extend_trial(
                    subscription=sub, days=days, actor=request.user, now=now
                ),
                done_message=lambda n: ngettext("%(n)d trial extended.", "%(n)d trials extended.", n) % {"n": n},
            )
            return self._back(request, queryset)
        return self._intermediate(
            request,
            queryset.select_related("account", "price__plan"),
            action="extend_trial",
            title=gettext("Extend trials"),
            form=form,
            template="admin/subscriptions/subscription/action_form.html",
            intro=gettext("The trial end and the first charge move later by the days you choose."),
            confirm_label=gettext("Extend trial"),
        )

    @admin.action(description=_("Change price…"), permissions=["change_price"])
    def change_price(self, request, queryset):
        self._require(request, "change_price")
        queryset = queryset.select_related("account", "price__plan")
        stage = "confirm" if "confirm" in request.POST else "preview" if "preview" in request.POST else ""
        form = ChangePriceForm(request.POST if stage else None)
        if stage and form.is_valid():
            price, at_period_end = form.cleaned_data["price"], form.cleaned_data["at_period_end"]
            if stage == "confirm":
                self._each(
                    request,
                    queryset,
                    lambda sub, now: services.subscription_change(
                        subscription=sub, price=price, actor=request.user, now=now, at_period_end=at_period_end
                    ),
                    done_message=lambda n: (
                        ngettext(
                            "%(n)d subscription changed to %(price)s.", "%(n)d subscriptions changed to %(price)s.", n
                        )
                        % {"n": n, "price": price}
                    ),
                )
                return self._back(request, queryset)
            now = clock.now()
            previews = []
            for sub in queryset:
                try:
                    preview = services.subscription_preview_change(
                        subscription=sub, price=price, now=now, at_period_end=at_period_end
                    )
                    previews.append({"subscription": sub, "preview": preview})
                except InvalidTransition as error:
                    previews.append({"subscription": sub, "refused": str(error)})
            return self._intermediate(
                request,
                queryset,
                action="change_price",
                title=gettext("Change price: preview"),
                form=form,
                template="admin/subscriptions/subscription/change_price.html",
                previews=previews,
                price=price,
                at_period_end=at_period_end,
                any_allowed=any("preview" in row for row in previews),
            )
        return self._intermediate(
            request,
            queryset,
            action="change_price",
            title=gettext("Change price"),
            form=form,
            template="admin/subscriptions/subscription/change_price.html",
        )


# --- Invoices, payments, refunds ---------------------------------------------------------------------------
class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    show_change_link = False
    fields = ["kind", "description", "line_amount", "period_start", "period_end"]
    readonly_fields = fields

    @admin.display(description=_("Amount"))
    def line_amount(self, obj):
        return money(obj.amount_minor, obj.invoice.currency)


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ["attempt", "status", "payment_amount", "refunded", "stripe", "failure_code", "created_at", "finished_at"]
    readonly_fields = fields

    @admin.display(description=_("Amount"))
    def payment_amount(self, obj):
        return money(obj.amount_minor, obj.currency)

    @admin.display(description=_("Refunded"))
    def refunded(self, obj):
        return money(obj.refunded_minor, obj.currency) if obj.refunded_minor else "—"

    @admin.display(description=_("Stripe"))
    def stripe(self, obj):
        return stripe_link(obj.stripe_payment_intent_id)


@admin.register(Invoice)
class InvoiceAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    list_display = ["number", "account_link", "billing_reason", "status", "amount_due", "created_at", "paid_at"]
    list_filter = ["status", "billing_reason", account_filter("account_id")]
    search_fields = ["account__name", "customer_email", "=payments__stripe_payment_intent_id", "=id"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    inlines = [InvoiceLineInline, PaymentInline]
    change_form_template = "admin/subscriptions/invoice/change_form.html"
    fields = [
        "account_link",
        "subscription_link",
        "billing_reason",
        "status",
        "price",
        "period_start",
        "period_end",
        "subtotal",
        "credit_applied",
        "amount_due",
        "customer_name",
        "customer_email",
        "issuer",
        "created_at",
        "paid_at",
        "closed_at",
    ]
    readonly_fields = fields
    actions = ["mark_uncollectible"]

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    has_mark_uncollectible_permission = has_perm("mark_invoice_uncollectible")

    def _label(self, obj) -> str:
        return gettext("Invoice %(number)s") % {"number": obj.number}

    def get_search_results(self, request, queryset, search_term):
        # An invoice number as printed (2026-000042) is the year and the id.
        year, _dash, number = search_term.strip().partition("-")
        if len(year) == 4 and year.isdigit() and number.isdigit():
            return queryset.filter(pk=int(number), created_at__year=int(year)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("Number"), ordering="id")
    def number(self, obj):
        return obj.number

    @admin.display(description=_("Account"), ordering="account__name")
    def account_link(self, obj):
        return link(obj.account)

    @admin.display(description=_("Subscription"))
    def subscription_link(self, obj):
        return link(obj.subscription, f"#{obj.subscription_id}") if obj.subscription_id else "—"

    @admin.display(description=_("Subtotal"))
    def subtotal(self, obj):
        return money(obj.subtotal_minor, obj.currency)

    @admin.display(description=_("Credit applied"))
    def credit_applied(self, obj):
        return money(obj.credit_applied_minor, obj.currency)

    @admin.display(description=_("Amount due"), ordering="amount_due_minor")
    def amount_due(self, obj):
        return money(obj.amount_due_minor, obj.currency)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        buttons = []
        if invoice is not None and invoice.status == Invoice.OPEN and self.has_mark_uncollectible_permission(request):
            buttons.append({"name": "mark_uncollectible", "label": gettext("Mark uncollectible"), "needs_page": False})
        extra_context = {**(extra_context or {}), "object_actions": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Mark uncollectible"), permissions=["mark_uncollectible"])
    def mark_uncollectible(self, request, queryset):
        self._require(request, "mark_uncollectible")
        self._each(
            request,
            queryset,
            lambda invoice, now: services.invoice_mark_uncollectible(invoice=invoice, actor=request.user, now=now),
            done_message=lambda n: (
                ngettext("%(n)d invoice marked uncollectible.", "%(n)d invoices marked uncollectible.", n) % {"n": n}
            ),
        )
        return self._back(request, queryset)


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount to refund"), min_value=Decimal("0.01"), decimal_places=3)
    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), strip=True
    )
    # How many refunds the payment had when this form was shown: a form sent twice refunds once.
    refunds_seen = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, currency: str, refundable_minor: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency, self.refundable_minor = currency, refundable_minor
        self.fields["amount"].help_text = gettext("In %(currency)s; at most %(max)s.") % {
            "currency": currency.upper(),
            "max": money(refundable_minor, currency),
        }

    def clean_amount(self) -> int:
        """The amount in minor units; refuses fractions of a cent and more than can be refunded."""
        amount = self.cleaned_data["amount"]
        try:
            minor = amount.scaleb(minor_digits(self.currency))
        except InvalidOperation as error:
            raise forms.ValidationError(gettext("Enter a valid amount.")) from error
        if minor != minor.to_integral_value():
            raise forms.ValidationError(gettext("Enter whole cents."))
        minor = int(minor)
        if minor > self.refundable_minor:
            raise forms.ValidationError(
                gettext("At most %(amount)s can be refunded.") % {"amount": money(self.refundable_minor, self.currency)}
            )
        return minor


class RefundInline(ReadOnlyInline):
    model = Refund
    show_change_link = False
    fk_name = "payment"
    fields = ["created_at", "refund_amount", "status", "stripe_refund_id", "reason", "created_by", "failure_message"]
    readonly_fields = fields

    @admin.display(description=_("Amount"))
    def refund_amount(self, obj):
        return money(obj.amount_minor, obj.currency)


class DisputedFilter(admin.SimpleListFilter):
    title = _("disputed")
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", _("Disputed")), ("no", _("Not disputed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(disputed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(disputed_at__isnull=True)
        return queryset


class FailureCodeFilter(admin.SimpleListFilter):
    """The bank's failure codes seen so far. Django's own filter on the field also offers the
    empty code of every successful payment: a choice with no words, an empty link."""

    title = Payment._meta.get_field("failure_code").verbose_name
    parameter_name = "failure_code"

    def lookups(self, request, model_admin):
        codes = Payment.objects.exclude(failure_code="").order_by("failure_code").values_list("failure_code", flat=True)
        return [(code, code) for code in codes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(failure_code=self.value()) if self.value() else queryset


@admin.register(Payment)
class PaymentAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    list_display = [
        "__str__",
        "account",
        "status",
        "failure_code",
        "payment_amount",
        "refunded",
        "stripe",
        "created_at",
    ]
    list_filter = ["status", DisputedFilter, FailureCodeFilter, account_filter("invoice__account_id")]
    search_fields = ["=stripe_payment_intent_id", "idempotency_key", "invoice__account__name"]
    list_select_related = ["invoice__account"]
    date_hierarchy = "created_at"
    inlines = [RefundInline]
    change_form_template = "admin/subscriptions/payment/change_form.html"
    fields = [
        "invoice_link",
        "account",
        "attempt",
        "status",
        "payment_amount",
        "refunded",
        "stripe",
        "idempotency_key",
        "failure_code",
        "failure_message",
        "disputed_at",
        "dispute_reason",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields
    actions = ["refund"]

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    has_refund_permission = has_perm("refund_payment")

    @admin.display(description=_("Invoice"))
    def invoice_link(self, obj):
        return link(obj.invoice)

    @admin.display(description=_("Account"), ordering="invoice__account__name")
    def account(self, obj):
        return link(obj.invoice.account)

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def payment_amount(self, obj):
        return money(obj.amount_minor, obj.currency)

    @admin.display(description=_("Refunded"))
    def refunded(self, obj):
        return money(obj.refunded_minor, obj.currency) if obj.refunded_minor else "—"

    @admin.display(description=_("Stripe"))
    def stripe(self, obj):
        return stripe_link(obj.stripe_payment_intent_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, object_id)
        buttons = []
        if (
            payment is not None
            and self.has_refund_permission(request)
            and services.payment_refundable_minor(payment=payment) > 0
        ):
            buttons.append({"name": "refund", "label": gettext("Refund…"), "needs_page": True})
        extra_context = {**(extra_context or {}), "object_actions": buttons}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Refund…"), permissions=["refund"])
    def refund(self, request, queryset):
        self._require(request, "refund")
        payments = list(queryset.select_related("invoice__account")[:2])
        if len(payments) != 1:
            self.message_user(request, gettext("Refund one payment at a time."), messages.ERROR)
            return None
        payment = payments[0]
        refundable = services.payment_refundable_minor(payment=payment)
        if refundable <= 0:
            self.message_user(request, gettext("There is nothing left to refund on this payment."), messages.ERROR)
            return self._back(request, queryset)
        form = RefundForm(
            request.POST if "confirm" in request.POST else None,
            currency=payment.currency,
            refundable_minor=refundable,
            initial={
                "amount": Decimal(refundable).scaleb(-minor_digits(payment.currency)),
                "refunds_seen": payment.refunds.count(),
            },
        )
        if form.is_valid():
            try:
                refund = services.payment_refund(
                    payment=payment,
                    amount_minor=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    now=clock.now(),
                    refunds_seen=form.cleaned_data["refunds_seen"],
                )
            except InvalidTransition as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("Refunded %(amount)s (Stripe refund %(id)s).")
                    % {"amount": money(refund.amount_minor, refund.currency), "id": refund.stripe_refund_id},
                    messages.SUCCESS,
                )
            return self._back(request, queryset)
        return self._intermediate(
            request,
            queryset,
            action="refund",
            title=gettext("Refund a payment"),
            form=form,
            template="admin/subscriptions/payment/refund.html",
            payment=payment,
            refundable_minor=refundable,
        )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "payment_link", "refund_amount", "status", "stripe_refund_id", "created_by", "reason"]
    list_filter = ["status"]
    search_fields = [
        "=stripe_refund_id",
        "=payment__stripe_payment_intent_id",
        "reason",
        "payment__invoice__account__name",
    ]
    list_select_related = ["payment__invoice", "created_by"]

    @admin.display(description=_("Payment"))
    def payment_link(self, obj):
        return link(obj.payment)

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def refund_amount(self, obj):
        return money(obj.amount_minor, obj.currency)


# --- Audit and ledger -------------------------------------------------------------------------------------
@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "subscription_link",
        "account",
        "kind",
        "before",
        "after",
        "actor_kind",
        "actor",
        "reason",
    ]
    list_filter = ["actor_kind", "kind", "to_status", account_filter("subscription__account_id")]
    search_fields = [
        "subscription__account__name",
        "actor__email",
        "reason",
        "kind",
        "=subscription__id",
        "=subscription__account__id",
    ]
    search_help_text = _("Account name, operator or customer email, reason, event kind, subscription or account id.")
    list_select_related = ["subscription__account", "actor"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "subscription_link",
        "account",
        "kind",
        "before",
        "after",
        "actor_kind",
        "actor",
        "price",
        "reason",
        "data_display",
    ]
    readonly_fields = fields

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    @admin.display(description=_("Subscription"))
    def subscription_link(self, obj):
        return link(obj.subscription, f"#{obj.subscription_id}")

    @admin.display(description=_("Account"), ordering="subscription__account__name")
    def account(self, obj):
        return link(obj.subscription.account)

    @admin.display(description=_("Before"), ordering="from_status")
    def before(self, obj):
        return badge_html(obj.from_status) if obj.from_status else "—"

    @admin.display(description=_("After"), ordering="to_status")
    def after(self, obj):
        return badge_html(obj.to_status) if obj.to_status else "—"

    @admin.display(description=_("Details"))
    def data_display(self, obj):
        if not obj.data:
            return "—"
        return format_html(
            "<dl class='billing-data'>{}</dl>",
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((key, value) for key, value in obj.data.items())),
        )


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "entry_amount", "note", "created_by"]
    list_filter = ["kind"]
    search_fields = ["account__name", "note"]
    list_select_related = ["account", "created_by"]

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def entry_amount(self, obj):
        return money(obj.amount_minor, obj.currency)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "status", "differences_count", "payment_intents_checked", "refunds_checked", "page"]
    list_filter = ["status"]

    @admin.display(description=_("Differences"))
    def page(self, obj):
        return format_html(
            '<a href="{}?run={}">{}</a>', reverse("billing_admin:reconciliation"), obj.pk, gettext("Open")
        )


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """Webhook events as received, each once, with what processing them did."""

    list_display = ["received_at", "type", "event_id", "processed_at", "attempts", "outcome"]
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "outcome"]
