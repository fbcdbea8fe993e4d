"""Stripe webhooks: verify, record once, answer at once; a task processes each event once.

Stripe delivers at least once, in any order, and retries for days. So the endpoint only checks
the signature on the raw body, records the event id (a second delivery of the same id changes
nothing) and answers 200; `tasks.process_stripe_event` then runs the handler of the dispatch
table below. Handlers ask Stripe for the current state of the object where order matters (a
PaymentIntent, a card), so a late event cannot move anything backwards.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing_portal.lib import clock

from . import gateway, services
from .models import StripeEvent

log = logging.getLogger(__name__)


@csrf_exempt  # Stripe signs the request instead; there is no session or form here
@require_POST
def stripe_webhook(request):
    try:
        event = gateway.webhook_event(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except ValueError as error:
        log.warning("Refused a Stripe webhook: %s", error)
        return HttpResponseBadRequest("Invalid signature or payload.", content_type="text/plain")
    recorded = services.stripe_event_record(event=event, now=clock.now())
    return HttpResponse("ok" if recorded else "duplicate", content_type="text/plain")


# --- Handlers: (event object, now) -> what was done --------------------------------------------------------
def _payment_intent(obj: dict, now: datetime) -> str:
    return services.payment_sync(payment_intent_id=obj["id"], now=now)


def _setup_intent_succeeded(obj: dict, now: datetime) -> str:
    return services.account_card_adopt(setup_intent_id=obj["id"], customer_id=obj.get("customer") or "", now=now)


def _payment_method_changed(obj: dict, now: datetime) -> str:
    return services.account_card_sync(payment_method_id=obj["id"], now=now)


def _charge_refunded(obj: dict, now: datetime) -> str:
    if not obj.get("payment_intent"):
        return "ignored: charge without a payment intent"
    return services.payment_refund_record(
        payment_intent_id=obj["payment_intent"], refunded_minor=int(obj.get("amount_refunded") or 0), now=now
    )


def _dispute_created(obj: dict, now: datetime) -> str:
    if not obj.get("payment_intent"):
        return "ignored: dispute without a payment intent"
    return services.payment_dispute_record(
        payment_intent_id=obj["payment_intent"], reason=obj.get("reason") or "unknown", now=now
    )


HANDLERS: dict[str, Callable[[dict, datetime], str]] = {
    "payment_intent.succeeded": _payment_intent,
    "payment_intent.payment_failed": _payment_intent,
    "payment_intent.requires_action": _payment_intent,
    "setup_intent.succeeded": _setup_intent_succeeded,
    "payment_method.detached": _payment_method_changed,
    "payment_method.updated": _payment_method_changed,
    "payment_method.automatically_updated": _payment_method_changed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


def stripe_event_process(*, event_pk: int, now: datetime | None = None) -> str:
    """Run the handler of a recorded event, once; returns what it did."""
    now = now or clock.now()
    event = StripeEvent.objects.filter(pk=event_pk).first()
    if event is None or event.processed_at is not None:
        return "already processed"
    handler = HANDLERS.get(event.type)
    try:
        outcome = handler(event.data, now) if handler else "ignored: not a type we handle"
    except Exception as error:
        services.stripe_event_failed(event=event, error=f"{type(error).__name__}: {error}")
        raise
    services.stripe_event_finish(event=event, outcome=outcome, now=now)
    return outcome
