"""The only module that talks to Stripe (through the official SDK).

Every function is plain I/O: no database, and callers never hold a transaction open around
it. Without real keys the SDK points at localstripe on loopback (settings.LOCALSTRIPE_URL).
Card declines and "authentication required" come back as a ChargeResult, not an exception;
GatewayError means Stripe could not be reached or refused the request, and the caller should
try again later.

Every request goes through `_call`, which
- takes a token from the deployment-wide rate limit (STRIPE_MAX_REQUESTS_PER_SECOND, a Redis
  token bucket shared by all processes; a per-process bucket without Redis),
- lets the SDK retry connection errors, 409 and 5xx with its own backoff
  (STRIPE_MAX_NETWORK_RETRIES; the SDK adds an idempotency key to POSTs it retries),
- retries a 429 itself with exponential backoff and jitter (STRIPE_RATE_LIMIT_RETRIES), since
  the SDK does not, and then gives up with GatewayError.
"""

import hashlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace

import redis
import stripe
from django.conf import settings

from billing_portal.lib.ratelimit import LocalTokenBucket, RedisTokenBucket

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FAILED = "failed"
REQUIRES_ACTION = "requires_action"
PROCESSING = "processing"
REQUIRES_CONFIRMATION = "requires_confirmation"
CANCELED = "canceled"
# Stripe refund statuses of a refund that is made or being made (card refunds may stay pending).
REFUND_GOING_THROUGH = frozenset({"succeeded", "pending"})


class GatewayError(Exception):
    """Stripe was unreachable, rate-limited or refused the request; nothing is known to have moved."""


class GatewayRefused(GatewayError):
    """Stripe answered and refused the request as invalid (a 4xx, not a card decline): sending it
    again would be refused again."""


@dataclass(frozen=True)
class ChargeResult:
    status: str  # one of the constants above
    payment_intent_id: str
    failure_code: str = ""
    failure_message: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class PaymentMethodInfo:
    card: Card
    customer_id: str  # empty when the method is attached to no customer (detached)
    created: int  # Unix time the card was entered


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    status: str
    customer_id: str
    payment_method_id: str


@dataclass(frozen=True)
class WebhookEvent:
    """A Stripe event whose signature was verified: its id, type, time and object (plain data)."""

    id: str
    type: str
    created: int
    object: dict


@cache
def _client_for(api_key: str, api_base: str, retries: int) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else {}
    return stripe.StripeClient(api_key, base_addresses=base, max_network_retries=retries)


def client() -> stripe.StripeClient:
    """The SDK client for the configured keys (real Stripe, or localstripe in development)."""
    if settings.STRIPE_GATEWAY == "stub":
        return _stub_client(settings.STRIPE_STUB_LATENCY_MS)
    return _client_for(settings.STRIPE_SECRET_KEY, settings.LOCALSTRIPE_URL, settings.STRIPE_MAX_NETWORK_RETRIES)


def publishable_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY


def stripe_js_url() -> str:
    """Where pages load Stripe.js from: localstripe's fake in development, Stripe's otherwise."""
    if settings.LOCALSTRIPE_URL:
        return f"{settings.LOCALSTRIPE_URL}/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def stripe_js_csp() -> dict[str, list[str]]:
    """The Content Security Policy additions a page with Stripe.js needs (and only such a page)."""
    if settings.LOCALSTRIPE_URL:
        return {
            "script-src": [settings.LOCALSTRIPE_URL],
            "connect-src": [settings.LOCALSTRIPE_URL],
            "frame-src": [settings.LOCALSTRIPE_URL],
        }
    return {
        "script-src": ["https://js.stripe.com"],
        "connect-src": ["https://api.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    }


# --- Rate limit and backoff ----------------------------------------------------------------------------
@cache
def _bucket_for(redis_url: str, key: str, rate: float):
    if redis_url:
        return RedisTokenBucket(redis.Redis.from_url(redis_url), key, rate)
    return LocalTokenBucket(rate)


@cache
def _local_bucket_for(rate: float) -> LocalTokenBucket:
    return LocalTokenBucket(rate)


def rate_limit_key() -> str:
    """One bucket per Stripe account (secret key) and API address: the unit Stripe limits."""
    account = hashlib.sha256(f"{settings.STRIPE_SECRET_KEY}|{settings.LOCALSTRIPE_URL}".encode()).hexdigest()
    return f"stripe-rate:{account[:16]}"


def _take_token() -> None:
    rate = float(settings.STRIPE_MAX_REQUESTS_PER_SECOND)
    try:
        _bucket_for(settings.REDIS_URL, rate_limit_key(), rate).take()
    except redis.RedisError as error:
        # Redis down: keep each process within the limit rather than stop charging.
        log.warning("Stripe rate limit falls back to this process (%s)", error)
        _local_bucket_for(rate).take()


def _backoff_seconds(attempt: int) -> float:
    """0.5 s, 1 s, 2 s ... (capped at 8 s), each with up to 50 % jitter."""
    return min(8.0, 0.5 * 2**attempt) * (1 + random.random() / 2)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _call(fn, *args, **kwargs):
    attempt = 0
    while True:
        _take_token()
        try:
            return fn(*args, **kwargs)
        except stripe.CardError:
            raise
        except stripe.RateLimitError as error:
            if attempt >= settings.STRIPE_RATE_LIMIT_RETRIES:
                raise GatewayError(f"RateLimitError: {error.user_message or error}") from error
            _sleep(_backoff_seconds(attempt))
            attempt += 1
        except stripe.InvalidRequestError as error:
            raise GatewayRefused(f"{type(error).__name__}: {error.user_message or error}") from error
        except stripe.StripeError as error:
            # Connection errors, 409 and 5xx were already retried by the SDK (max_network_retries).
            raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error


def customer_create(*, name: str, email: str, account_id: int) -> str:
    customer = _call(
        client().v1.customers.create,
        params={"name": name, "email": email, "metadata": {"account_id": str(account_id)}},
        options={"idempotency_key": f"account-{account_id}-customer"},
    )
    return customer.id


def customer_delete(*, customer_id: str) -> None:
    """Delete the customer and detach its cards first; a customer already gone counts as deleted.

    Stripe deletes a customer's payment methods with it; localstripe does not, and saying it
    explicitly costs one call per card.
    """
    try:
        methods = client().v1.payment_methods.list(params={"customer": customer_id, "type": "card", "limit": 100})
        for method in methods.auto_paging_iter():
            _call(client().v1.payment_methods.detach, method.id)
        client().v1.customers.delete(customer_id)
    except stripe.InvalidRequestError as error:
        if error.http_status != 404:
            raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error
    except stripe.StripeError as error:
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error


def customer_is_deleted(*, customer_id: str) -> bool:
    """Whether Stripe no longer has the customer (Stripe answers `deleted`, localstripe a 404)."""
    try:
        customer = client().v1.customers.retrieve(customer_id)
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return True
        raise GatewayError(str(error)) from error
    return bool(getattr(customer, "deleted", False))


def payment_method_customer(*, payment_method_id: str) -> str:
    """The customer a payment method is attached to ("" once detached)."""
    method = _call(client().v1.payment_methods.retrieve, payment_method_id)
    return method.customer or ""


def setup_intent_create(*, customer_id: str) -> tuple[str, str]:
    """A SetupIntent for saving a card off-session; returns (id, client_secret) for Stripe.js."""
    intent = _call(
        client().v1.setup_intents.create,
        params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
    )
    return intent.id, intent.client_secret


def setup_intent_card(*, setup_intent_id: str, customer_id: str) -> Card:
    """The card a succeeded SetupIntent saved, made the customer's default.

    Refuses (ValueError) an intent that is not this customer's or has not succeeded, so a
    tampered id cannot attach somebody else's card.
    """
    intent = _call(client().v1.setup_intents.retrieve, setup_intent_id)
    if intent.customer != customer_id or intent.status != "succeeded" or not intent.payment_method:
        raise ValueError("This card setup did not complete.")
    return payment_method_make_default(customer_id=customer_id, payment_method_id=intent.payment_method)


def payment_method_make_default(*, customer_id: str, payment_method_id: str) -> Card:
    method = _call(client().v1.payment_methods.retrieve, payment_method_id)
    if method.customer != customer_id:
        # Stripe attaches on SetupIntent success; localstripe does not, so attach when needed.
        try:
            method = _call(client().v1.payment_methods.attach, payment_method_id, params={"customer": customer_id})
        except stripe.CardError as error:
            raise ValueError(error.user_message or "The card was declined.") from error
    _call(
        client().v1.customers.update,
        customer_id,
        params={"invoice_settings": {"default_payment_method": payment_method_id}},
    )
    return card_from_payment_method(method)


def card_from_payment_method(method) -> Card:
    card = method.card
    return Card(
        payment_method_id=method.id,
        brand=card.brand or "",
        last4=card.last4 or "",
        exp_month=int(card.exp_month),
        exp_year=int(card.exp_year),
    )


def payment_intent_create(
    *, amount_minor: int, currency: str, customer_id: str, payment_method_id: str, idempotency_key: str, metadata: dict
) -> str:
    """Create (not confirm) a PaymentIntent; its id is saved before any money can move."""
    intent = _call(
        client().v1.payment_intents.create,
        params={
            "amount": amount_minor,
            "currency": currency,
            "customer": customer_id,
            "payment_method": payment_method_id,
            "payment_method_types": ["card"],
            "metadata": {key: str(value) for key, value in metadata.items()},
        },
        options={"idempotency_key": f"{idempotency_key}-create"},
    )
    return intent.id


def payment_intent_confirm(*, payment_intent_id: str, idempotency_key: str) -> ChargeResult:
    """Charge off-session. A decline or an authentication request is a result, not an error."""
    try:
        intent = _call(
            client().v1.payment_intents.confirm,
            payment_intent_id,
            params={"off_session": True},
            options={"idempotency_key": f"{idempotency_key}-confirm"},
        )
    except stripe.CardError as error:
        # Real Stripe answers an off-session 3-D Secure request with this code.
        status = REQUIRES_ACTION if error.code == "authentication_required" else FAILED
        return ChargeResult(
            status=status,
            payment_intent_id=payment_intent_id,
            failure_code=(error.error and error.error.decline_code) or error.code or "card_declined",
            failure_message=error.user_message or str(error._message or "The card was declined."),
        )
    return _result(intent)


def payment_intent_status(*, payment_intent_id: str) -> ChargeResult:
    """Ask Stripe what became of a PaymentIntent (after a crash, or for a webhook)."""
    return _result(_call(client().v1.payment_intents.retrieve, payment_intent_id))


def payment_intent_cancel(*, payment_intent_id: str) -> None:
    _call(client().v1.payment_intents.cancel, payment_intent_id)


def _result(intent) -> ChargeResult:
    error = getattr(intent, "last_payment_error", None)
    error = error.to_dict() if error else {}
    status = {
        "succeeded": SUCCEEDED,
        "requires_action": REQUIRES_ACTION,
        "processing": PROCESSING,
        "requires_confirmation": REQUIRES_CONFIRMATION,
        "canceled": CANCELED,
    }.get(intent.status, FAILED)
    return ChargeResult(
        status=status,
        payment_intent_id=intent.id,
        failure_code=error.get("decline_code") or error.get("code") or "",
        failure_message=error.get("message") or "",
        client_secret=getattr(intent, "client_secret", "") or "",
    )


def refund_create(
    *, payment_intent_id: str, amount_minor: int, idempotency_key: str, metadata: dict | None = None
) -> str:
    """Refund part or all of a succeeded PaymentIntent; returns the refund id."""
    try:
        refund = _call(
            client().v1.refunds.create,
            params={
                "payment_intent": payment_intent_id,
                "amount": amount_minor,
                "metadata": {key: str(value) for key, value in (metadata or {}).items()},
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.CardError as error:  # a refund is never a card decline, but say so plainly if Stripe does
        raise GatewayError(f"CardError: {error.user_message or error}") from error
    return refund.id


# --- Reconciliation: what Stripe has --------------------------------------------------------------
@dataclass(frozen=True)
class StripePaymentIntent:
    id: str
    amount_minor: int
    currency: str
    status: str  # Stripe's own status: succeeded, requires_payment_method, canceled, ...
    created_at: datetime
    metadata: dict


@dataclass(frozen=True)
class StripeRefund:
    id: str
    payment_intent_id: str
    amount_minor: int
    currency: str
    status: str
    created_at: datetime
    metadata: dict


def _timestamp(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _metadata(obj) -> dict:
    metadata = getattr(obj, "metadata", None)
    return dict(metadata.to_dict() if hasattr(metadata, "to_dict") else metadata or {})


def _payment_intent(intent) -> StripePaymentIntent:
    return StripePaymentIntent(
        id=intent.id,
        amount_minor=int(intent.amount),
        currency=str(intent.currency).lower(),
        status=intent.status,
        created_at=_timestamp(intent.created),
        metadata=_metadata(intent),
    )


def _refund(refund) -> StripeRefund:
    return StripeRefund(
        id=refund.id,
        payment_intent_id=getattr(refund, "payment_intent", None) or "",
        amount_minor=int(refund.amount),
        currency=str(refund.currency).lower(),
        status=refund.status,
        created_at=_timestamp(refund.created),
        metadata=_metadata(refund),
    )


def _list_created_between(resource, start: datetime, end: datetime) -> list:
    """Every object of a list endpoint created in [start, end).

    Stripe filters by `created` itself; localstripe's list endpoints accept only `limit` and
    `starting_after`, so there everything is listed and filtered here.
    """
    params: dict = {"limit": 100}
    if not settings.LOCALSTRIPE_URL:
        params["created"] = {"gte": int(start.timestamp()), "lt": int(end.timestamp())}
    try:
        page = resource.list(params=params)
        items = list(page.auto_paging_iter())
    except stripe.StripeError as error:
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error
    return [item for item in items if start <= _timestamp(item.created) < end]


def payment_intents_created_between(*, start: datetime, end: datetime) -> list[StripePaymentIntent]:
    return [_payment_intent(item) for item in _list_created_between(client().v1.payment_intents, start, end)]


def refunds_created_between(*, start: datetime, end: datetime) -> list[StripeRefund]:
    return [_refund(item) for item in _list_created_between(client().v1.refunds, start, end)]


def payment_intent_get(*, payment_intent_id: str) -> StripePaymentIntent | None:
    """One PaymentIntent, or None when Stripe does not know it."""
    try:
        return _payment_intent(client().v1.payment_intents.retrieve(payment_intent_id))
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error
    except stripe.StripeError as error:
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error


def refund_find(*, payment_intent_id: str, refund_id: int) -> StripeRefund | None:
    """The refund Stripe made for our refund `refund_id` (named in its metadata), or None."""
    try:
        refunds = client().v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
        found = [_refund(item) for item in refunds.auto_paging_iter()]
    except stripe.InvalidRequestError as error:  # Stripe does not know the payment: it refunded nothing
        raise GatewayRefused(f"{type(error).__name__}: {error.user_message or error}") from error
    except stripe.StripeError as error:
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error
    return next((refund for refund in found if refund.metadata.get("refund_id") == str(refund_id)), None)


def refund_get(*, refund_id: str) -> StripeRefund | None:
    """One refund, or None when Stripe does not know it."""
    try:
        return _refund(client().v1.refunds.retrieve(refund_id))
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error
    except stripe.StripeError as error:
        raise GatewayError(f"{type(error).__name__}: {error.user_message or error}") from error


def dashboard_url(*, payment_intent_id: str) -> str:
    """The payment's page in the Stripe dashboard (test or live, from the secret key)."""
    if not payment_intent_id:
        return ""
    live = settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
    return f"https://dashboard.stripe.com/{'' if live else 'test/'}payments/{payment_intent_id}"


def setup_intent_confirm(*, setup_intent_id: str, payment_method_id: str) -> None:
    """Confirm a SetupIntent server-side with a saved or test PaymentMethod (demo data, tests)."""
    try:
        _call(client().v1.setup_intents.confirm, setup_intent_id, params={"payment_method": payment_method_id})
    except stripe.CardError as error:
        raise ValueError(error.user_message or "The card was declined.") from error


def payment_method_get(*, payment_method_id: str) -> PaymentMethodInfo:
    """A card as Stripe has it now: its details, its customer (none once detached), when it was entered."""
    method = _call(client().v1.payment_methods.retrieve, payment_method_id)
    return PaymentMethodInfo(
        card=card_from_payment_method(method),
        customer_id=method.customer or "",
        created=int(getattr(method, "created", 0) or 0),
    )


def setup_intent_get(*, setup_intent_id: str) -> SetupIntentInfo:
    intent = _call(client().v1.setup_intents.retrieve, setup_intent_id)
    return SetupIntentInfo(
        id=intent.id,
        status=intent.status,
        customer_id=intent.customer or "",
        payment_method_id=intent.payment_method or "",
    )


# --- Webhooks -------------------------------------------------------------------------------------------
def webhook_event(*, payload: bytes, signature: str) -> WebhookEvent:
    """Verify a webhook's signature on the raw body with STRIPE_WEBHOOK_SECRET; ValueError if it fails."""
    try:
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
        data = json.loads(payload)
        return WebhookEvent(
            id=str(data["id"]),
            type=str(data["type"]),
            created=int(data.get("created") or 0),
            object=dict(data["data"]["object"]),
        )
    except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Invalid webhook: {error}") from error


# --- Stub (benchmarks only) -----------------------------------------------------------------------------
class _StubResource:
    """Answers like the SDK's services after a fixed latency; every charge succeeds."""

    def __init__(self, prefix: str, latency: float, store: dict, **defaults):
        self._prefix, self._latency, self._store, self._defaults = prefix, latency, store, defaults

    def _answer(self, object_id: str | None = None, **fields):
        time.sleep(self._latency)
        object_id = object_id or f"{self._prefix}_stub_{uuid.uuid4().hex[:20]}"
        stored = self._store.setdefault(object_id, {"id": object_id, "created": int(time.time()), **self._defaults})
        stored.update(fields)
        return SimpleNamespace(**stored)

    def create(self, params=None, options=None):
        return self._answer(**{"client_secret": "stub_secret", **(params or {})})

    def retrieve(self, object_id, params=None, options=None):
        return self._answer(object_id)

    def update(self, object_id, params=None, options=None):
        return self._answer(object_id)

    def delete(self, object_id, params=None, options=None):
        return self._answer(object_id)

    def confirm(self, object_id, params=None, options=None):
        return self._answer(object_id, status=SUCCEEDED)

    def cancel(self, object_id, params=None, options=None):
        return self._answer(object_id, status=CANCELED)

    def attach(self, object_id, params=None, options=None):
        return self._answer(object_id, **(params or {}))


@cache
def _stub_client(latency_ms: float):
    latency, store = latency_ms / 1000, {}
    card = SimpleNamespace(brand="visa", last4="4242", exp_month=12, exp_year=2034)
    return SimpleNamespace(
        v1=SimpleNamespace(
            customers=_StubResource("cus", latency, store),
            setup_intents=_StubResource("seti", latency, store, status=SUCCEEDED),
            payment_methods=_StubResource("pm", latency, store, card=card, customer=None),
            payment_intents=_StubResource("pi", latency, store, status=REQUIRES_CONFIRMATION, last_payment_error=None),
            refunds=_StubResource("re", latency, store),
        )
    )
