"""Create the demo plans and one demo login per subscription state; print the logins.

Idempotent: run it again and it only prints the logins. Needs Stripe (localstripe in
development) for the demo cards and charges. The states are reached through the services with
a clock set in the past, exactly as the jobs would have reached them.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from subscriptions import gateway, lifecycle, services
from subscriptions.models import Plan, Price

PASSWORD = "demo-billing-2026"
ADMIN_EMAIL = "admin@demo.test"
PLANS = [
    # code, name, rank, trial days, features per language, {cycle: EUR cents}
    (
        "free",
        "Free",
        0,
        0,
        {
            "en": ["1 project", "Community support"],
            "nl": ["1 project", "Hulp via de community"],
            "fr": ["1 projet", "Support communautaire"],
            "it": ["1 progetto", "Supporto della community"],
        },
        {lifecycle.MONTHLY: 0, lifecycle.ANNUAL: 0, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 0},
    ),
    (
        "pro",
        "Pro",
        1,
        14,
        {
            "en": ["10 projects", "Email support", "Exports"],
            "nl": ["10 projecten", "Ondersteuning per e-mail", "Exports"],
            "fr": ["10 projets", "Support par e-mail", "Exports"],
            "it": ["10 progetti", "Supporto via email", "Esportazioni"],
        },
        {lifecycle.MONTHLY: 1900, lifecycle.ANNUAL: 19000, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 1700},
    ),
    (
        "business",
        "Business",
        2,
        14,
        {
            "en": ["Unlimited projects", "Priority support", "SSO", "Audit log"],
            "nl": ["Onbeperkt aantal projecten", "Ondersteuning met voorrang", "SSO", "Auditlog"],
            "fr": ["Projets illimités", "Support prioritaire", "SSO", "Journal d'audit"],
            "it": ["Progetti illimitati", "Supporto prioritario", "SSO", "Registro attività"],
        },
        {lifecycle.MONTHLY: 4900, lifecycle.ANNUAL: 49000, lifecycle.ANNUAL_COMMITMENT_MONTHLY: 4400},
    ),
]
# Stripe's test payment methods: one that pays, one that attaches and then declines every charge.
CARD_OK, CARD_DECLINES = "pm_card_visa", "pm_card_chargeCustomerFail"
DEMO_LOGINS = ["trialing", "active", "canceling", "past_due", "paused", "canceled", "member"]


class Command(BaseCommand):
    help = "Create demo plans and one demo login per subscription state (idempotent)."

    def handle(self, *args, **options):
        plans = self._plans()
        if not User.objects.filter(email="active@demo.test").exists():
            self._demo_accounts(plans)
        self._print_logins()

    @transaction.atomic
    def _plans(self) -> dict[str, dict[str, Price]]:
        prices: dict[str, dict[str, Price]] = {}
        for code, name, rank, trial_days, features, amounts in PLANS:
            plan, _ = Plan.objects.get_or_create(
                code=code, defaults={"name": name, "rank": rank, "trial_days": trial_days, "features": features}
            )
            prices[code] = {}
            for cycle, amount in amounts.items():
                price, _ = Price.objects.get_or_create(
                    plan=plan, cycle=cycle, currency="eur", is_active=True, defaults={"amount_minor": amount}
                )
                prices[code][cycle] = price
        return prices

    def _demo_accounts(self, prices) -> None:
        now = clock.now()
        pro, business = prices["pro"], prices["business"]
        if not User.objects.filter(email=ADMIN_EMAIL).exists():
            User.objects.create_superuser(ADMIN_EMAIL, PASSWORD, name="Olivia Operator", email_verified_at=now)

        owner, account = self._owner("trialing", "Trial Studio")
        services.subscription_start(
            account=account, price=pro[lifecycle.MONTHLY], actor=owner, now=now - timedelta(days=4)
        )

        owner, active_account = self._owner("active", "Active Agency")
        self._converted_trial(owner, active_account, business[lifecycle.MONTHLY], now - timedelta(days=24), CARD_OK)
        member = User.objects.create_user("member@demo.test", PASSWORD, name="Max Member", email_verified_at=now)
        Membership.objects.create(account=active_account, user=member, role=Membership.MEMBER)

        owner, account = self._owner("canceling", "Canceling Company")
        sub = self._converted_trial(owner, account, pro[lifecycle.ANNUAL], now - timedelta(days=40), CARD_OK)
        services.subscription_schedule_cancel(subscription=sub, actor=owner, now=now, reason="switching_product")

        owner, account = self._owner("past_due", "Past Due Partners")
        self._converted_trial(owner, account, pro[lifecycle.MONTHLY], now - timedelta(days=15), CARD_DECLINES)

        owner, account = self._owner("paused", "Paused Print Shop")
        sub = self._converted_trial(owner, account, pro[lifecycle.MONTHLY], now - timedelta(days=20), CARD_OK)
        services.subscription_pause(subscription=sub, actor=owner, months=1, now=now - timedelta(days=2))

        owner, account = self._owner("canceled", "Canceled Café")
        sub = self._converted_trial(owner, account, pro[lifecycle.MONTHLY], now - timedelta(days=70), CARD_OK)
        services.subscription_schedule_cancel(
            subscription=sub, actor=owner, now=sub.current_period_start, reason="too_expensive"
        )
        services.subscription_process_due(subscription_id=sub.pk, now=sub.cancel_at)

    def _owner(self, state: str, account_name: str) -> tuple[User, Account]:
        email = f"{state}@demo.test"
        # Demo logins have verified addresses, so they can start and change paid plans at once.
        user = User.objects.create_user(
            email, PASSWORD, name=f"{state.replace('_', ' ').title()} Owner", email_verified_at=clock.now()
        )
        account = Account.objects.create(name=account_name, billing_email=email)
        Membership.objects.create(account=account, user=user, role=Membership.OWNER)
        return user, account

    def _converted_trial(self, owner, account, price, started_at, card):
        """A trial that started at `started_at` and ended (charged) on its trial end."""
        setup_intent_id, _secret = services.account_card_setup_start(account=account)
        gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id=card)
        services.account_card_setup_finish(
            account=account, setup_intent_id=setup_intent_id, actor=owner, now=started_at
        )
        sub = services.subscription_start(account=account, price=price, actor=owner, now=started_at)
        services.subscription_process_due(subscription_id=sub.pk, now=sub.trial_end)
        sub.refresh_from_db()
        return sub

    def _print_logins(self) -> None:
        self.stdout.write(self.style.SUCCESS(f"Open {settings.SITE_URL}/ and log in with a demo login"))
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {PASSWORD})"))
        for state in DEMO_LOGINS:
            self.stdout.write(f"  {state:<10} {state}@demo.test")
        self.stdout.write(f"  {'operator':<10} {ADMIN_EMAIL}  (Django admin at /admin/)")
