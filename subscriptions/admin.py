"""Admin registration. Read-mostly: status and money change only through services.py."""

from django.contrib import admin

from .models import CreditEntry, Invoice, InvoiceLine, Payment, Plan, Price, Subscription, SubscriptionEvent


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
    list_display = ["account", "price", "status", "current_period_end", "cancel_at", "created_at"]
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


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "invoice",
        "attempt",
        "status",
        "amount_minor",
        "currency",
        "stripe_payment_intent_id",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["stripe_payment_intent_id", "idempotency_key"]


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
