"""Users (email login), accounts (the paying customer) and memberships (roles)."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils.timezone import now as timezone_now
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(_("email address"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone_now)
    # Set when the user followed a verification link (or accepted an invitation sent to this
    # address). Unverified users may run a trial but not start a paid plan (docs/rules.md).
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None


class Account(models.Model):
    """The paying customer (a company or a person): members, a Stripe customer, a currency."""

    name = models.CharField(_("name"), max_length=200)
    billing_email = models.EmailField(_("billing email"))
    currency = models.CharField(max_length=3, default="eur")
    language = models.CharField(max_length=8, default="en")
    timezone = models.CharField(max_length=64, default="Europe/Amsterdam")
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    # The default card as Stripe last reported it, so pages never call Stripe to show it.
    payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # Held by whoever is moving money for this account (a renewal, a plan change, a retry), so
    # two of them never charge at once; it expires on its own if a worker dies.
    billing_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone_now)
    # Account deletion (the privacy app): asked for at, carried out from (the end of the grace
    # period, during which an owner can undo it), carried out at. A deleted account keeps its
    # invoices under a pseudonym; its name and emails are erased.
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deletion_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="account_currency_lowercase_iso"),
            models.CheckConstraint(
                condition=Q(deletion_requested_at__isnull=True, deletion_due_at__isnull=True)
                | Q(deletion_requested_at__isnull=False, deletion_due_at__isnull=False),
                name="account_deletion_dates_together",
            ),
        ]
        indexes = [
            # Webhooks find the account of a card; the daily job finds cards expiring next month.
            models.Index(fields=["payment_method_id"], name="account_payment_method"),
            models.Index(fields=["card_exp_year", "card_exp_month"], name="account_card_expiry"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_payment_method(self) -> bool:
        return bool(self.payment_method_id)

    @property
    def deletion_pending(self) -> bool:
        """Deletion asked for and not carried out yet (undoable until `deletion_due_at`)."""
        return self.deletion_requested_at is not None and self.deleted_at is None


class Membership(models.Model):
    """A user's role in an account."""

    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    MEMBER = "member"
    ROLE_CHOICES = [(OWNER, _("Owner")), (BILLING_ADMIN, _("Billing admin")), (MEMBER, _("Member"))]
    # Roles that may change plan, cancel, pause, change the card and see invoices.
    BILLING_ROLES = (OWNER, BILLING_ADMIN)

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    # One account per user keeps "my billing page" unambiguous.
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, default=MEMBER)
    created_at = models.DateTimeField(default=timezone_now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["owner", "billing_admin", "member"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.account}"

    @property
    def can_manage_billing(self) -> bool:
        return self.role in self.BILLING_ROLES


class Invitation(models.Model):
    """An owner's invitation to join an account by email, with a role; the link is signed and expires."""

    # Owners are made by promoting a member on the team page, never by invitation.
    ROLE_CHOICES = [(Membership.BILLING_ADMIN, _("Billing admin")), (Membership.MEMBER, _("Member"))]
    PENDING, ACCEPTED, REVOKED, EXPIRED = "pending", "accepted", "revoked", "expired"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("email address"))
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, default=Membership.MEMBER)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone_now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=["billing_admin", "member"]), name="invitation_role_valid"),
            # One open invitation per address and account: inviting again replaces the old one.
            models.UniqueConstraint(
                fields=["account", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_account_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) to {self.account}"

    def status(self, now) -> str:
        if self.accepted_at:
            return self.ACCEPTED
        if self.revoked_at:
            return self.REVOKED
        if self.expires_at <= now:
            return self.EXPIRED
        return self.PENDING
