"""Users and accounts in admin: members and roles, the credit ledger, the subscription and its money."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing_portal.lib import clock
from billing_portal.lib.money import minor_digits
from subscriptions import selectors, services
from subscriptions.admin import ADMIN_CSS, ReadOnlyInline, badge_html, link, stripe_link
from subscriptions.lifecycle import InvalidTransition
from subscriptions.models import CreditEntry, Invoice, Payment, Subscription, SubscriptionEvent
from subscriptions.templatetags.billing import money

from .models import Account, Invitation, Membership, User

RECENT_ROWS = 20


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined", "email_verified_at"]}),
    ]
    # Set only by the verification link, so support can see it but not fake it.
    readonly_fields = ["email_verified_at"]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class InvitationInline(ReadOnlyInline):
    """Team invitations as support needs them ("did it go out, did it expire?"); owners manage them."""

    model = Invitation
    fk_name = "account"
    show_change_link = False
    verbose_name_plural = _("Team invitations")
    fields = ["email", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invited_by")


class CreditLedgerInline(ReadOnlyInline):
    """The ledger as it is: entries are never edited, only added through the adjustment below."""

    model = CreditEntry
    show_change_link = False
    fk_name = "account"
    verbose_name = _("credit entry")
    verbose_name_plural = _("Credit ledger")
    fields = ["created_at", "kind", "entry_amount", "note", "invoice_link", "created_by"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "created_by")

    @admin.display(description=_("Amount"))
    def entry_amount(self, obj):
        return money(obj.amount_minor, obj.currency)

    @admin.display(description=_("Invoice"))
    def invoice_link(self, obj):
        return link(obj.invoice) if obj.invoice_id else "—"


class CreditAdjustmentForm(forms.ModelForm):
    """Grant or remove credit: an amount in the account's currency and a required reason."""

    GRANT, REMOVE = "grant", "remove"
    direction = forms.ChoiceField(
        label=_("Grant or remove"), choices=[(GRANT, _("Grant credit")), (REMOVE, _("Remove credit"))], initial=GRANT
    )
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0.01"), decimal_places=3, required=False)
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)

    class Meta:
        model = CreditEntry
        fields: list[str] = []

    def has_changed(self) -> bool:
        # The direction alone is not an adjustment: only an amount or a reason makes one.
        return bool(self.data.get(self.add_prefix("amount")) or self.data.get(self.add_prefix("reason")))

    def clean(self):
        cleaned = super().clean()
        account = Account.objects.get(pk=self.instance.account_id)
        amount, reason = cleaned.get("amount"), (cleaned.get("reason") or "").strip()
        if amount is None and "amount" not in self.errors:
            self.add_error("amount", gettext("Enter the amount."))
        if not reason:
            self.add_error("reason", gettext("Give a reason: the customer may ask about it."))
        if amount is None or self.errors:
            return cleaned
        minor = amount.scaleb(minor_digits(account.currency))
        if minor != minor.to_integral_value():
            self.add_error("amount", gettext("Enter whole cents."))
            return cleaned
        signed = int(minor) if cleaned["direction"] == self.GRANT else -int(minor)
        balance = selectors.account_credit_balance_minor(account=account)
        if balance + signed < 0:
            self.add_error(
                "amount",
                gettext("The credit balance is %(balance)s: no more than that can be removed.")
                % {"balance": money(balance, account.currency)},
            )
        cleaned["amount_minor"], cleaned["reason"], cleaned["account"] = signed, reason, account
        return cleaned


class CreditAdjustmentInline(admin.TabularInline):
    """One blank row to grant or remove credit; saved through services.account_credit_adjust."""

    model = CreditEntry
    form = CreditAdjustmentForm
    fk_name = "account"
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name = _("Grant or remove credit")
    verbose_name_plural = _("Grant or remove credit")
    fields = ["direction", "amount", "reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_add_permission(self, request, obj=None):
        return obj is not None and request.user.has_perm("subscriptions.adjust_account_credit")

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fields = ["plan", "status_badge", "amount", "current_period_end", "cancel_at", "created_at", "ended_at"]
    readonly_fields = fields
    verbose_name_plural = _("Subscriptions")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("price__plan")

    @admin.display(description=_("Plan"))
    def plan(self, obj):
        return f"{obj.price.plan.name} · {obj.price.get_cycle_display()}"

    @admin.display(description=_("Status"))
    def status_badge(self, obj):
        return badge_html(obj.badge)

    @admin.display(description=_("Amount"))
    def amount(self, obj):
        return money(obj.amount_minor, obj.currency)


class InvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ["invoice_number", "billing_reason", "status", "amount_due", "created_at", "paid_at"]
    readonly_fields = fields
    verbose_name_plural = _("Invoices")

    @admin.display(description=_("Invoice"))
    def invoice_number(self, obj):
        return obj.number

    @admin.display(description=_("Amount due"))
    def amount_due(self, obj):
        return money(obj.amount_due_minor, obj.currency)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "billing_email", "currency", "language", "stripe_customer_id", "created_at"]
    search_fields = ["name", "billing_email", "=stripe_customer_id", "memberships__user__email"]
    search_help_text = _("Name, billing email, member email or Stripe customer id.")
    fieldsets = [
        (None, {"fields": ["name", "billing_email", "currency", "language", "timezone"]}),
        (_("Money"), {"fields": ["credit_balance", "recent_payments"]}),
        (_("Subscription history"), {"fields": ["recent_history"]}),
        (
            _("Stripe"),
            {
                "fields": [
                    "stripe_customer_id",
                    "payment_method_id",
                    "card_brand",
                    "card_last4",
                    "card_exp_month",
                    "card_exp_year",
                    "billing_claimed_until",
                    "created_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "credit_balance",
        "recent_payments",
        "recent_history",
        "stripe_customer_id",
        "payment_method_id",
        "card_brand",
        "card_last4",
        "card_exp_month",
        "card_exp_year",
        "billing_claimed_until",
        "created_at",
    ]
    inlines = [
        MembershipInline,
        InvitationInline,
        SubscriptionInline,
        CreditAdjustmentInline,
        CreditLedgerInline,
        InvoiceInline,
    ]

    class Media:
        css = ADMIN_CSS

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Money already moved in the account's currency: it cannot change any more.
        if obj is not None and (obj.subscriptions.exists() or obj.credit_entries.exists() or obj.invoices.exists()):
            fields.append("currency")
        return fields

    def get_inline_instances(self, request, obj=None):
        # On the "add" page there is no ledger or history yet: members only.
        if obj is None:
            return [MembershipInline(self.model, self.admin_site)]
        return super().get_inline_instances(request, obj)

    @admin.display(description=_("Credit balance"))
    def credit_balance(self, obj):
        return money(selectors.account_credit_balance_minor(account=obj), obj.currency)

    @admin.display(description=_("Latest payments"))
    def recent_payments(self, obj):
        payments = list(
            Payment.objects.filter(invoice__account=obj)
            .select_related("invoice")
            .order_by("-created_at", "-id")[:RECENT_ROWS]
        )
        if not payments:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    link(payment, payment.created_at.strftime("%Y-%m-%d %H:%M")),
                    link(payment.invoice),
                    payment.get_status_display(),
                    money(payment.amount_minor, payment.currency),
                    money(payment.refunded_minor, payment.currency) if payment.refunded_minor else "—",
                    stripe_link(payment.stripe_payment_intent_id),
                )
                for payment in payments
            ),
        )
        more = reverse("admin:subscriptions_payment_changelist") + f"?account={obj.pk}"
        return format_html(
            '<table class="billing-mini"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            '<th>{}</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">{}</a></p>',
            gettext("Created"),
            gettext("Invoice"),
            gettext("Status"),
            gettext("Amount"),
            gettext("Refunded"),
            gettext("Stripe"),
            rows,
            more,
            gettext("All payments of this account"),
        )

    @admin.display(description=_("Latest events"))
    def recent_history(self, obj):
        events = list(
            SubscriptionEvent.objects.filter(subscription__account=obj)
            .select_related("actor")
            .order_by("-created_at", "-id")[:RECENT_ROWS]
        )
        if not events:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    link(event, event.created_at.strftime("%Y-%m-%d %H:%M")),
                    event.kind,
                    badge_html(event.from_status) if event.from_status else "—",
                    badge_html(event.to_status) if event.to_status else "—",
                    f"{event.get_actor_kind_display()} {event.actor or ''}".strip(),
                    event.reason or "",
                )
                for event in events
            ),
        )
        more = reverse("admin:subscriptions_subscriptionevent_changelist") + f"?account={obj.pk}"
        return format_html(
            '<table class="billing-mini"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            '<th>{}</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">{}</a></p>',
            gettext("When"),
            gettext("Event"),
            gettext("Before"),
            gettext("After"),
            gettext("By"),
            gettext("Reason"),
            rows,
            more,
            gettext("The whole history in the audit log"),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only what the form edits: the card, the Stripe ids and the billing claim are written by
        # the services meanwhile, and a stale copy of them must not overwrite theirs.
        editable = {field.name for field in obj._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in editable]
        if fields:
            obj.save(update_fields=fields)

    def save_formset(self, request, form, formset, change):
        if issubclass(formset.form, CreditAdjustmentForm):
            self._save_credit_adjustments(request, formset)
            return
        super().save_formset(request, form, formset, change)

    def _save_credit_adjustments(self, request, formset) -> None:
        """Each filled-in adjustment row goes through the service; nothing is saved directly."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.forms:
            if not row.has_changed() or "amount_minor" not in row.cleaned_data:
                continue
            account = row.cleaned_data["account"]
            try:
                entry = services.account_credit_adjust(
                    account=account,
                    amount_minor=row.cleaned_data["amount_minor"],
                    reason=row.cleaned_data["reason"],
                    actor=request.user,
                    now=clock.now(),
                )
            except InvalidTransition as error:
                self.message_user(
                    request, gettext("Credit not adjusted: %(reason)s") % {"reason": error}, messages.ERROR
                )
                continue
            formset.new_objects.append(entry)
            self.message_user(
                request,
                gettext("%(kind)s: %(amount)s.")
                % {"kind": entry.get_kind_display(), "amount": money(entry.amount_minor, entry.currency)},
                messages.SUCCESS,
            )
