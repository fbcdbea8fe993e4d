from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Account, Membership, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "billing_email", "currency", "language", "stripe_customer_id", "created_at"]
    search_fields = ["name", "billing_email", "stripe_customer_id", "memberships__user__email"]
    readonly_fields = [
        "stripe_customer_id",
        "payment_method_id",
        "card_brand",
        "card_last4",
        "card_exp_month",
        "card_exp_year",
        "billing_claimed_until",
        "created_at",
    ]
    inlines = [MembershipInline]
