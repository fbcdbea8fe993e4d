"""The daily retention job (beat): abandon stale flows and settle saves after 30 days."""

from celery import shared_task

from billing_portal.lib import clock

from . import services


@shared_task
def settle_flows() -> dict[str, int]:
    return services.flows_settle(now=clock.now())
