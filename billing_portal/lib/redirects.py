"""The one check for "come back to this address" values taken from requests."""

from django.utils.http import url_has_allowed_host_and_scheme


def local_url(request, value: str | None, default: str) -> str:
    """`value` when it is a path on this site ("/billing/"), else `default`: never another site,
    and never a bare word that `redirect()` would try to resolve as a view name."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}, require_https=False)
    ):
        return value
    return default
