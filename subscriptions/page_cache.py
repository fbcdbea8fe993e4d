"""The billing page, kept in the cache until a row it shows changes.

The billing page is the page customers open most, and the dearest to draw: eight queries and a
long template cost about six times a bare logged-in request (docs/benchmarks.md). It is cached
per account, user, language and address, under a *fingerprint* of every row it is drawn from:
one query that, table by table, counts the rows and adds up their PostgreSQL row versions,
`xmin` (the transaction that wrote the row) and `cmin` (the command within it).

Why no write can slip past it: every write (a service, a job, a webhook, the admin, a
`.update()`, a raw delete) replaces the rows it touches with new versions stamped with its own,
newer transaction id. If a table's row count is unchanged, each new version took the place of an
older one, so the sum of `xmin` grows; if the count changed, the count shows it. The fingerprint
therefore changes in the very commit that changes the data, and the next view draws the page
anew: money shown is never older than the database, and there is no invalidation to forget.
(`cmin` does the same for writes made inside one transaction, as a test makes them; `xmin`
wraps around only after four billion transactions, and then only an exact coincidence of sums
could hide a change.)

The clock matters too ("committed until", the deletion banner): the key holds the current
minute, so a page is at most a minute behind the clock, as a page left open is.

Never cached: a page that carries a message (it is shown once, after an action), and the CSRF
token, which belongs to the browser's session: the page is stored with a placeholder that is
replaced by this request's token. On SQLite (development) there are no row versions: the page
is drawn every time.

A page that comes to show data from another table must add the table here. With
`BILLING_PAGE_CACHE_CHECK` (on in tests) every hit is drawn again and compared, so a table
missing here fails the suite.
"""

import functools
import hashlib
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import get_language

from accounts.models import Account, Membership, User
from billing_portal.lib import clock

from .models import CreditEntry, Invoice, Payment, Plan, Price, Subscription, SubscriptionEvent

CSRF_PLACEHOLDER = "csrf-token-of-this-request"
# Long enough to serve a burst of reloads, short enough that an unused entry soon frees its room.
TIMEOUT_SECONDS = 60


@functools.cache
def _fingerprint_sql() -> str:
    def rows(model, where: str) -> str:
        versions = (
            "count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) || ':' || coalesce(sum(cmin::text::bigint), 0)"
        )
        return f"(SELECT {versions} FROM {model._meta.db_table} WHERE {where})"

    subscriptions = f"SELECT id FROM {Subscription._meta.db_table} WHERE account_id = %(account)s"
    invoices = f"SELECT id FROM {Invoice._meta.db_table} WHERE account_id = %(account)s"
    payments = f"SELECT id FROM {Payment._meta.db_table} WHERE invoice_id IN ({invoices})"
    members = f"SELECT user_id FROM {Membership._meta.db_table} WHERE account_id = %(account)s"
    actors = f"SELECT actor_id FROM {SubscriptionEvent._meta.db_table} WHERE subscription_id IN ({subscriptions})"
    parts = [
        rows(Account, "id = %(account)s"),
        rows(Membership, "account_id = %(account)s"),
        rows(User, f"id = %(user)s OR id IN ({members}) OR id IN ({actors})"),
        rows(Subscription, "account_id = %(account)s"),
        rows(SubscriptionEvent, f"subscription_id IN ({subscriptions})"),
        rows(Invoice, "account_id = %(account)s"),
        rows(Payment, f"id IN ({payments})"),
        rows(CreditEntry, "account_id = %(account)s"),
        rows(Plan, "TRUE"),
        rows(Price, "TRUE"),
    ]
    return "SELECT " + " || ',' || ".join(parts)


def _fingerprint(*, account_id: int, user_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(_fingerprint_sql(), {"account": account_id, "user": user_id})
        return cursor.fetchone()[0]


def enabled() -> bool:
    return connection.vendor == "postgresql"


def billing_page(request, draw: Callable[[dict], str]) -> HttpResponse:
    """The billing page for this request: from the cache when nothing it shows has changed, else
    `draw(extra_context)`, the page's HTML with `extra_context` added to the template's context."""
    if not enabled() or get_messages(request):
        # A message is shown once, on the page after an action: such a page is drawn, not stored.
        return HttpResponse(draw({}))
    account, user = request.account, request.user
    fingerprint = _fingerprint(account_id=account.pk, user_id=user.pk)
    minute = clock.now().strftime("%Y%m%d%H%M")
    # The dunning settings shape the page too; a restart with new ones must not serve old text.
    dunning = (settings.BILLING_DUNNING_RETRY_DAYS, settings.BILLING_DUNNING_FINAL_ACTION)
    shaped_by = (fingerprint, request.get_full_path(), dunning)
    digest = hashlib.sha256(repr(shaped_by).encode()).hexdigest()
    key = f"billing-page:{account.pk}:{user.pk}:{get_language()}:{minute}:{digest}"
    placeholder = {"csrf_token": CSRF_PLACEHOLDER}
    html = cache.get(key)
    if html is None:
        html = draw(placeholder)
        cache.set(key, html, TIMEOUT_SECONDS)
    elif settings.BILLING_PAGE_CACHE_CHECK:
        if draw(placeholder) != html:
            raise AssertionError(f"The cached billing page is stale: a table it shows is missing from {__name__}.")
    return HttpResponse(html.replace(CSRF_PLACEHOLDER, get_token(request)))
