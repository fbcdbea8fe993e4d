"""Deploy checks for billing settings that Django's own `check --deploy` cannot know about."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility, deploy=True)
def invoice_issuer_is_set(app_configs, **kwargs):
    # Not a start-up error like the secrets: the portal works without it, but its invoices do not
    # name the seller, which most tax authorities require of an invoice.
    if settings.INVOICE_ISSUER.strip():
        return []
    return [
        checks.Warning(
            "INVOICE_ISSUER is empty: new invoices will not name the seller.",
            hint="Set INVOICE_ISSUER to the company name, address and VAT number, with \\n between lines.",
            id="subscriptions.W001",
        )
    ]
