"""Build Stripe webhook deliveries as Stripe signs them (for the events localstripe never sends)."""

import hashlib
import hmac
import json
import time
import uuid

import requests
from django.conf import settings


def event(event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "api_version": "2024-06-20",
        "livemode": False,
        "data": {"object": obj},
    }


def signed(payload: dict, *, secret: str | None = None, timestamp: int | None = None) -> tuple[bytes, str]:
    """The raw body and its Stripe-Signature header: HMAC-SHA256 of "<t>.<body>"."""
    body = json.dumps(payload).encode()
    timestamp = timestamp or int(time.time())
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={digest}"


def deliver(client, payload: dict, **signing):
    body, header = signed(payload, **signing)
    return client.post("/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def localstripe_object(fake_stripe, path: str) -> dict:
    """An object as localstripe holds it now (e.g. "payment_intents/pi_123")."""
    response = requests.get(f"{fake_stripe.url}/v1/{path}", auth=(settings.STRIPE_SECRET_KEY, ""), timeout=10)
    response.raise_for_status()
    return response.json()


def localstripe_post(fake_stripe, path: str, data: dict) -> dict:
    response = requests.post(
        f"{fake_stripe.url}/v1/{path}", json=data, auth=(settings.STRIPE_SECRET_KEY, ""), timeout=10
    )
    response.raise_for_status()
    return response.json()
