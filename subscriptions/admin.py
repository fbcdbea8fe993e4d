"""Admin registration. Read-mostly: status and money change only through services.py."""

from django.contrib import admin

from .models import (
    CreditEntry,
    Invoice,
    InvoiceLine,
    Payment,
    Plan,
    Price,
    StripeEvent,
    Subscription,
    SubscriptionEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services only: visible, never edited or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PriceInline(admin.TabularInline):
    model = Price
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "rank", "trial_days", "is_active"]
    prepopulated_fields = {"code": ["name"]}
    inlines = [PriceInline]


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["plan", "cycle", "amount_minor", "currency", "is_active"]
    list_filter = ["cycle", "currency", "is_active"]


class SubscriptionEventInline(admin.TabularInline):
    model = SubscriptionEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "from_status", "to_status", "actor_kind", "actor", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "price",
        "status",
        "current_period_end",
        "cancel_at",
        "past_due_since",
        "retries_done",
        "next_retry_at",
        "created_at",
    ]
    list_filter = ["status", "price__plan", "price__cycle"]
    search_fields = ["account__name", "account__billing_email", "account__stripe_customer_id"]
    list_select_related = ["account", "price__plan"]
    inlines = [SubscriptionEventInline]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "description", "amount_minor", "period_start", "period_end"]

    def has_add_permission(self, request, obj=None):
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = [
        "attempt",
        "status",
        "amount_minor",
        "stripe_payment_intent_id",
        "failure_code",
        "failure_message",
        "refunded_minor",
        "disputed_at",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "account", "billing_reason", "status", "amount_due_minor", "currency", "created_at"]
    list_filter = ["status", "billing_reason"]
    search_fields = ["account__name", "customer_email"]
    list_select_related = ["account"]
    inlines = [InvoiceLineInline, PaymentInline]


class DisputedFilter(admin.SimpleListFilter):
    title = "disputed"
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", "Disputed"), ("no", "Not disputed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(disputed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(disputed_at__isnull=True)
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """Every attempt to collect an invoice (renewals, dunning retries) with its outcome."""

    list_display = [
        "invoice",
        "account",
        "attempt",
        "status",
        "amount_minor",
        "currency",
        "failure_code",
        "failure_message",
        "refunded_minor",
        "disputed_at",
        "stripe_payment_intent_id",
        "created_at",
    ]
    list_filter = ["status", DisputedFilter, "failure_code", "invoice__billing_reason"]
    search_fields = ["stripe_payment_intent_id", "idempotency_key", "invoice__account__name"]
    list_select_related = ["invoice__account"]
    date_hierarchy = "created_at"

    @admin.display(ordering="invoice__account__name")
    def account(self, payment):
        return payment.invoice.account


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """Webhook events as received, each once, with what processing them did."""

    list_display = ["received_at", "type", "event_id", "processed_at", "attempts", "outcome"]
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id", "outcome"]


@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subscription", "kind", "from_status", "to_status", "actor_kind", "actor"]
    list_filter = ["kind", "actor_kind"]
    search_fields = ["subscription__account__name", "actor__email", "reason"]


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount_minor", "currency", "note"]
    list_filter = ["kind"]
    search_fields = ["account__name", "note"]
