"""Plans, prices, subscriptions, invoices, payments, the audit log and the credit ledger.

Money is integer minor units plus a lowercase ISO currency. State changes go through
`services.py` only; the database refuses invalid statuses, a second live subscription for an
account and a second invoice for the same subscription period.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from billing_portal.lib.money import Money

from . import lifecycle


class Plan(models.Model):
    """A tier (Free, Pro, Business); a higher rank is an upgrade."""

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    rank = models.PositiveSmallIntegerField(default=0)
    trial_days = models.PositiveSmallIntegerField(default=0)
    features = models.JSONField(default=list, blank=True, help_text="A list of short feature lines.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name

    def features_in(self, language: str | None = None) -> list[str]:
        """The feature lines in `language` (default: the active one).

        `features` is a list (the same lines in every language) or a dict of language code to
        lines; a language without lines falls back to English, then to the default language.
        """
        features = self.features or []
        if isinstance(features, list):
            return [str(line) for line in features]
        language = (language or get_language() or settings.LANGUAGE_CODE).split("-")[0]
        for code in (language, "en", settings.LANGUAGE_CODE):
            if features.get(code):
                return [str(line) for line in features[code]]
        return []


PRICE_HELD_MESSAGE = _(
    "Customers hold this price, so its amount, currency and cycle cannot change and it cannot be "
    "deleted. Deactivate it and add a new price instead."
)


ONE_ACTIVE_PRICE_MESSAGE = _(
    "This plan already has an active price in this cycle and currency. "
    "Deactivate that one first, then add the new price."
)


class PriceQuerySet(models.QuerySet):
    def available(self):
        return self.filter(is_active=True, plan__is_active=True)


class Price(models.Model):
    """A plan in one cycle and currency."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    cycle = models.CharField(max_length=32, choices=lifecycle.CYCLE_CHOICES)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="eur")
    is_active = models.BooleanField(default=True)

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["plan__rank", "cycle"]
        constraints = [
            models.CheckConstraint(condition=Q(cycle__in=lifecycle.CYCLE_MONTHS.keys()), name="price_cycle_valid"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="price_currency_lowercase_iso"),
            models.UniqueConstraint(
                fields=["plan", "cycle", "currency"],
                condition=Q(is_active=True),
                name="one_active_price_per_plan_cycle_currency",
                violation_error_message=ONE_ACTIVE_PRICE_MESSAGE,
            ),
        ]

    # What a subscription copies or bills from its price: fixed once any customer holds it.
    HELD_FIELDS = ("amount_minor", "currency", "cycle")

    def __str__(self) -> str:
        return f"{self.plan.name} {self.get_cycle_display()} {self.money.format()}"

    def save(self, *args, **kwargs):
        # The last guard for code that skips forms: customers keep the price they signed up for.
        if self.held_fields_changed():
            raise ValidationError(PRICE_HELD_MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_held():
            raise ValidationError(PRICE_HELD_MESSAGE)
        return super().delete(*args, **kwargs)

    def clean(self):
        super().clean()
        changed = self.held_fields_changed()
        if changed:
            raise ValidationError({field: PRICE_HELD_MESSAGE for field in changed})

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def is_free(self) -> bool:
        return self.amount_minor == 0

    def is_held(self) -> bool:
        """Whether a subscription (of any status) has this price, or has it scheduled."""
        if self.pk is None:
            return False
        return Subscription.objects.filter(Q(price=self) | Q(scheduled_price=self)).exists()

    def held_fields_changed(self) -> list[str]:
        """The held fields that differ from the stored row, if customers hold this price."""
        if self.pk is None:
            return []
        stored = Price.objects.filter(pk=self.pk).values(*self.HELD_FIELDS).first()
        if stored is None:
            return []
        changed = [field for field in self.HELD_FIELDS if stored[field] != getattr(self, field)]
        return changed if changed and self.is_held() else []


class SubscriptionQuerySet(models.QuerySet):
    def live(self):
        return self.filter(status__in=lifecycle.LIVE_STATUSES)

    def due(self, now):
        """Everything the renewal sweep must look at: each condition is an indexed column.

        `Subscription.is_due` is the same rule for one loaded row; change both together.
        """
        return self.filter(
            Q(status__in=[lifecycle.ACTIVE, lifecycle.TRIALING], cancel_at__lte=now)
            | Q(status=lifecycle.TRIALING, trial_end__lte=now)
            | Q(status=lifecycle.ACTIVE, current_period_end__lte=now)
            | Q(status=lifecycle.PAUSED, resume_at__lte=now)
            # A dunning retry, or a charge to try again after Stripe was unreachable.
            | Q(status__in=[lifecycle.ACTIVE, lifecycle.TRIALING, lifecycle.PAST_DUE], next_retry_at__lte=now)
        )


class Subscription(models.Model):
    """An account's current price, status and period. The price is copied onto it."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=lifecycle.STATUS_CHOICES)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)

    # Period n ends at billing_anchor_at + n cycles (lifecycle.period_end). A plan change moves
    # the anchor to the moment of the change; a pause moves it later by the time spent paused.
    billing_anchor_at = models.DateTimeField()
    period_number = models.PositiveIntegerField(default=1)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(db_index=True)
    # What the current period's plan line actually cost after discounts (0 in a trial or while
    # unpaid): the base of the proration credit.
    current_period_paid_minor = models.PositiveIntegerField(default=0)

    trial_end = models.DateTimeField(null=True, blank=True, db_index=True)
    commitment_end_at = models.DateTimeField(null=True, blank=True)
    cancel_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # A plan or cycle change waiting for the end of the period (or of the commitment).
    scheduled_price = models.ForeignKey(Price, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # A retention discount: percent off the plan line of the next N renewals.
    discount_percent = models.PositiveSmallIntegerField(default=0)
    discount_periods_left = models.PositiveSmallIntegerField(default=0)
    # Dunning of the open invoice: when payment first failed, retries done, the next one.
    past_due_since = models.DateTimeField(null=True, blank=True)
    retries_done = models.PositiveSmallIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)

    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=lifecycle.STATUSES), name="subscription_status_valid"),
            models.UniqueConstraint(
                fields=["account"], condition=~Q(status=lifecycle.CANCELED), name="one_live_subscription_per_account"
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__lte=100), name="subscription_discount_percent_max_100"
            ),
        ]
        # Operator actions in admin, each checked by a has_<action>_permission of the ModelAdmin.
        permissions = [
            ("cancel_subscription", "Can cancel subscriptions (now or at the period end)"),
            ("undo_cancel_subscription", "Can undo a scheduled cancellation"),
            ("pause_subscription", "Can pause subscriptions"),
            ("resume_subscription", "Can resume paused subscriptions"),
            ("change_subscription_price", "Can change the price of subscriptions"),
            ("retry_subscription_payment", "Can retry the payment of an open invoice"),
            ("extend_subscription_trial", "Can extend trials"),
            ("view_revenue_dashboard", "Can view the revenue dashboard"),
        ]

    def __str__(self) -> str:
        return f"{self.account} · {self.price.plan.name} · {self.status}"

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def cycle(self) -> str:
        return self.price.cycle

    @property
    def is_live(self) -> bool:
        return self.status in lifecycle.LIVE_STATUSES

    @property
    def is_canceling(self) -> bool:
        return self.cancel_at is not None and self.status in (lifecycle.TRIALING, lifecycle.ACTIVE)

    @property
    def badge(self) -> str:
        """One of the six badges: the five statuses plus "canceling"."""
        return "canceling" if self.is_canceling else self.status

    def is_due(self, now) -> bool:
        """The sweep's `SubscriptionQuerySet.due` for this row as loaded (saves a query per step)."""
        status = self.status
        return (
            (status in (lifecycle.ACTIVE, lifecycle.TRIALING) and self.cancel_at is not None and self.cancel_at <= now)
            or (status == lifecycle.TRIALING and self.trial_end is not None and self.trial_end <= now)
            or (status == lifecycle.ACTIVE and self.current_period_end <= now)
            or (status == lifecycle.PAUSED and self.resume_at is not None and self.resume_at <= now)
            or (
                status in (lifecycle.ACTIVE, lifecycle.TRIALING, lifecycle.PAST_DUE)
                and self.next_retry_at is not None
                and self.next_retry_at <= now
            )
        )

    def in_commitment(self, now) -> bool:
        return self.commitment_end_at is not None and now < self.commitment_end_at


class SubscriptionEvent(models.Model):
    """An append-only audit row for every change: who, when, from, to, why."""

    CUSTOMER, OPERATOR, JOB, WEBHOOK = "customer", "operator", "job", "webhook"
    ACTOR_KINDS = [(CUSTOMER, _("Customer")), (OPERATOR, _("Operator")), (JOB, _("Job")), (WEBHOOK, _("Webhook"))]

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=40)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_kind = models.CharField(max_length=16, choices=ACTOR_KINDS)
    # The subscription's price after the event, so revenue can be replayed month by month.
    price = models.ForeignKey(Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Newest first with the id as tie-break, as the billing page lists them (selectors.NEWEST_FIRST):
        # its last events are read straight from the index, however long the history.
        indexes = [models.Index(fields=["subscription", "-created_at", "-id"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_status} → {self.to_status}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Subscription events are append-only.")
        super().save(*args, **kwargs)


class Invoice(models.Model):
    """What an account owes for one subscription period (or for a plan change)."""

    DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE = "draft", "open", "paid", "void", "uncollectible"
    STATUS_CHOICES = [
        (DRAFT, pgettext_lazy("invoice status", "Draft")),
        (OPEN, pgettext_lazy("invoice status", "Open")),
        (PAID, pgettext_lazy("invoice status", "Paid")),
        (VOID, pgettext_lazy("invoice status", "Void")),
        (UNCOLLECTIBLE, pgettext_lazy("invoice status", "Uncollectible")),
    ]

    # Why the invoice exists, in Stripe's words: a new subscription, a plan change, a renewal.
    CREATE, UPDATE, CYCLE = "subscription_create", "subscription_update", "subscription_cycle"
    REASON_CHOICES = [(CREATE, _("New subscription")), (UPDATE, _("Plan change")), (CYCLE, _("Renewal"))]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    # Empty only for the first invoice of a paid start, paid before the subscription exists.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    billing_reason = models.CharField(max_length=24, choices=REASON_CHOICES)
    # The price the plan line is for: what a paid start or change puts on the subscription.
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=OPEN)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    subtotal_minor = models.IntegerField(default=0)  # sum of the lines
    credit_applied_minor = models.PositiveIntegerField(default=0)  # from the account's credit balance
    amount_due_minor = models.PositiveIntegerField(default=0)  # what the card is charged
    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(blank=True)
    # The seller as settings.INVOICE_ISSUER named it when the invoice was made (an issued invoice
    # never changes); empty on invoices made before it was recorded.
    issuer = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # voided or marked uncollectible

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "paid", "void", "uncollectible"]), name="invoice_status_valid"
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(subscription__isnull=False),
                name="one_invoice_per_subscription_period",
            ),
        ]
        indexes = [
            # As the invoice lists are ordered (selectors.NEWEST_FIRST): a page of them is read from the index.
            models.Index(fields=["account", "-created_at", "-id"]),
            # An account's open invoices (dunning, payments to confirm) among its paid ones.
            models.Index(fields=["account"], condition=Q(status="open"), name="invoice_open_by_account"),
        ]
        permissions = [("mark_invoice_uncollectible", "Can mark open invoices uncollectible")]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"{self.created_at:%Y}-{self.pk:06d}" if self.pk else "draft"

    @property
    def amount_due(self) -> Money:
        return Money(self.amount_due_minor, self.currency)


class InvoiceLine(models.Model):
    """A line of an invoice; credits and discounts are negative."""

    PLAN, PRORATION_CREDIT, DISCOUNT, REFUND = "plan", "proration_credit", "discount", "refund"
    KIND_CHOICES = [
        (PLAN, pgettext_lazy("invoice line", "Plan")),
        (PRORATION_CREDIT, pgettext_lazy("invoice line", "Unused time credit")),
        (DISCOUNT, pgettext_lazy("invoice line", "Discount")),
        (REFUND, pgettext_lazy("invoice line", "Refund")),
    ]

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=24, choices=KIND_CHOICES)
    description = models.CharField(max_length=300)
    amount_minor = models.IntegerField()
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_minor}"


class Payment(models.Model):
    """One attempt to collect an invoice at the processor, recorded before Stripe is called."""

    PENDING, SUCCEEDED, FAILED, REQUIRES_ACTION, ABANDONED = (
        "pending",
        "succeeded",
        "failed",
        "requires_action",
        "abandoned",
    )
    STATUS_CHOICES = [
        (PENDING, pgettext_lazy("payment status", "Pending")),
        (SUCCEEDED, pgettext_lazy("payment status", "Succeeded")),
        (FAILED, pgettext_lazy("payment status", "Failed")),
        (REQUIRES_ACTION, pgettext_lazy("payment status", "Needs authentication")),
        (ABANDONED, pgettext_lazy("payment status", "Abandoned")),
    ]

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    attempt = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    refunded_minor = models.PositiveIntegerField(default=0)
    # A chargeback opened by the card holder's bank (charge.dispute.created): for operators.
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "attempt"], name="one_payment_per_invoice_attempt"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "requires_action", "abandoned"]),
                name="payment_status_valid",
            ),
        ]
        permissions = [("refund_payment", "Can refund payments")]
        indexes = [
            # The sweep's look for payments a dead worker left pending.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="payment_pending_created"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} attempt {self.attempt}: {self.status}"


class CreditEntry(models.Model):
    """The account's credit ledger: the balance is the sum of the entries, never a stored number."""

    PRORATION_EXCESS, APPLIED, GRANT, REMOVAL, REFUND = (
        "proration_excess",
        "applied_to_invoice",
        "grant",
        "removal",
        "refund",
    )
    KIND_CHOICES = [
        (PRORATION_EXCESS, _("Unused time kept as credit")),
        (APPLIED, _("Applied to an invoice")),
        (GRANT, _("Credit granted")),
        (REMOVAL, _("Credit removed")),
        (REFUND, _("Refund as credit")),
    ]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_entries")
    amount_minor = models.IntegerField()
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=24, choices=KIND_CHOICES)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_entries")
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "credit entries"
        permissions = [("adjust_account_credit", "Can grant or remove account credit")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.amount_minor} {self.currency}"


class EmailSent(models.Model):
    """One row per email sent, so each reminder or receipt goes out once even if a job runs twice."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="emails_sent")
    kind = models.CharField(max_length=64)
    # What makes this email unique within its kind, e.g. the invoice or the trial end it is about.
    key = models.CharField(max_length=200)
    recipients = models.TextField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="one_email_per_kind_and_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class Refund(models.Model):
    """Money given back for a payment through Stripe, recorded before Stripe is called.

    A succeeded refund is also a credit note: a negative `refund` line on the payment's invoice
    and `Payment.refunded_minor`. The idempotency key counts the payment's refunds.
    """

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUS_CHOICES = [
        (PENDING, pgettext_lazy("refund status", "Pending")),
        (SUCCEEDED, pgettext_lazy("refund status", "Succeeded")),
        (FAILED, pgettext_lazy("refund status", "Failed")),
    ]

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    failure_message = models.CharField(max_length=500, blank=True)
    invoice_line = models.OneToOneField(
        InvoiceLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="refund"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]), name="refund_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id or self.pk} of {self.payment}"

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)


class ReconciliationRun(models.Model):
    """One comparison of local payments and refunds with Stripe's, over a window of days."""

    RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
    STATUS_CHOICES = [
        (RUNNING, pgettext_lazy("reconciliation status", "Running")),
        (COMPLETED, pgettext_lazy("reconciliation status", "Completed")),
        (FAILED, pgettext_lazy("reconciliation status", "Failed")),
    ]

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=RUNNING)
    error = models.TextField(blank=True)
    payment_intents_checked = models.PositiveIntegerField(default=0)
    refunds_checked = models.PositiveIntegerField(default=0)
    payments_checked = models.PositiveIntegerField(default=0)
    differences_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_reconciliation", "Can start a reconciliation with Stripe")]

    def __str__(self) -> str:
        return f"Reconciliation {self.started_at:%Y-%m-%d %H:%M}"


class ReconciliationDifference(models.Model):
    """Something that differs between our records and Stripe's, with a link to each side."""

    MISSING_LOCALLY, MISSING_AT_STRIPE, AMOUNT_MISMATCH, STATUS_MISMATCH = (
        "missing_locally",
        "missing_at_stripe",
        "amount_mismatch",
        "status_mismatch",
    )
    KIND_CHOICES = [
        (MISSING_LOCALLY, _("Missing locally")),
        (MISSING_AT_STRIPE, _("Missing at Stripe")),
        (AMOUNT_MISMATCH, _("Amount mismatch")),
        (STATUS_MISMATCH, _("Status mismatch")),
    ]
    PAYMENT, REFUND, INVOICE = "payment", "refund", "invoice"
    OBJECT_CHOICES = [(PAYMENT, _("Payment")), (REFUND, _("Refund")), (INVOICE, _("Invoice"))]

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="differences")
    kind = models.CharField(max_length=24, choices=KIND_CHOICES)
    object_kind = models.CharField(max_length=16, choices=OBJECT_CHOICES)
    stripe_id = models.CharField(max_length=255, blank=True)  # pi_… or re_…
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)  # for the dashboard link
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    local_value = models.CharField(max_length=200, blank=True)
    stripe_value = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.stripe_id or self.invoice_id}"


class StripeEvent(models.Model):
    """A webhook event from Stripe, recorded once by its id and processed once by a task."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    # The event's object (a PaymentIntent, a Charge, ...) as Stripe sent it.
    data = models.JSONField(default=dict)
    stripe_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    # What processing did ("settled payment 12", "ignored: not ours"), or the last error.
    outcome = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The sweep's look for events whose task was lost.
            models.Index(
                fields=["received_at"], condition=Q(processed_at__isnull=True), name="stripe_event_unprocessed"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
