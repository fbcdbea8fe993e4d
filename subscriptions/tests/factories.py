"""factory-boy factories for users, accounts, plans and prices, plus a card on file."""

import factory
from django.utils import timezone

from accounts.models import Account, Membership, User
from subscriptions import gateway, lifecycle, services
from subscriptions.models import Plan, Price

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    # Verified by default, as every login made before verification existed; tests of the
    # verification itself pass email_verified_at=None.
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    billing_email = factory.Sequence(lambda n: f"billing{n}@example.com")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.OWNER


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"plan{n}")
    name = factory.LazyAttribute(lambda plan: plan.code.title())
    rank = 1
    trial_days = 0
    features = ["Feature one", "Feature two"]


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    plan = factory.SubFactory(PlanFactory)
    cycle = lifecycle.MONTHLY
    amount_minor = 1900
    currency = "eur"


def owner_with_account(**account_fields) -> tuple[User, Account]:
    membership = MembershipFactory(account=AccountFactory(**account_fields))
    return membership.user, membership.account


def give_card(account: Account, payment_method: str = "pm_card_visa") -> None:
    """Save a Stripe test card as the account's default, the way the card page does."""
    setup_intent_id, _secret = services.account_card_setup_start(account=account)
    gateway.setup_intent_confirm(setup_intent_id=setup_intent_id, payment_method_id=payment_method)
    card = gateway.setup_intent_card(setup_intent_id=setup_intent_id, customer_id=account.stripe_customer_id)
    services.account_card_save(account=account, card=card)


def give_card_number(account: Account, number: str) -> None:
    """Save a card by its test number (only localstripe accepts raw numbers from the server)."""
    method = gateway.client().v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    give_card(account, method.id)


def give_saved_card_number(account: Account, number: str) -> None:
    """A card saved earlier, attached without a SetupIntent: e.g. AUTHENTICATION_CARD, whose bank
    asks to authenticate every charge (its SetupIntent would need the customer's authentication)."""
    services.account_ensure_stripe_customer(account=account)
    method = gateway.client().v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    card = gateway.payment_method_make_default(customer_id=account.stripe_customer_id, payment_method_id=method.id)
    services.account_card_save(account=account, card=card)


DECLINING_CARD = "4000000000000341"  # attaches, then every charge fails
AUTHENTICATION_CARD = "4000002760003184"  # every charge needs 3-D Secure
