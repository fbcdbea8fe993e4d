"""Every change to a subscription: the rules of lifecycle.py applied to the database.

Views, admin actions, tasks and webhooks change subscriptions only through these functions
(keyword-only arguments; `now` defaults to the clock). A refused change raises
`lifecycle.InvalidTransition` and changes nothing.

Money moves in three steps, never inside a database transaction while Stripe is called:
1. under the account's billing claim, an invoice and a pending `Payment` are committed;
2. Stripe is called (PaymentIntent created, its id saved, then confirmed off-session);
3. the outcome is settled in one transaction, which applies what the invoice pays for.
A worker that dies between the steps leaves a pending payment; `payments_recover_stale`
asks Stripe what happened to it before anything is charged again.
"""

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Sum
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Account, Membership, User
from billing_portal.lib import clock
from billing_portal.lib.money import format_money, percent_of

from . import declines, gateway, lifecycle, selectors
from .lifecycle import InvalidTransition
from .models import (
    CreditEntry,
    Invoice,
    InvoiceLine,
    Payment,
    Price,
    Refund,
    StripeEvent,
    Subscription,
    SubscriptionEvent,
)

log = logging.getLogger(__name__)

Actor = User | str  # a user (customer or operator), or "job" / "webhook"


class PaymentFailed(InvalidTransition):
    """The card was declined (or needs authentication); nothing changed."""

    def __init__(self, message: str, *, requires_action: bool = False):
        super().__init__(message)
        self.requires_action = requires_action


class PaymentPending(InvalidTransition):
    """Stripe could not be reached; the payment is checked again by the next sweep."""


class PaymentMethodRequired(InvalidTransition):
    """A paid price needs a card on file."""


class BillingBusy(InvalidTransition):
    """Another payment for this account is being processed right now."""


# --- Audit, transitions, claims --------------------------------------------------------------------
def _actor_fields(actor: Actor, account_id: int) -> tuple[User | None, str]:
    if isinstance(actor, str):
        if actor not in (SubscriptionEvent.JOB, SubscriptionEvent.WEBHOOK):
            raise ValueError(f"Unknown actor {actor!r}")
        return None, actor
    membership = Membership.objects.filter(user=actor).only("account_id").first()
    if membership and membership.account_id == account_id:
        return actor, SubscriptionEvent.CUSTOMER
    if actor.is_staff:
        return actor, SubscriptionEvent.OPERATOR
    raise InvalidTransition(_("You cannot change this subscription."))


def _record(sub: Subscription, kind: str, *, actor: Actor, now: datetime, from_status: str, reason="", data=None):
    user, actor_kind = _actor_fields(actor, sub.account_id)
    SubscriptionEvent.objects.create(
        subscription=sub,
        kind=kind,
        from_status=from_status,
        to_status=sub.status,
        actor=user,
        actor_kind=actor_kind,
        price_id=sub.price_id,
        reason=reason,
        data=data or {},
        created_at=now,
    )


def _transition(sub: Subscription, event: str, *, actor: Actor, now: datetime, reason="", data=None, **changes):
    """The one path for every change of state: check the table, update WHERE status=old, audit."""
    to_status = lifecycle.next_status(sub.status, event)
    updated = Subscription.objects.filter(pk=sub.pk, status=sub.status).update(status=to_status, **changes)
    if updated != 1:
        raise InvalidTransition(_("This subscription changed in the meantime. Reload the page and try again."))
    from_status = sub.status
    for field, value in changes.items():
        setattr(sub, field, value)
    sub.status = to_status
    _record(sub, event, actor=actor, now=now, from_status=from_status, reason=reason, data=data)
    return sub


def _claim(account_id: int, now: datetime) -> bool:
    """Take the account's billing claim with a conditional UPDATE; True if this caller has it."""
    until = now + timedelta(seconds=settings.BILLING_CLAIM_SECONDS)
    free = Q(billing_claimed_until__isnull=True) | Q(billing_claimed_until__lt=now)
    return Account.objects.filter(free, pk=account_id).update(billing_claimed_until=until) == 1


def _release(account_id: int) -> None:
    Account.objects.filter(pk=account_id).update(billing_claimed_until=None)


@contextmanager
def _billing_claim(account_id: int, now: datetime):
    if not _claim(account_id, now):
        raise BillingBusy(_("A payment for this account is being processed. Try again in a minute."))
    try:
        yield
    finally:
        _release(account_id)


@contextmanager
def _locked(subscription: Subscription, now: datetime):
    """Lock the row for a change that moves no money; refuse while a payment is in flight."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update(of=("self",)).select_related("price__plan").get(pk=subscription.pk)
        claimed = Account.objects.filter(pk=sub.account_id, billing_claimed_until__gt=now).exists()
        if claimed:
            raise BillingBusy(_("A payment for this account is being processed. Try again in a minute."))
        yield sub
    _refresh(subscription, sub)


def _refresh(target: Subscription, source: Subscription) -> None:
    """Copy the saved state onto the caller's instance, so it sees what the service did."""
    for field in Subscription._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.fields_cache = dict(source._state.fields_cache)


def _notify(kind: str, object_id: int) -> None:
    """Email the customer about `object_id` (notices.py) from a task, once this transaction commits.

    A rolled-back change sends nothing; the notice checks again, when it runs, that what it tells
    is still true (a payment that failed was not paid in the meantime, ...).
    """
    from . import tasks  # tasks.py imports this module

    tasks.send_notice.delay_on_commit(kind, object_id)


# --- Stripe customer and card ------------------------------------------------------------------------
def account_ensure_stripe_customer(*, account: Account) -> str:
    """The account's Stripe customer id, creating the customer the first time (idempotently)."""
    if not account.stripe_customer_id:
        customer_id = gateway.customer_create(name=account.name, email=account.billing_email, account_id=account.pk)
        Account.objects.filter(pk=account.pk, stripe_customer_id="").update(stripe_customer_id=customer_id)
        account.refresh_from_db(fields=["stripe_customer_id"])
    return account.stripe_customer_id


def account_card_setup_start(*, account: Account) -> tuple[str, str]:
    """A SetupIntent for Stripe.js card entry: (setup_intent_id, client_secret)."""
    return gateway.setup_intent_create(customer_id=account_ensure_stripe_customer(account=account))


def account_card_setup_finish(*, account: Account, setup_intent_id: str, actor: Actor, now: datetime | None = None):
    """Make the card a succeeded SetupIntent saved the default; a past-due invoice is retried at once."""
    now = now or clock.now()
    try:
        card = gateway.setup_intent_card(setup_intent_id=setup_intent_id, customer_id=account.stripe_customer_id)
    except ValueError as error:
        raise InvalidTransition(str(error)) from error
    account_card_save(account=account, card=card)
    sub = selectors.subscription_live_for_account(account=account)
    if sub and sub.status == lifecycle.PAST_DUE:
        Subscription.objects.filter(pk=sub.pk).update(next_retry_at=now)
        subscription_process_due(subscription_id=sub.pk, now=now)
    return card


def account_card_save(*, account: Account, card: gateway.Card) -> None:
    """Remember the default card as Stripe reported it (pages never ask Stripe)."""
    account.payment_method_id = card.payment_method_id
    account.card_brand = card.brand
    account.card_last4 = card.last4
    account.card_exp_month = card.exp_month
    account.card_exp_year = card.exp_year
    account.save(update_fields=["payment_method_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year"])


# --- Credit ledger -------------------------------------------------------------------------------------
def _credit(account: Account, amount_minor: int, kind: str, *, now, invoice=None, note="", created_by=None) -> None:
    if amount_minor:
        CreditEntry.objects.create(
            account=account,
            amount_minor=amount_minor,
            currency=account.currency,
            kind=kind,
            invoice=invoice,
            note=note,
            created_by=created_by,
            created_at=now,
        )


# --- Invoices and charging ------------------------------------------------------------------------------
def _account_language(account: Account):
    """Invoice lines are a document the customer keeps: written in the account's language."""
    return translation.override(account.language or settings.LANGUAGE_CODE)


@dataclass(frozen=True)
class _Line:
    kind: str
    description: str
    amount_minor: int


def _invoice_create(
    *, account: Account, subscription, price: Price, reason: str, period_start, period_end, lines: list[_Line], now
) -> Invoice:
    """An open invoice with its lines; the account's credit balance pays what it can first."""
    subtotal = sum(line.amount_minor for line in lines)
    balance = selectors.account_credit_balance_minor(account=account)
    credit_applied = max(0, min(balance, subtotal))
    invoice = Invoice.objects.create(
        account=account,
        subscription=subscription,
        billing_reason=reason,
        price=price,
        currency=price.currency,
        period_start=period_start,
        period_end=period_end,
        subtotal_minor=subtotal,
        credit_applied_minor=credit_applied,
        amount_due_minor=max(0, subtotal - credit_applied),
        customer_name=account.name,
        customer_email=account.billing_email,
        issuer=settings.INVOICE_ISSUER,
        created_at=now,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            kind=line.kind,
            description=line.description,
            amount_minor=line.amount_minor,
            period_start=period_start if line.kind == InvoiceLine.PLAN else None,
            period_end=period_end if line.kind == InvoiceLine.PLAN else None,
        )
        for line in lines
    )
    _credit(account, -credit_applied, CreditEntry.APPLIED, now=now, invoice=invoice)
    return invoice


def _payment_create(invoice: Invoice, now: datetime, attempts_before: int | None = None) -> Payment:
    attempt = (invoice.payments.count() if attempts_before is None else attempts_before) + 1
    return Payment.objects.create(
        invoice=invoice,
        attempt=attempt,
        idempotency_key=f"invoice-{invoice.pk}-attempt-{attempt}",
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
        created_at=now,
    )


def _in_transaction() -> bool:
    """Whether a transaction of ours is open (a test case's own wrapping one does not count)."""
    return any(not getattr(block, "_from_testcase", False) for block in transaction.get_connection().atomic_blocks)


def _charge(payment: Payment, account: Account) -> gateway.ChargeResult:
    """Create the PaymentIntent, save its id, then confirm it off-session. Never in a transaction."""
    if _in_transaction():
        raise RuntimeError("Stripe must not be called inside a database transaction.")
    if not account.payment_method_id:
        return gateway.ChargeResult(
            status=gateway.FAILED,
            payment_intent_id="",
            failure_code="no_payment_method",
            failure_message=_("There is no card on file."),
        )
    if not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = gateway.payment_intent_create(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            customer_id=account.stripe_customer_id,
            payment_method_id=account.payment_method_id,
            idempotency_key=payment.idempotency_key,
            metadata={"invoice_id": payment.invoice_id, "payment_id": payment.pk, "account_id": account.pk},
        )
        Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id=payment.stripe_payment_intent_id)
    return gateway.payment_intent_confirm(
        payment_intent_id=payment.stripe_payment_intent_id, idempotency_key=payment.idempotency_key
    )


def _collect(invoice: Invoice, *, actor: Actor, now: datetime) -> Payment | None:
    """Charge an open invoice once more and settle the outcome (caller holds the billing claim).

    None when there was nothing left to charge: an earlier attempt that waited for the customer's
    authentication turned out to have been completed.
    """
    account = invoice.account
    earlier = list(invoice.payments.only("id", "status", "stripe_payment_intent_id"))
    waiting = [p for p in earlier if p.status == Payment.REQUIRES_ACTION and p.stripe_payment_intent_id]
    try:
        if waiting and not _supersede_requires_action(waiting, invoice, now):
            return None
    except gateway.GatewayError as error:
        log.warning("Stripe unreachable before charging invoice %s again: %s", invoice.pk, error)
        _retry_soon(invoice, now)
        return None
    payment = _payment_create(invoice, now, attempts_before=len(earlier))
    try:
        result = _charge(payment, account)
    except gateway.GatewayError as error:
        log.warning("Stripe unreachable for payment %s: %s", payment.pk, error)
        _retry_soon(invoice, now)
        return payment
    return payment_settle(payment=payment, result=result, actor=actor, now=now)


def _supersede_requires_action(waiting: list[Payment], invoice: Invoice, now: datetime) -> bool:
    """Cancel the intents still waiting for the customer's authentication before a new attempt.

    Otherwise the customer could complete an old one after the new one was paid: two charges.
    If one was completed in the meantime, it is settled instead. True if the invoice is still open.
    """
    for payment in waiting:
        try:
            gateway.payment_intent_cancel(payment_intent_id=payment.stripe_payment_intent_id)
            result = gateway.ChargeResult(
                status=gateway.CANCELED,
                payment_intent_id=payment.stripe_payment_intent_id,
                failure_code="superseded",
                failure_message="Replaced by a new attempt.",
            )
        except gateway.GatewayError:
            # Refused when the intent is no longer cancelable (the customer just completed it).
            result = gateway.payment_intent_status(payment_intent_id=payment.stripe_payment_intent_id)
            if result.status == gateway.REQUIRES_ACTION:
                raise
        payment_settle(payment=payment, result=result, actor=SubscriptionEvent.JOB, now=now)
    return Invoice.objects.filter(pk=invoice.pk, status=Invoice.OPEN).exists()


def _retry_soon(invoice: Invoice, now: datetime) -> None:
    """Stripe was unreachable: the sweep looks again in a few minutes (the payment stays pending)."""
    if invoice.subscription_id:
        Subscription.objects.filter(pk=invoice.subscription_id).update(
            next_retry_at=now + timedelta(seconds=settings.BILLING_SWEEP_SECONDS)
        )


def payment_settle(*, payment: Payment, result: gateway.ChargeResult, actor: Actor, now: datetime | None = None):
    """Record what Stripe says of a payment and apply what the invoice pays for, exactly once.

    Used after a charge, by crash recovery, by the authentication page and by webhooks: a settled
    payment is never settled again, so duplicated or late events change nothing. The one way
    forward from a settled state is money that did move: an intent that failed (its customer's
    authentication, say) and then succeeded on-session is recorded as paid, never lost.
    """
    now = now or clock.now()
    if result.status in (gateway.PROCESSING, gateway.REQUIRES_CONFIRMATION):
        return payment
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).select_related("invoice__account").get(pk=payment.pk)
        settleable = (
            payment.status == Payment.PENDING
            or (payment.status == Payment.REQUIRES_ACTION and result.status != gateway.REQUIRES_ACTION)
            or (payment.status == Payment.FAILED and result.status == gateway.SUCCEEDED)
        )
        if not settleable:
            return payment
        invoice = payment.invoice
        payment.finished_at = now
        payment.failure_code = result.failure_code[:64]
        payment.failure_message = result.failure_message[:500]
        if result.status == gateway.SUCCEEDED:
            payment.status = Payment.SUCCEEDED
            payment.save()
            _invoice_paid(invoice, payment, actor=actor, now=now)
        else:
            # A payment that already asked for authentication was counted as failed then.
            counted = payment.status == Payment.REQUIRES_ACTION
            payment.status = Payment.REQUIRES_ACTION if result.status == gateway.REQUIRES_ACTION else Payment.FAILED
            payment.save()
            if not counted:
                _invoice_payment_failed(invoice, payment, actor=actor, now=now)
    return payment


def _invoice_paid(invoice: Invoice, payment: Payment, *, actor: Actor, now: datetime) -> None:
    closed = Invoice.objects.filter(pk=invoice.pk, status=Invoice.OPEN).update(status=Invoice.PAID, paid_at=now)
    if not closed:
        # Paid after we gave up on it (voided or uncollectible): keep the money as credit.
        _credit(
            invoice.account,
            payment.amount_minor,
            CreditEntry.REFUND,
            now=now,
            invoice=invoice,
            note="Payment received for a closed invoice",
        )
        return
    invoice.status, invoice.paid_at = Invoice.PAID, now
    if invoice.billing_reason == Invoice.CREATE:
        _start_paid(invoice, actor=actor, now=now)
    elif invoice.billing_reason == Invoice.UPDATE:
        _change_paid(invoice, actor=actor, now=now)
    else:
        _renewal_paid(invoice, actor=actor, now=now)
    _notify("payment-receipt", invoice.pk)


def _invoice_payment_failed(invoice: Invoice, payment: Payment, *, actor: Actor, now: datetime) -> None:
    if invoice.billing_reason in (Invoice.CREATE, Invoice.UPDATE):
        # The customer is on the page: a declined start or change changes nothing.
        _invoice_void(invoice, now=now)
        return
    sub = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
    if invoice.status != Invoice.OPEN or sub.status == lifecycle.CANCELED:
        return
    data = {"invoice": invoice.number, "payment": payment.pk, "failure_code": payment.failure_code}
    # The customer hears of each failed attempt: a decline, or a bank asking to authenticate.
    notice = "payment-action-required" if payment.status == Payment.REQUIRES_ACTION else "payment-failed"
    if sub.status in (lifecycle.ACTIVE, lifecycle.TRIALING):
        event = "trial_payment_failed" if sub.status == lifecycle.TRIALING else "renewal_failed"
        next_retry = lifecycle.dunning_retry_at(now, settings.BILLING_DUNNING_RETRY_DAYS, 0)
        _transition(
            sub, event, actor=actor, now=now, data=data, past_due_since=now, retries_done=0, next_retry_at=next_retry
        )
        _notify(notice, payment.pk)
        return
    if not isinstance(actor, str):
        # A person's own attempt ("pay now") does not use up the dunning schedule: only the
        # scheduled retries count, so clicking twice can never end the subscription early.
        _record(sub, "payment_retry_failed", actor=actor, now=now, from_status=sub.status, data=data)
        return
    retries_done = sub.retries_done + 1
    next_retry = lifecycle.dunning_retry_at(
        sub.past_due_since or now, settings.BILLING_DUNNING_RETRY_DAYS, retries_done
    )
    if next_retry is not None:
        Subscription.objects.filter(pk=sub.pk).update(retries_done=retries_done, next_retry_at=next_retry)
        _record(sub, "payment_retry_failed", actor=actor, now=now, from_status=sub.status, data=data)
        _notify(notice, payment.pk)
        return
    # Dunning exhausted: the final action runs and the invoice becomes uncollectible.
    Invoice.objects.filter(pk=invoice.pk, status=Invoice.OPEN).update(status=Invoice.UNCOLLECTIBLE, closed_at=now)
    if settings.BILLING_DUNNING_FINAL_ACTION == "pause":
        _transition(
            sub,
            "dunning_paused",
            actor=actor,
            now=now,
            data=data,
            retries_done=retries_done,
            next_retry_at=None,
            paused_at=now,
            resume_at=None,
            current_period_paid_minor=0,
        )
        _notify("subscription-paused-unpaid", sub.pk)
    else:
        _transition(
            sub,
            "dunning_canceled",
            actor=actor,
            now=now,
            data=data,
            retries_done=retries_done,
            next_retry_at=None,
            ended_at=now,
        )
        _notify("subscription-ended", sub.pk)


def _invoice_void(invoice: Invoice, *, now: datetime) -> None:
    if Invoice.objects.filter(pk=invoice.pk, status=Invoice.OPEN).update(status=Invoice.VOID, closed_at=now):
        # Give back the credit balance the invoice had used.
        _credit(
            invoice.account,
            invoice.credit_applied_minor,
            CreditEntry.APPLIED,
            now=now,
            invoice=invoice,
            note="Returned from a void invoice",
        )


def payments_recover_stale(*, now: datetime | None = None) -> int:
    """Ask Stripe about payments left pending by a worker that died; settle each. Returns how many."""
    now = now or clock.now()
    recovered = 0
    for payment_id in selectors.payment_ids_stale(now=now):
        recovered += payment_recover(payment_id=payment_id, now=now)
    return recovered


def payment_recover(*, payment_id: int, now: datetime | None = None) -> int:
    """Resolve one pending payment: finish the charge it started, or learn its outcome."""
    now = now or clock.now()
    payment = Payment.objects.select_related("invoice__account").get(pk=payment_id)
    account = payment.invoice.account
    if payment.status != Payment.PENDING or not _claim(account.pk, now):
        return 0
    try:
        payment.refresh_from_db()
        if payment.status != Payment.PENDING:
            return 0
        if not payment.stripe_payment_intent_id:
            # No PaymentIntent was saved, so none was confirmed: nothing moved.
            Payment.objects.filter(pk=payment.pk, status=Payment.PENDING).update(
                status=Payment.ABANDONED, finished_at=now
            )
            result = None
        else:
            result = gateway.payment_intent_status(payment_intent_id=payment.stripe_payment_intent_id)
            if result.status == gateway.REQUIRES_CONFIRMATION:
                result = _charge(payment, account)
        if result is None and payment.invoice.billing_reason != Invoice.CYCLE:
            _invoice_void(payment.invoice, now=now)
        elif result is not None:
            payment_settle(payment=payment, result=result, actor=SubscriptionEvent.JOB, now=now)
        return 1
    except gateway.GatewayError as error:
        log.warning("Stripe unreachable while recovering payment %s: %s", payment.pk, error)
        return 0
    finally:
        _release(account.pk)


# --- Start ------------------------------------------------------------------------------------------
def _check_price_for(account: Account, price: Price) -> Price:
    price = Price.objects.select_related("plan").filter(pk=price.pk).first()
    if price is None or not price.is_active or not price.plan.is_active:
        raise InvalidTransition(_("This price is not available."))
    if price.currency != account.currency:
        raise InvalidTransition(_("This price is in another currency than your account."))
    return price


def subscription_start(*, account: Account, price: Price, actor: Actor, now: datetime | None = None) -> Subscription:
    """Subscribe: a trial if the plan has one and the account never trialed, free, or paid now."""
    now = now or clock.now()
    price = _check_price_for(account, price)
    if Account.objects.filter(pk=account.pk, deletion_requested_at__isnull=False).exists():
        # Nothing new is billed to an account on its way out (privacy app); undoing comes first.
        raise InvalidTransition(_("This account is scheduled for deletion. Undo the deletion to subscribe again."))
    if Subscription.objects.live().filter(account=account).exists():
        raise InvalidTransition(_("This account already has a subscription. Change its plan instead."))
    plan = price.plan
    if _start_gets_trial(account, price):
        end = lifecycle.trial_end(now, plan.trial_days)
        return _subscription_create(
            account,
            price,
            lifecycle.TRIALING,
            "trial_started",
            actor=actor,
            now=now,
            anchor=end,
            period_number=0,
            period_start=now,
            trial_end=end,
        )
    if price.is_free:
        return _subscription_create(account, price, lifecycle.ACTIVE, "started", actor=actor, now=now, anchor=now)
    if not account.payment_method_id:
        raise PaymentMethodRequired(_("Add a card to start a paid plan."))
    account_ensure_stripe_customer(account=account)
    with _billing_claim(account.pk, now):
        with transaction.atomic():
            if Subscription.objects.live().filter(account=account).exists():
                raise InvalidTransition(_("This account already has a subscription. Change its plan instead."))
            with _account_language(account):
                lines = [_Line(InvoiceLine.PLAN, _plan_line_description(price), price.amount_minor)]
            invoice = _invoice_create(
                account=account,
                subscription=None,
                price=price,
                reason=Invoice.CREATE,
                period_start=now,
                period_end=lifecycle.period_end(now, price.cycle, 1),
                lines=lines,
                now=now,
            )
        payment = _pay_now(invoice, actor=actor, now=now)
    if payment is None or payment.status == Payment.SUCCEEDED:
        invoice.refresh_from_db()
        return invoice.subscription
    _raise_for(payment)


def _start_gets_trial(account: Account, price: Price) -> bool:
    """A paid plan with a trial starts with one, once per account."""
    return bool(price.plan.trial_days) and not price.is_free and not selectors.account_has_trialed(account=account)


@dataclass(frozen=True)
class StartPreview:
    """What subscribing (or resubscribing) to a price costs today, before it is confirmed."""

    price: Price
    trial_end: datetime | None  # set when the start is a free trial
    period_end: datetime  # the first renewal date (the trial end in a trial)
    balance_applied_minor: int  # from the account's credit balance
    amount_due_minor: int  # charged to the card today
    needs_card: bool  # a paid start without a card on file is refused
    currency: str

    @property
    def is_trial(self) -> bool:
        return self.trial_end is not None


def subscription_preview_start(*, account: Account, price: Price, now: datetime | None = None) -> StartPreview:
    """The money of `subscription_start` for this price now; refuses what it would refuse."""
    now = now or clock.now()
    price = _check_price_for(account, price)
    if Subscription.objects.live().filter(account=account).exists():
        raise InvalidTransition(_("This account already has a subscription. Change its plan instead."))
    common = {"price": price, "currency": price.currency}
    if _start_gets_trial(account, price):
        end = lifecycle.trial_end(now, price.plan.trial_days)
        return StartPreview(
            trial_end=end, period_end=end, balance_applied_minor=0, amount_due_minor=0, needs_card=False, **common
        )
    balance = selectors.account_credit_balance_minor(account=account) if not price.is_free else 0
    balance_applied = max(0, min(balance, price.amount_minor))
    return StartPreview(
        trial_end=None,
        period_end=lifecycle.period_end(now, price.cycle, 1),
        balance_applied_minor=balance_applied,
        amount_due_minor=price.amount_minor - balance_applied,
        needs_card=not price.is_free and not account.payment_method_id,
        **common,
    )


def _subscription_create(
    account,
    price,
    status,
    event,
    *,
    actor,
    now,
    anchor,
    period_number=1,
    period_start=None,
    trial_end=None,
    paid_minor=0,
):
    lifecycle.next_status("", event)
    period_start = period_start or anchor
    try:
        with transaction.atomic():
            sub = Subscription.objects.create(
                account=account,
                price=price,
                status=status,
                amount_minor=price.amount_minor,
                currency=price.currency,
                billing_anchor_at=anchor,
                period_number=period_number,
                current_period_start=period_start,
                current_period_end=lifecycle.period_end(anchor, price.cycle, period_number),
                current_period_paid_minor=paid_minor,
                trial_end=trial_end,
                commitment_end_at=lifecycle.commitment_end(anchor, price.cycle),
                created_at=now,
            )
            _record(sub, event, actor=actor, now=now, from_status="", data={"price": price.pk})
    except IntegrityError:
        raise InvalidTransition(_("This account already has a subscription. Change its plan instead.")) from None
    return sub


def _start_paid(invoice: Invoice, *, actor: Actor, now: datetime) -> None:
    if Subscription.objects.live().filter(account=invoice.account).exists():
        _credit(
            invoice.account,
            invoice.amount_due_minor,
            CreditEntry.REFUND,
            now=now,
            invoice=invoice,
            note="Paid start for an account that already had a subscription",
        )
        return
    sub = _subscription_create(
        invoice.account,
        invoice.price,
        lifecycle.ACTIVE,
        "started",
        actor=actor,
        now=now,
        anchor=invoice.period_start,
        paid_minor=invoice.price.amount_minor,
    )
    Invoice.objects.filter(pk=invoice.pk).update(subscription=sub)


def _pay_now(invoice: Invoice, *, actor: Actor, now: datetime) -> Payment | None:
    """Collect a customer-initiated invoice at once (under the claim); None when nothing was due."""
    if invoice.amount_due_minor == 0:
        with transaction.atomic():
            Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.PAID, paid_at=now)
            invoice.status = Invoice.PAID
            if invoice.billing_reason == Invoice.CREATE:
                _start_paid(invoice, actor=actor, now=now)
            else:
                _change_paid(invoice, actor=actor, now=now)
            _notify("payment-receipt", invoice.pk)
        return None
    payment = _payment_create(invoice, now)
    try:
        result = _charge(payment, invoice.account)
    except gateway.GatewayError as error:
        log.warning("Stripe unreachable for payment %s: %s", payment.pk, error)
        raise PaymentPending(
            _("We could not reach the payment processor. Nothing was changed yet; we will confirm the payment shortly.")
        ) from error
    payment = payment_settle(payment=payment, result=result, actor=actor, now=now)
    if payment.status == Payment.REQUIRES_ACTION:
        # The customer is on the page but we charge off-session: drop the intent so it can
        # never complete later without its change.
        try:
            gateway.payment_intent_cancel(payment_intent_id=payment.stripe_payment_intent_id)
        except gateway.GatewayError:
            log.warning("Could not cancel payment intent %s", payment.stripe_payment_intent_id)
    return payment


def _raise_for(payment: Payment):
    if payment.status == Payment.REQUIRES_ACTION:
        raise PaymentFailed(
            _("Your bank asks to confirm this payment. Nothing was changed; please try another card."),
            requires_action=True,
        )
    raise PaymentFailed(
        _("Your card was declined (%(reason)s). Nothing was changed.")
        % {"reason": declines.decline_reason(payment.failure_code)}
    )


def _plan_line_description(price: Price) -> str:
    return f"{price.plan.name} ({price.get_cycle_display()})"


# --- Change plan or cycle -----------------------------------------------------------------------------
NOW, TRIAL, PERIOD_END, COMMITMENT_END = "now", "trial", "period_end", "commitment_end"


@dataclass(frozen=True)
class ChangePreview:
    """The exact money of a plan or cycle change, before it is confirmed."""

    price: Price
    applies: str  # NOW, TRIAL (only the price swaps), PERIOD_END or COMMITMENT_END
    effective_at: datetime  # when the new price takes over
    period_end: datetime  # the new renewal date (end of the first period at the new price)
    new_amount_minor: int
    credit_minor: int  # unused part of the current period
    forfeited_minor: int  # excess credit lost (seed 004)
    kept_as_credit_minor: int  # excess credit kept (BILLING_PRORATION_EXCESS=credit)
    balance_applied_minor: int  # from the account's credit balance
    amount_due_minor: int  # charged to the card today
    currency: str

    @property
    def would_forfeit(self) -> bool:
        return self.forfeited_minor > 0


def subscription_preview_change(
    *, subscription: Subscription, price: Price, now: datetime | None = None, at_period_end: bool = False
) -> ChangePreview:
    """What changing to `price` costs today and when it takes effect; refuses what the rules forbid."""
    now = now or clock.now()
    sub = subscription
    lifecycle.next_status(sub.status, "price_changed")
    price = _check_price_for(sub.account, price)
    if price.pk == sub.price_id:
        raise InvalidTransition(_("You are already on this plan and cycle."))
    common = {"price": price, "new_amount_minor": price.amount_minor, "currency": price.currency}
    zero = {
        "credit_minor": 0,
        "forfeited_minor": 0,
        "kept_as_credit_minor": 0,
        "balance_applied_minor": 0,
        "amount_due_minor": 0,
    }
    if sub.status == lifecycle.TRIALING:
        return ChangePreview(applies=TRIAL, effective_at=now, period_end=sub.trial_end, **common, **zero)
    current_plan = sub.price.plan
    applies_now = lifecycle.change_applies_now(
        current_cycle=sub.price.cycle,
        current_rank=current_plan.rank,
        new_cycle=price.cycle,
        new_rank=price.plan.rank,
        in_commitment=sub.in_commitment(now),
    )
    if not applies_now or at_period_end:
        applies, at = (PERIOD_END, sub.current_period_end) if applies_now else (COMMITMENT_END, sub.commitment_end_at)
        return ChangePreview(
            applies=applies, effective_at=at, period_end=lifecycle.period_end(at, price.cycle, 1), **common, **zero
        )
    proration = lifecycle.prorate_change(
        period_charge_minor=sub.current_period_paid_minor,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
        now=now,
        new_amount_minor=price.amount_minor,
        excess=settings.BILLING_PRORATION_EXCESS,
    )
    balance = selectors.account_credit_balance_minor(account=sub.account)
    balance_applied = max(0, min(balance, proration.amount_due_minor))
    return ChangePreview(
        applies=NOW,
        effective_at=now,
        period_end=lifecycle.period_end(now, price.cycle, 1),
        **common,
        credit_minor=proration.credit_minor,
        forfeited_minor=proration.forfeited_minor,
        kept_as_credit_minor=proration.kept_as_credit_minor,
        balance_applied_minor=balance_applied,
        amount_due_minor=proration.amount_due_minor - balance_applied,
    )


def subscription_change(
    *, subscription: Subscription, price: Price, actor: Actor, now: datetime | None = None, at_period_end: bool = False
) -> ChangePreview:
    """Change plan or cycle: now with proration, in a trial by swapping, or scheduled for later."""
    now = now or clock.now()
    preview = subscription_preview_change(subscription=subscription, price=price, now=now, at_period_end=at_period_end)
    price = preview.price
    if preview.applies in (PERIOD_END, COMMITMENT_END):
        with _locked(subscription, now) as sub:
            _transition(
                sub,
                "price_change_scheduled",
                actor=actor,
                now=now,
                data={"price": price.pk, "at": preview.applies},
                scheduled_price=price,
                cancel_at=None,
            )
        return preview
    if preview.applies == TRIAL:
        with _locked(subscription, now) as sub:
            _transition(
                sub,
                "price_changed",
                actor=actor,
                now=now,
                data={"from_price": sub.price_id, "price": price.pk},
                price=price,
                amount_minor=price.amount_minor,
                currency=price.currency,
                scheduled_price=None,
                cancel_at=None,
                commitment_end_at=lifecycle.commitment_end(sub.trial_end, price.cycle),
            )
        return preview
    if preview.amount_due_minor and not subscription.account.payment_method_id:
        raise PaymentMethodRequired(_("Add a card to change to this plan."))
    with _billing_claim(subscription.account_id, now):
        with transaction.atomic():
            sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
            if sub.status != subscription.status or sub.price_id != subscription.price_id:
                raise InvalidTransition(_("This subscription changed in the meantime. Reload the page and try again."))
            with _account_language(subscription.account):
                lines = [_Line(InvoiceLine.PLAN, _plan_line_description(price), price.amount_minor)]
                if preview.credit_minor:
                    applied = min(preview.credit_minor, price.amount_minor)
                    lines.append(
                        _Line(
                            InvoiceLine.PRORATION_CREDIT,
                            _("Unused time on %(plan)s") % {"plan": _plan_line_description(subscription.price)},
                            -applied,
                        )
                    )
            invoice = _invoice_create(
                account=subscription.account,
                subscription=sub,
                price=price,
                reason=Invoice.UPDATE,
                period_start=now,
                period_end=preview.period_end,
                lines=lines,
                now=now,
            )
        payment = _pay_now(invoice, actor=actor, now=now)
    _refresh(subscription, Subscription.objects.select_related("price__plan").get(pk=subscription.pk))
    if payment is not None and payment.status != Payment.SUCCEEDED:
        _raise_for(payment)
    return preview


def _change_paid(invoice: Invoice, *, actor: Actor, now: datetime) -> None:
    """Apply a paid immediate change: the new period starts at the invoice's period start."""
    sub = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("price__plan")
        .get(pk=invoice.subscription_id)
    )
    price = invoice.price
    if sub.status not in (lifecycle.TRIALING, lifecycle.ACTIVE):
        _credit(
            invoice.account,
            invoice.amount_due_minor + invoice.credit_applied_minor,
            CreditEntry.REFUND,
            now=now,
            invoice=invoice,
            note="Paid change for a subscription that had changed",
        )
        return
    start = invoice.period_start
    proration = lifecycle.prorate_change(
        period_charge_minor=sub.current_period_paid_minor,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
        now=start,
        new_amount_minor=price.amount_minor,
        excess=settings.BILLING_PRORATION_EXCESS,
    )
    _credit(invoice.account, proration.kept_as_credit_minor, CreditEntry.PRORATION_EXCESS, now=now, invoice=invoice)
    in_commitment = sub.in_commitment(start) and price.cycle == sub.price.cycle
    commitment_end = sub.commitment_end_at if in_commitment else lifecycle.commitment_end(start, price.cycle)
    _transition(
        sub,
        "price_changed",
        actor=actor,
        now=now,
        data={
            "from_price": sub.price_id,
            "price": price.pk,
            "invoice": invoice.number,
            "credit_minor": proration.credit_minor,
            "forfeited_minor": proration.forfeited_minor,
        },
        price=price,
        amount_minor=price.amount_minor,
        currency=price.currency,
        billing_anchor_at=start,
        period_number=1,
        current_period_start=start,
        current_period_end=lifecycle.period_end(start, price.cycle, 1),
        current_period_paid_minor=price.amount_minor,
        scheduled_price=None,
        cancel_at=None,
        commitment_end_at=commitment_end,
    )


def subscription_withdraw_scheduled_change(*, subscription: Subscription, actor: Actor, now: datetime | None = None):
    """Drop a plan change waiting for the period end."""
    now = now or clock.now()
    if not subscription.scheduled_price_id:
        raise InvalidTransition(_("There is no scheduled change to withdraw."))
    with _locked(subscription, now) as sub:
        _transition(
            sub,
            "price_change_withdrawn",
            actor=actor,
            now=now,
            data={"price": sub.scheduled_price_id},
            scheduled_price=None,
        )


# --- Cancel, undo, cancel now ------------------------------------------------------------------------
def subscription_cancel_date(*, subscription: Subscription, now: datetime) -> datetime:
    """When a cancellation asked for now takes effect: trial end, commitment end or period end."""
    if subscription.status == lifecycle.TRIALING:
        return subscription.trial_end
    if subscription.in_commitment(now):
        return subscription.commitment_end_at
    return subscription.current_period_end


def subscription_schedule_cancel(
    *, subscription: Subscription, actor: Actor, now: datetime | None = None, reason: str = ""
):
    """End at the period end (or trial end, or commitment end); access stays until then."""
    now = now or clock.now()
    with _locked(subscription, now) as sub:
        if sub.cancel_at:
            raise InvalidTransition(_("This subscription is already set to end."))
        lifecycle.next_status(sub.status, "cancel_scheduled")
        _user, actor_kind = _actor_fields(actor, sub.account_id)
        if actor_kind == SubscriptionEvent.CUSTOMER and selectors.account_has_outstanding_balance(account=sub.account):
            raise InvalidTransition(_("Please pay the outstanding balance before canceling."))
        cancel_at = subscription_cancel_date(subscription=sub, now=now)
        _transition(
            sub,
            "cancel_scheduled",
            actor=actor,
            now=now,
            reason=reason,
            data={"cancel_at": cancel_at.isoformat()},
            cancel_at=cancel_at,
            cancel_reason=reason,
            scheduled_price=None,
        )
        _notify("cancellation-scheduled", sub.pk)


def subscription_undo_cancel(*, subscription: Subscription, actor: Actor, now: datetime | None = None):
    now = now or clock.now()
    with _locked(subscription, now) as sub:
        if not sub.cancel_at or sub.cancel_at <= now:
            raise InvalidTransition(_("There is no cancellation to undo."))
        _transition(sub, "cancel_undone", actor=actor, now=now, cancel_at=None, cancel_reason="")


def subscription_cancel_now(*, subscription: Subscription, actor: Actor, now: datetime | None = None):
    """End at once (operators): no charge, open invoices voided."""
    now = now or clock.now()
    with _locked(subscription, now) as sub:
        _transition(sub, "canceled_now", actor=actor, now=now, ended_at=now, next_retry_at=None, scheduled_price=None)
        for invoice in Invoice.objects.filter(subscription=sub, status=Invoice.OPEN):
            _invoice_void(invoice, now=now)
        _notify("subscription-ended", sub.pk)


# --- Discount (a retention offer) ---------------------------------------------------------------------
def subscription_apply_discount(
    *,
    subscription: Subscription,
    percent: int,
    periods: int,
    actor: Actor,
    now: datetime | None = None,
    reason: str = "",
):
    """Take `percent` % off the plan line of the next `periods` invoices (the renewal applies it)."""
    now = now or clock.now()
    percent, periods = int(percent), int(periods)
    if not 1 <= percent <= 100:
        raise InvalidTransition(_("A discount is between 1 and 100 percent."))
    if not 1 <= periods <= lifecycle.DISCOUNT_MAX_PERIODS:
        raise InvalidTransition(
            _("A discount lasts 1 to %(max)s billing periods.") % {"max": lifecycle.DISCOUNT_MAX_PERIODS}
        )
    with _locked(subscription, now) as sub:
        lifecycle.next_status(sub.status, "discount_applied")
        if sub.discount_percent and sub.discount_periods_left:
            raise InvalidTransition(_("A discount is already running on this subscription."))
        if sub.price.is_free:
            raise InvalidTransition(_("A free plan cannot be discounted."))
        _transition(
            sub,
            "discount_applied",
            actor=actor,
            now=now,
            reason=reason,
            data={"percent": percent, "periods": periods},
            discount_percent=percent,
            discount_periods_left=periods,
        )


# --- Pause and resume --------------------------------------------------------------------------------
def subscription_pause(*, subscription: Subscription, actor: Actor, months: int, now: datetime | None = None):
    """Pause a monthly subscription for 1 to 3 months; no invoices meanwhile."""
    now = now or clock.now()
    with _locked(subscription, now) as sub:
        lifecycle.next_status(sub.status, "paused")
        if not lifecycle.can_pause_cycle(sub.price.cycle):
            raise InvalidTransition(_("Only monthly subscriptions can be paused."))
        if sub.cancel_at:
            raise InvalidTransition(_("Undo the cancellation before pausing."))
        resume_at = lifecycle.pause_resume_at(now, int(months))
        _transition(
            sub,
            "paused",
            actor=actor,
            now=now,
            data={"months": months, "resume_at": resume_at.isoformat()},
            paused_at=now,
            resume_at=resume_at,
        )


def subscription_resume(*, subscription: Subscription, actor: Actor, now: datetime | None = None):
    """Resume: the period end moves later by exactly the time spent paused."""
    now = now or clock.now()
    with _locked(subscription, now) as sub:
        _resume(sub, actor=actor, now=now)
    if subscription.current_period_end <= now:
        subscription_process_due(subscription_id=subscription.pk, now=now)
        _refresh(subscription, Subscription.objects.select_related("price__plan").get(pk=subscription.pk))


def _resume(sub: Subscription, *, actor: Actor, now: datetime) -> None:
    lifecycle.next_status(sub.status, "resumed")
    paused_at = sub.paused_at or now
    if sub.current_period_paid_minor == 0 and not sub.price.is_free:
        # Paused by dunning with an unpaid period: a fresh period starts now and is billed now.
        changes = {
            "billing_anchor_at": now,
            "period_number": 0,
            "current_period_start": min(paused_at, now - timedelta(seconds=1)),
            "current_period_end": now,
            "commitment_end_at": lifecycle.commitment_end(now, sub.price.cycle),
        }
    else:
        changes = {
            "billing_anchor_at": lifecycle.shift_after_pause(sub.billing_anchor_at, paused_at, now),
            "current_period_end": lifecycle.shift_after_pause(sub.current_period_end, paused_at, now),
        }
        if sub.commitment_end_at:
            changes["commitment_end_at"] = lifecycle.shift_after_pause(sub.commitment_end_at, paused_at, now)
    _transition(
        sub,
        "resumed",
        actor=actor,
        now=now,
        data={"paused_at": paused_at.isoformat()},
        paused_at=None,
        resume_at=None,
        **changes,
    )


# --- Jobs: renewals, trial ends, scheduled ends, pause ends, retries -----------------------------------
def subscriptions_renew_due(*, now: datetime | None = None) -> int:
    """The body of the beat sweep, run synchronously: recover stale payments, then process what is due.

    Returns how many subscriptions were processed.
    """
    now = now or clock.now()
    payments_recover_stale(now=now)
    processed = 0
    for subscription_id in selectors.subscription_ids_due(now=now):
        processed += subscription_process_due(subscription_id=subscription_id, now=now)
    return processed


# A subscription that missed several periods (the jobs were down) catches up one period per step.
MAX_STEPS_PER_RUN = 24


def subscription_process_due(*, subscription_id: int, now: datetime | None = None) -> int:
    """Do whatever is due for one subscription, under its account's claim. 1 if it did something."""
    now = now or clock.now()
    # A duplicate task (the sweep ran twice, a redelivery) usually finds nothing due: one query.
    account_id = Subscription.objects.due(now).filter(pk=subscription_id).values_list("account_id", flat=True).first()
    if account_id is None:
        return 0
    if not _claim(account_id, now):
        return 0  # another worker has it; the next sweep looks again
    try:
        did = 0
        for _step in range(MAX_STEPS_PER_RUN):
            sub = Subscription.objects.select_related("account", "price__plan").get(pk=subscription_id)
            if not selectors.subscription_is_due(subscription=sub, now=now) or not _process_step(sub, now):
                break
            did = 1
        return did
    finally:
        _release(account_id)


def _process_step(sub: Subscription, now: datetime) -> bool:
    job = SubscriptionEvent.JOB
    if sub.status in (lifecycle.ACTIVE, lifecycle.TRIALING) and sub.cancel_at and sub.cancel_at <= now:
        with transaction.atomic():
            _transition(sub, "cancel_reached", actor=job, now=now, ended_at=sub.cancel_at, next_retry_at=None)
            for invoice in Invoice.objects.filter(subscription=sub, status=Invoice.OPEN):
                _invoice_void(invoice, now=now)
            _notify("subscription-ended", sub.pk)
        return True
    if sub.status == lifecycle.TRIALING and sub.trial_end <= now:
        return _trial_end(sub, now)
    if sub.status == lifecycle.PAUSED and sub.resume_at and sub.resume_at <= now:
        with transaction.atomic():
            _resume(
                Subscription.objects.select_for_update(of=("self",)).select_related("price__plan").get(pk=sub.pk),
                actor=job,
                now=now,
            )
        return True
    if sub.status == lifecycle.ACTIVE and sub.current_period_end <= now:
        return _renew(sub, now)
    if sub.next_retry_at and sub.next_retry_at <= now:
        invoice = selectors.invoice_open_for_subscription(subscription=sub)
        if invoice is None:
            Subscription.objects.filter(pk=sub.pk).update(next_retry_at=None)
            return False
        if invoice.payments.filter(status=Payment.PENDING).exists():
            return False  # a charge is still in flight; payments_recover_stale settles it
        _collect(invoice, actor=job, now=now)
        return True
    return False


def _trial_end(sub: Subscription, now: datetime) -> bool:
    """A trial ends: charge the first period, or expire without a card (seed 003)."""
    job = SubscriptionEvent.JOB
    account = sub.account
    if sub.price.is_free:
        _transition(
            sub,
            "trial_converted",
            actor=job,
            now=now,
            period_number=1,
            current_period_start=sub.trial_end,
            current_period_end=lifecycle.period_end(sub.billing_anchor_at, sub.price.cycle, 1),
        )
        return True
    if not account.payment_method_id:
        with transaction.atomic():
            _transition(sub, "trial_expired", actor=job, now=now, ended_at=sub.trial_end, reason="No payment method")
            _notify("subscription-ended", sub.pk)
        return True
    invoice = _period_invoice(sub, now)
    if invoice.status == Invoice.OPEN and invoice.payments.filter(status=Payment.PENDING).exists():
        return False
    if invoice.status == Invoice.OPEN:
        _collect(invoice, actor=job, now=now)
    return True


def _renew(sub: Subscription, now: datetime) -> bool:
    """Start the next period (applying a scheduled change and discounts), then collect its invoice."""
    invoice = _period_invoice(sub, now)
    if invoice.status == Invoice.OPEN:
        _collect(invoice, actor=SubscriptionEvent.JOB, now=now)
    return True


def _period_invoice(sub: Subscription, now: datetime) -> Invoice:
    """Advance to the next period and create its one invoice, in one transaction."""
    with transaction.atomic():
        sub = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("account", "price__plan", "scheduled_price__plan")
            .get(pk=sub.pk)
        )
        trial = sub.status == lifecycle.TRIALING
        start = sub.trial_end if trial else sub.current_period_end
        existing = Invoice.objects.filter(subscription=sub, period_start=start).first()
        if existing:
            return existing
        price, anchor, number = sub.price, sub.billing_anchor_at, sub.period_number + 1
        changes = {}
        change_at = selectors.subscription_scheduled_change_at(subscription=sub, now=start)
        if change_at is not None and change_at <= start:
            # A change waiting for the period end applies here: a new anchor at the period start.
            # A downgrade during a commitment waits for the renewal at the commitment end.
            price, anchor, number = sub.scheduled_price, start, 1
            changes = {
                "price": price,
                "amount_minor": price.amount_minor,
                "currency": price.currency,
                "billing_anchor_at": anchor,
                "scheduled_price": None,
                "commitment_end_at": lifecycle.commitment_end(start, price.cycle),
            }
        elif sub.commitment_end_at and sub.commitment_end_at <= start:
            changes = {"commitment_end_at": lifecycle.commitment_end(start, price.cycle)}
        end = lifecycle.period_end(anchor, price.cycle, number)
        discount_left = sub.discount_periods_left
        with _account_language(sub.account):
            lines = [_Line(InvoiceLine.PLAN, _plan_line_description(price), price.amount_minor)]
            if sub.discount_percent and discount_left:
                off = percent_of(price.amount_minor, sub.discount_percent)
                lines.append(
                    _Line(InvoiceLine.DISCOUNT, _("Discount %(percent)s%%") % {"percent": sub.discount_percent}, -off)
                )
                discount_left -= 1
        invoice = _invoice_create(
            account=sub.account,
            subscription=sub,
            price=price,
            reason=Invoice.CYCLE,
            period_start=start,
            period_end=end,
            lines=lines,
            now=now,
        )
        changes.update(
            period_number=number,
            current_period_start=start,
            current_period_end=end,
            current_period_paid_minor=0,
            discount_periods_left=discount_left,
            discount_percent=sub.discount_percent if discount_left else 0,
            # If the worker dies before the charge is even recorded, the subscription is due again
            # once its claim has expired, so the open invoice is never forgotten. The charge's
            # outcome (paid, dunning, Stripe unreachable) replaces this date.
            next_retry_at=now + timedelta(seconds=settings.BILLING_CLAIM_SECONDS),
        )
        if trial:
            Subscription.objects.filter(pk=sub.pk).update(**changes)
        else:
            _transition(
                sub, "renewed", actor=SubscriptionEvent.JOB, now=now, data={"invoice": invoice.number}, **changes
            )
        if invoice.amount_due_minor == 0:
            Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.PAID, paid_at=now)
            invoice.status = Invoice.PAID
            _renewal_paid(invoice, actor=SubscriptionEvent.JOB, now=now)
            _notify("payment-receipt", invoice.pk)
    return invoice


def _renewal_paid(invoice: Invoice, *, actor: Actor, now: datetime) -> None:
    sub = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
    plan_cost = sum(
        line.amount_minor for line in invoice.lines.all() if line.kind in (InvoiceLine.PLAN, InvoiceLine.DISCOUNT)
    )
    changes = {"past_due_since": None, "retries_done": 0, "next_retry_at": None}
    if invoice.period_start == sub.current_period_start:
        changes["current_period_paid_minor"] = max(0, plan_cost)
    data = {"invoice": invoice.number, "amount_minor": invoice.amount_due_minor}
    if sub.status == lifecycle.TRIALING:
        _transition(sub, "trial_converted", actor=actor, now=now, data=data, **changes)
    elif sub.status == lifecycle.PAST_DUE:
        _transition(sub, "payment_recovered", actor=actor, now=now, data=data, **changes)
    else:
        Subscription.objects.filter(pk=sub.pk).update(**changes)
        _record(sub, "payment_succeeded", actor=actor, now=now, from_status=sub.status, data=data)


def subscription_retry_now(*, subscription: Subscription, actor: Actor, now: datetime | None = None) -> Payment | None:
    """Try the open invoice again at once (pay now, a new card, an operator's retry)."""
    now = now or clock.now()
    invoice = selectors.invoice_open_for_subscription(subscription=subscription)
    if invoice is None:
        raise InvalidTransition(_("There is nothing to pay."))
    with _billing_claim(subscription.account_id, now):
        if invoice.payments.filter(status=Payment.PENDING).exists():
            raise BillingBusy(_("A payment for this account is being processed. Try again in a minute."))
        payment = _collect(invoice, actor=actor, now=now)
    _refresh(subscription, Subscription.objects.select_related("price__plan").get(pk=subscription.pk))
    return payment


# --- Operator tools: credit, trials, refunds, uncollectible invoices ---------------------------------
class RefundFailed(InvalidTransition):
    """Stripe refused the refund or could not be reached; no credit note was written."""


def _operator(actor: Actor, account_id: int) -> User:
    """The staff user behind an operator-only change; customers and jobs are refused."""
    if isinstance(actor, str):
        raise InvalidTransition(_("Only an operator can do this."))
    user, actor_kind = _actor_fields(actor, account_id)
    if actor_kind != SubscriptionEvent.OPERATOR:
        raise InvalidTransition(_("Only an operator can do this."))
    return user


def _required_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidTransition(_("Give a reason."))
    if len(reason) > 300:
        raise InvalidTransition(_("Keep the reason under 300 characters."))
    return reason


def account_credit_adjust(
    *, account: Account, amount_minor: int, reason: str, actor: Actor, now: datetime | None = None
) -> CreditEntry:
    """Grant (positive) or remove (negative) account credit, with a reason; never below zero."""
    now = now or clock.now()
    reason = _required_reason(reason)
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor == 0:
        raise InvalidTransition(_("Enter an amount other than zero."))
    user = _operator(actor, account.pk)
    # The claim keeps an invoice from spending the balance while it is being reduced.
    with _billing_claim(account.pk, now), transaction.atomic():
        balance = selectors.account_credit_balance_minor(account=account)
        if balance + amount_minor < 0:
            raise InvalidTransition(
                _("The credit balance is %(balance)s: no more than that can be removed.")
                % {"balance": format_money(balance, account.currency)}
            )
        return CreditEntry.objects.create(
            account=account,
            amount_minor=amount_minor,
            currency=account.currency,
            kind=CreditEntry.GRANT if amount_minor > 0 else CreditEntry.REMOVAL,
            note=reason,
            created_by=user,
            created_at=now,
        )


MAX_TRIAL_EXTENSION_DAYS = 90


def subscription_extend_trial(*, subscription: Subscription, days: int, actor: Actor, now: datetime | None = None):
    """Move a trial's end, and so its first charge, later by `days` (operators only)."""
    now = now or clock.now()
    if not isinstance(days, int) or not 1 <= days <= MAX_TRIAL_EXTENSION_DAYS:
        raise InvalidTransition(_("A trial can be extended by 1 to %(max)s days.") % {"max": MAX_TRIAL_EXTENSION_DAYS})
    with _locked(subscription, now) as sub:
        lifecycle.next_status(sub.status, "trial_extended")
        _operator(actor, sub.account_id)
        old_end = sub.trial_end
        new_end = old_end + timedelta(days=days)
        if new_end <= now:
            raise InvalidTransition(_("The new trial end would still be in the past."))
        # The trial is period 0 of an anchor at its end: the anchor and the period end move with it.
        changes = {
            "trial_end": new_end,
            "billing_anchor_at": new_end,
            "current_period_end": new_end,
            "commitment_end_at": lifecycle.commitment_end(new_end, sub.price.cycle),
        }
        if sub.cancel_at and sub.cancel_at == old_end:
            changes["cancel_at"] = new_end  # a trial set to end at its end still ends at its end
        _transition(
            sub,
            "trial_extended",
            actor=actor,
            now=now,
            data={"days": days, "from": old_end.isoformat(), "to": new_end.isoformat()},
            **changes,
        )


def payment_refundable_minor(*, payment: Payment) -> int:
    """What can still be refunded: paid, minus refunded, minus refunds waiting for Stripe."""
    if payment.status != Payment.SUCCEEDED or not payment.stripe_payment_intent_id:
        return 0
    pending = payment.refunds.filter(status=Refund.PENDING).aggregate(total=Sum("amount_minor"))["total"]
    return max(0, payment.amount_minor - payment.refunded_minor - (pending or 0))


def payment_refund(
    *,
    payment: Payment,
    amount_minor: int,
    reason: str,
    actor: Actor,
    now: datetime | None = None,
    refunds_seen: int | None = None,
) -> Refund:
    """Refund part or all of a payment through Stripe and write the credit note (operators only).

    The refund row is committed before Stripe is called; its idempotency key comes from the
    payment and the number of its refunds, so a retried Stripe call cannot refund twice.
    `refunds_seen` is the number of refunds the operator's form was made with: a form sent twice
    (a double click, a browser retry) finds one more and refunds nothing the second time.
    """
    now = now or clock.now()
    reason = _required_reason(reason)
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise InvalidTransition(_("Enter an amount above zero."))
    account_id = Invoice.objects.filter(pk=payment.invoice_id).values_list("account_id", flat=True).get()
    user = _operator(actor, account_id)
    with _billing_claim(account_id, now):
        with transaction.atomic():
            payment = Payment.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=payment.pk)
            if payment.status != Payment.SUCCEEDED or not payment.stripe_payment_intent_id:
                raise InvalidTransition(_("Only a succeeded payment can be refunded."))
            if refunds_seen is not None and payment.refunds.count() != refunds_seen:
                raise InvalidTransition(
                    _(
                        "This payment was refunded meanwhile (was the form sent twice?). "
                        "Nothing more was refunded: check the payment before refunding again."
                    )
                )
            refundable = payment_refundable_minor(payment=payment)
            if amount_minor > refundable:
                raise InvalidTransition(
                    _("At most %(amount)s of this payment can still be refunded.")
                    % {"amount": format_money(refundable, payment.currency)}
                )
            number = payment.refunds.count() + 1
            refund = Refund.objects.create(
                payment=payment,
                amount_minor=amount_minor,
                currency=payment.currency,
                reason=reason,
                idempotency_key=f"payment-{payment.pk}-refund-{number}",
                created_by=user,
                created_at=now,
            )
        try:
            stripe_refund_id = _refund_request(refund, payment)
        except gateway.GatewayError as error:
            log.warning("Refund %s failed at Stripe: %s", refund.pk, error)
            _refund_fail(refund, str(error), now=now)
            raise RefundFailed(
                _("Stripe did not refund the payment (%(error)s). Nothing was changed.") % {"error": error}
            ) from error
        with transaction.atomic():
            _refund_settle(refund, stripe_refund_id=stripe_refund_id, actor=actor, now=now)
    refund.refresh_from_db()
    return refund


def _refund_request(refund: Refund, payment: Payment) -> str:
    """Ask Stripe for the refund; its idempotency key makes a repeated request refund once."""
    return gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id,
        amount_minor=refund.amount_minor,
        idempotency_key=refund.idempotency_key,
        metadata={"payment_id": payment.pk, "refund_id": refund.pk, "invoice_id": payment.invoice_id},
    )


def _refund_fail(refund: Refund, message: str, *, now: datetime) -> None:
    Refund.objects.filter(pk=refund.pk, status=Refund.PENDING).update(
        status=Refund.FAILED, failure_message=message[:500], finished_at=now
    )


# Stripe keeps an idempotency key for 24 hours; after that a refund request sent again could be a
# second refund, so a refund still unmade by then is marked failed instead.
REFUND_RETRY_HOURS = 24


def refund_recover(*, refund_id: int, now: datetime | None = None) -> int:
    """Finish one refund left pending by a process that died while asking Stripe (the sweep, once
    its claim has expired): settle it if Stripe made it, else ask again with the same idempotency
    key. Marked failed if Stripe refused it or, after REFUND_RETRY_HOURS, still never made it."""
    now = now or clock.now()
    refund = Refund.objects.select_related("payment__invoice").get(pk=refund_id)
    payment = refund.payment
    account_id = payment.invoice.account_id
    if refund.status != Refund.PENDING or not _claim(account_id, now):
        return 0
    try:
        refund.refresh_from_db()
        if refund.status != Refund.PENDING:
            return 0
        try:
            made = gateway.refund_find(payment_intent_id=payment.stripe_payment_intent_id, refund_id=refund.pk)
            if made is not None and made.status not in gateway.REFUND_GOING_THROUGH:
                _refund_fail(refund, f"Stripe's refund {made.id} is {made.status}.", now=now)
                return 1
            if made is None and refund.created_at < now - timedelta(hours=REFUND_RETRY_HOURS):
                _refund_fail(refund, "Stripe never made this refund, and after a day it is not asked again.", now=now)
                return 1
            stripe_refund_id = made.id if made is not None else _refund_request(refund, payment)
        except gateway.GatewayRefused as error:  # e.g. the payment was refunded in full at Stripe meanwhile
            _refund_fail(refund, str(error), now=now)
            return 1
        with transaction.atomic():
            if Refund.objects.select_for_update().filter(pk=refund.pk, status=Refund.PENDING).first():
                _refund_settle(refund, stripe_refund_id=stripe_refund_id, actor=SubscriptionEvent.JOB, now=now)
        return 1
    except gateway.GatewayError as error:
        log.warning("Stripe unreachable while recovering refund %s: %s", refund.pk, error)
        return 0
    finally:
        _release(account_id)


def _refund_settle(refund: Refund, *, stripe_refund_id: str, actor: Actor, now: datetime) -> None:
    """The credit note of a refund Stripe made: a negative line, the payment's refunded total, audit."""
    payment = refund.payment
    invoice = payment.invoice
    with _account_language(invoice.account):
        description = _("Refund")
    line = InvoiceLine.objects.create(
        invoice=invoice,
        kind=InvoiceLine.REFUND,
        description=description,
        amount_minor=-refund.amount_minor,
    )
    Refund.objects.filter(pk=refund.pk).update(
        status=Refund.SUCCEEDED, stripe_refund_id=stripe_refund_id, invoice_line=line, finished_at=now
    )
    Payment.objects.filter(pk=payment.pk).update(refunded_minor=F("refunded_minor") + refund.amount_minor)
    if invoice.subscription_id:
        sub = Subscription.objects.get(pk=invoice.subscription_id)
        _record(
            sub,
            "payment_refunded",
            actor=actor,
            now=now,
            from_status=sub.status,
            reason=refund.reason,
            data={
                "invoice": invoice.number,
                "payment": payment.pk,
                "amount_minor": refund.amount_minor,
                "refund": stripe_refund_id,
            },
        )


def invoice_mark_uncollectible(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Invoice:
    """Stop collecting an open invoice (operators only).

    For a past-due subscription this ends dunning at once, with the final action dunning itself
    would take (BILLING_DUNNING_FINAL_ACTION); any other subscription keeps its status.
    """
    now = now or clock.now()
    _operator(actor, invoice.account_id)
    with _billing_claim(invoice.account_id, now), transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)
        if invoice.status != Invoice.OPEN:
            raise InvalidTransition(_("Only an open invoice can be marked uncollectible."))
        if invoice.payments.filter(status=Payment.PENDING).exists():
            raise BillingBusy(_("A payment for this account is being processed. Try again in a minute."))
        Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.UNCOLLECTIBLE, closed_at=now)
        invoice.status, invoice.closed_at = Invoice.UNCOLLECTIBLE, now
        if invoice.subscription_id:
            _after_uncollectible(invoice, actor=actor, now=now)
    return invoice


def _after_uncollectible(invoice: Invoice, *, actor: Actor, now: datetime) -> None:
    sub = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
    data = {"invoice": invoice.number}
    reason = "Open invoice marked uncollectible"
    still_open = Invoice.objects.filter(subscription=sub, status=Invoice.OPEN).exists()
    if sub.status == lifecycle.PAST_DUE and not still_open:
        if settings.BILLING_DUNNING_FINAL_ACTION == "pause":
            _transition(
                sub,
                "dunning_paused",
                actor=actor,
                now=now,
                reason=reason,
                data=data,
                next_retry_at=None,
                paused_at=now,
                resume_at=None,
                current_period_paid_minor=0,
            )
        else:
            _transition(
                sub,
                "dunning_canceled",
                actor=actor,
                now=now,
                reason=reason,
                data=data,
                next_retry_at=None,
                ended_at=now,
            )
        return
    if not still_open:
        Subscription.objects.filter(pk=sub.pk).update(next_retry_at=None)
    _record(sub, "invoice_uncollectible", actor=actor, now=now, from_status=sub.status, reason=reason, data=data)


# --- Authentication on-session (SCA) ------------------------------------------------------------------
def payment_authentication_finish(*, invoice: Invoice, actor: Actor, now: datetime | None = None) -> Payment | None:
    """The customer came back from authenticating a payment with Stripe.js: settle what Stripe says.

    The browser's word is not taken: Stripe is asked for the intent's status. Returns the payment
    (still REQUIRES_ACTION if the customer did not complete it), or None if none waits.
    """
    now = now or clock.now()
    payment = selectors.payment_requiring_action(invoice=invoice)
    if payment is None:
        return None
    _actor_fields(actor, invoice.account_id)  # only the account's people (or an operator)
    result = gateway.payment_intent_status(payment_intent_id=payment.stripe_payment_intent_id)
    if result.status == gateway.REQUIRES_ACTION:
        return payment
    return payment_settle(payment=payment, result=result, actor=actor, now=now)


# --- Webhooks: what Stripe tells us --------------------------------------------------------------------
def stripe_event_record(*, event: gateway.WebhookEvent, now: datetime | None = None) -> StripeEvent | None:
    """Record a verified event once and queue its processing; None for an id seen before."""
    now = now or clock.now()
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event.id,
                type=event.type,
                data=event.object,
                stripe_created_at=datetime.fromtimestamp(event.created, tz=UTC) if event.created else None,
                received_at=now,
            )
            from . import tasks  # tasks.py imports this module

            tasks.process_stripe_event.delay_on_commit(row.pk)
    except IntegrityError:
        return None
    return row


def stripe_event_finish(*, event: StripeEvent, outcome: str, now: datetime | None = None) -> bool:
    """Mark an event processed with what it did; False if another run marked it first."""
    now = now or clock.now()
    return bool(
        StripeEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
            processed_at=now, outcome=outcome[:300]
        )
    )


def stripe_event_failed(*, event: StripeEvent, error: str) -> None:
    """Count a failed processing attempt; the sweep tries again later (up to a limit)."""
    StripeEvent.objects.filter(pk=event.pk).update(attempts=models.F("attempts") + 1, outcome=f"error: {error}"[:300])


def payment_sync(*, payment_intent_id: str, actor: Actor = SubscriptionEvent.WEBHOOK, now=None) -> str:
    """Settle the payment of a PaymentIntent with its status as Stripe has it now.

    Asking Stripe rather than trusting the event's copy makes the order of events irrelevant:
    a late "requires_action" or "payment_failed" finds the payment settled and changes nothing.
    """
    now = now or clock.now()
    payment = Payment.objects.filter(stripe_payment_intent_id=payment_intent_id).order_by("-id").first()
    if payment is None:
        return "ignored: no payment for this intent"
    result = gateway.payment_intent_status(payment_intent_id=payment_intent_id)
    before = payment.status
    payment = payment_settle(payment=payment, result=result, actor=actor, now=now)
    if payment.status == before:
        return f"payment {payment.pk} unchanged ({payment.status})"
    return f"payment {payment.pk}: {before} -> {payment.status}"


def account_card_adopt(*, setup_intent_id: str, customer_id: str, now: datetime | None = None) -> str:
    """A card saved through a SetupIntent becomes the default, unless a newer card already is.

    The card page does this when the customer comes back; the webhook catches a return that was
    lost. An event about an older card arriving late never replaces a newer one.
    """
    now = now or clock.now()
    account = Account.objects.filter(stripe_customer_id=customer_id).first() if customer_id else None
    if account is None:
        return "ignored: no account for this customer"
    intent = gateway.setup_intent_get(setup_intent_id=setup_intent_id)
    if intent.status != "succeeded" or intent.customer_id != customer_id or not intent.payment_method_id:
        return "ignored: setup not succeeded"
    if intent.payment_method_id == account.payment_method_id:
        return "unchanged: already the default card"
    if account.payment_method_id:
        current = gateway.payment_method_get(payment_method_id=account.payment_method_id)
        new = gateway.payment_method_get(payment_method_id=intent.payment_method_id)
        if current.customer_id == customer_id and current.created >= new.created:
            return "ignored: the default card is newer"
    account_card_setup_finish(
        account=account, setup_intent_id=setup_intent_id, actor=SubscriptionEvent.WEBHOOK, now=now
    )
    return f"account {account.pk}: default card {intent.payment_method_id}"


def account_card_sync(*, payment_method_id: str, now: datetime | None = None) -> str:
    """Refresh the accounts' copy of a card (new expiry), or forget it once detached from them."""
    accounts = list(Account.objects.filter(payment_method_id=payment_method_id))
    if not accounts:
        return "ignored: not a default card"
    method = gateway.payment_method_get(payment_method_id=payment_method_id)
    outcomes = []
    for account in accounts:
        if method.customer_id != account.stripe_customer_id:
            Account.objects.filter(pk=account.pk, payment_method_id=payment_method_id).update(
                payment_method_id="", card_brand="", card_last4="", card_exp_month=None, card_exp_year=None
            )
            outcomes.append(f"account {account.pk}: card removed")
        else:
            card = method.card
            Account.objects.filter(pk=account.pk, payment_method_id=payment_method_id).update(
                card_brand=card.brand, card_last4=card.last4, card_exp_month=card.exp_month, card_exp_year=card.exp_year
            )
            outcomes.append(f"account {account.pk}: card {card.exp_month:02d}/{card.exp_year}")
    return "; ".join(outcomes)


def payment_refund_record(*, payment_intent_id: str, refunded_minor: int, now: datetime | None = None) -> str:
    """Record how much of a payment was refunded (Stripe's running total: only ever grows)."""
    now = now or clock.now()
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("invoice")
            .filter(stripe_payment_intent_id=payment_intent_id, status=Payment.SUCCEEDED)
            .first()
        )
        if payment is None:
            return "ignored: no succeeded payment for this intent"
        if refunded_minor <= payment.refunded_minor:
            return f"payment {payment.pk} unchanged (refunded {payment.refunded_minor})"
        before = payment.refunded_minor
        Payment.objects.filter(pk=payment.pk).update(refunded_minor=min(refunded_minor, payment.amount_minor))
        if payment.invoice.subscription_id:
            sub = Subscription.objects.get(pk=payment.invoice.subscription_id)
            _record(
                sub,
                "payment_refunded",
                actor=SubscriptionEvent.WEBHOOK,
                now=now,
                from_status=sub.status,
                data={"payment": payment.pk, "invoice": payment.invoice.number, "refunded_minor": refunded_minor},
            )
    return f"payment {payment.pk}: refunded {before} -> {refunded_minor}"


def payment_dispute_record(*, payment_intent_id: str, reason: str, now: datetime | None = None) -> str:
    """Flag a payment the card holder disputed (a chargeback) for operators, once."""
    now = now or clock.now()
    with transaction.atomic():
        payment = (
            Payment.objects.select_related("invoice")
            .filter(stripe_payment_intent_id=payment_intent_id)
            .order_by("-id")
            .first()
        )
        if payment is None:
            return "ignored: no payment for this intent"
        flagged = Payment.objects.filter(pk=payment.pk, disputed_at__isnull=True).update(
            disputed_at=now, dispute_reason=reason[:64]
        )
        if not flagged:
            return f"payment {payment.pk} already disputed"
        log.warning("Payment %s (invoice %s) is disputed: %s", payment.pk, payment.invoice.number, reason)
        if payment.invoice.subscription_id:
            sub = Subscription.objects.get(pk=payment.invoice.subscription_id)
            _record(
                sub,
                "charge_disputed",
                actor=SubscriptionEvent.WEBHOOK,
                now=now,
                from_status=sub.status,
                reason=reason,
                data={"payment": payment.pk, "invoice": payment.invoice.number},
            )
    return f"payment {payment.pk}: disputed ({reason})"
