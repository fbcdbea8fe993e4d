"""Retention: the offers operators configure, each cancellation attempt, and 1:1 session requests.

A `CancellationFlow` row is written for every attempt to cancel (SPEC section 6): the reason, the
offer shown (a snapshot of its terms, so editing an offer later does not rewrite history), the
outcome, and whether a save still held 30 days later. Changes go through `services.py`.
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from accounts.models import Account
from subscriptions import lifecycle
from subscriptions.models import Price, Subscription


class Reason(models.TextChoices):
    """Why a customer is leaving: the seven reasons of SPEC section 6."""

    TOO_EXPENSIVE = "too_expensive", _("It is too expensive")
    MISSING_FEATURES = "missing_features", _("It is missing features I need")
    NOT_USING = "not_using_enough", _("I am not using it enough")
    SWITCHING = "switching_product", _("I am switching to another product")
    TEMPORARY = "temporary_need", _("I only needed it for a while")
    TECHNICAL = "technical_problems", _("I had technical problems")
    OTHER = "other", _("Another reason")


class OfferKind(models.TextChoices):
    DISCOUNT = "discount", _("Discount on the next invoices")
    PAUSE = "pause", pgettext_lazy("offer kind", "Pause")
    CHEAPER_PLAN = "cheaper_plan", _("Cheaper plan")
    SESSION = "session", _("Free 1:1 session with the success team")


def offer_terms_text(kind: str, terms: dict) -> str:
    """A short description of an offer's terms, for operators and exports."""
    if kind == OfferKind.DISCOUNT:
        return (
            ngettext(
                "%(percent)s%% off the next invoice",
                "%(percent)s%% off the next %(periods)s invoices",
                terms["periods"],
            )
            % terms
        )
    if kind == OfferKind.PAUSE:
        return ngettext("Pause for %(months)s month", "Pause for %(months)s months", terms["months"]) % terms
    if kind == OfferKind.CHEAPER_PLAN:
        if terms.get("price_label"):
            return _("Switch to %(price)s") % {"price": terms["price_label"]}
        return str(_("Switch to the next cheaper plan"))
    if kind == OfferKind.SESSION:
        return str(_("Free 1:1 session"))
    return ""


class RetentionOffer(models.Model):
    """What a customer who gives `reason` is offered; the first active one that applies is shown."""

    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    kind = models.CharField(_("offer"), max_length=16, choices=OfferKind.choices)
    is_active = models.BooleanField(_("on"), default=True)
    order = models.PositiveSmallIntegerField(
        _("order"), default=0, help_text=_("Lower numbers are tried first for the same reason.")
    )
    discount_percent = models.PositiveSmallIntegerField(
        _("discount percent"), null=True, blank=True, help_text=_("Discount offers: 1 to 100.")
    )
    discount_periods = models.PositiveSmallIntegerField(
        _("discounted invoices"),
        null=True,
        blank=True,
        help_text=_("Discount offers: how many of the next invoices get the discount (1 to 24)."),
    )
    pause_months = models.PositiveSmallIntegerField(
        _("pause months"), null=True, blank=True, help_text=_("Pause offers: 1, 2 or 3 (monthly prices only).")
    )
    target_price = models.ForeignKey(
        Price,
        verbose_name=_("target price"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_(
            "Cheaper plan offers: the price to offer. Empty: the most expensive paid price below the "
            "customer's, in the same cycle and currency."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reason", "order", "id"]
        verbose_name = _("retention offer")
        verbose_name_plural = _("retention offers")
        constraints = [
            models.CheckConstraint(condition=Q(reason__in=Reason.values), name="retention_offer_reason_valid"),
            models.CheckConstraint(condition=Q(kind__in=OfferKind.values), name="retention_offer_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind=OfferKind.DISCOUNT)
                | Q(
                    discount_percent__gte=1,
                    discount_percent__lte=100,
                    discount_periods__gte=1,
                    discount_periods__lte=lifecycle.DISCOUNT_MAX_PERIODS,
                ),
                name="retention_offer_discount_terms",
            ),
            models.CheckConstraint(
                condition=~Q(kind=OfferKind.PAUSE) | Q(pause_months__in=lifecycle.PAUSE_MONTHS),
                name="retention_offer_pause_terms",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.terms_text}"

    def clean(self) -> None:
        errors = {}
        if self.kind == OfferKind.DISCOUNT:
            if not self.discount_percent or not 1 <= self.discount_percent <= 100:
                errors["discount_percent"] = _("A discount is between 1 and 100 percent.")
            if not self.discount_periods or not 1 <= self.discount_periods <= lifecycle.DISCOUNT_MAX_PERIODS:
                errors["discount_periods"] = _("A discount lasts 1 to 24 invoices.")
        if self.kind == OfferKind.PAUSE and self.pause_months not in lifecycle.PAUSE_MONTHS:
            errors["pause_months"] = _("A pause lasts 1, 2 or 3 months.")
        if errors:
            raise ValidationError(errors)

    @property
    def terms(self) -> dict:
        """The offer's terms as shown to a customer (copied onto the flow)."""
        if self.kind == OfferKind.DISCOUNT:
            return {"percent": self.discount_percent, "periods": self.discount_periods}
        if self.kind == OfferKind.PAUSE:
            return {"months": self.pause_months}
        if self.kind == OfferKind.CHEAPER_PLAN and self.target_price_id:
            return {"price_id": self.target_price_id, "price_label": str(self.target_price)}
        return {}

    @property
    def terms_text(self) -> str:
        return offer_terms_text(self.kind, self.terms)


class CancellationFlowQuerySet(models.QuerySet):
    def started_between(self, start, end):
        return self.filter(started_at__gte=start, started_at__lt=end)


class CancellationFlow(models.Model):
    """One attempt to cancel: reason, offer shown, outcome, and whether a save held 30 days."""

    OPEN, SAVED, CANCELED, ABANDONED = "open", "saved", "canceled", "abandoned"
    OUTCOME_CHOICES = [
        (OPEN, pgettext_lazy("cancellation outcome", "Open")),
        (SAVED, pgettext_lazy("cancellation outcome", "Saved")),
        (CANCELED, pgettext_lazy("cancellation outcome", "Canceled")),
        (ABANDONED, pgettext_lazy("cancellation outcome", "Abandoned")),
    ]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cancellation_flows")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="cancellation_flows")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Empty when the customer skipped the question.
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices, blank=True)
    reason_text = models.TextField(_("in their words"), blank=True)
    # The offer shown (none when nothing applied or the customer skipped the offers), with a
    # snapshot of its kind and terms at that moment.
    offer = models.ForeignKey(RetentionOffer, null=True, blank=True, on_delete=models.PROTECT, related_name="flows")
    offer_kind = models.CharField(_("offer shown"), max_length=16, choices=OfferKind.choices, blank=True)
    offer_terms = models.JSONField(default=dict, blank=True)
    offer_accepted_at = models.DateTimeField(_("offer accepted at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=OUTCOME_CHOICES, default=OPEN)
    cancel_at = models.DateTimeField(_("cancellation date"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # A confirmed cancellation that the customer took back (the flow then counts as a save).
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    # A save counts only if the subscription is still live 30 days later: None until then.
    save_held = models.BooleanField(_("save held after 30 days"), null=True, blank=True)
    save_checked_at = models.DateTimeField(null=True, blank=True)

    objects = CancellationFlowQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("cancellation flow")
        verbose_name_plural = _("cancellation flows")
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=["open", "saved", "canceled", "abandoned"]), name="cancellation_outcome_valid"
            ),
            models.CheckConstraint(condition=Q(reason__in=[*Reason.values, ""]), name="cancellation_reason_valid"),
            # Two tabs or a double click continue the same attempt instead of starting two.
            models.UniqueConstraint(
                fields=["subscription"], condition=Q(outcome="open"), name="one_open_cancellation_per_subscription"
            ),
        ]
        indexes = [models.Index(fields=["outcome", "finished_at"])]

    def __str__(self) -> str:
        return f"{self.account} · {self.started_at:%Y-%m-%d} · {self.outcome}"

    @property
    def offer_terms_text(self) -> str:
        return offer_terms_text(self.offer_kind, self.offer_terms) if self.offer_kind else ""

    @property
    def saved_at(self):
        """When the flow became a save: the offer accepted or kept, or the cancellation undone."""
        return self.undone_at or self.finished_at


class SessionRequest(models.Model):
    """A customer's request for a free 1:1 session with the success team (a retention offer)."""

    NEW, SCHEDULED, DONE, DECLINED = "new", "scheduled", "done", "declined"
    STATUS_CHOICES = [
        (NEW, pgettext_lazy("session request status", "New")),
        (SCHEDULED, pgettext_lazy("session request status", "Scheduled")),
        (DONE, pgettext_lazy("session request status", "Done")),
        (DECLINED, pgettext_lazy("session request status", "Could not take place")),
    ]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="session_requests")
    flow = models.OneToOneField(CancellationFlow, on_delete=models.PROTECT, related_name="session_request")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact_email = models.EmailField(_("contact email"))
    # Up to three moments the customer proposed, as ISO 8601 UTC strings.
    proposed_times = models.JSONField(_("proposed times"), default=list)
    note = models.TextField(_("customer's note"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=STATUS_CHOICES, default=NEW)
    scheduled_for = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    operator_note = models.TextField(_("operator's note"), blank=True)
    created_at = models.DateTimeField(_("requested at"), db_index=True)
    team_notified_at = models.DateTimeField(_("team emailed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("1:1 session request")
        verbose_name_plural = _("1:1 session requests")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["new", "scheduled", "done", "declined"]), name="session_request_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} · {self.created_at:%Y-%m-%d}"

    @property
    def proposed_times_parsed(self) -> list[datetime]:
        return [datetime.fromisoformat(moment) for moment in self.proposed_times]
