"""The billing page, kept in the cache until a row it shows changes.

The billing page is the page customers open most, and the dearest to draw: eight queries and a
long template cost about six times a bare logged-in request (docs/benchmarks.md). Drawn pages are
kept in each web process's memory (`CACHES["pages"]`) per account, user, language and address,
under a *fingerprint* of every row the page is drawn from: one prepared query that, table by
table, counts the rows and adds up their ids and their PostgreSQL row versions, `xmin` (the
transaction that wrote the row) and `cmin` (the command within it). Of the long lists it reads
what the page shows: the newest audit events and invoices, in the page's own order and number
(`selectors.NEWEST_FIRST`, read straight from an index that follows that order), and the open
invoices with their payments; `sum(id)` tells which rows those are.

Why no write can slip past it: every write (a service, a job, a webhook, the admin, a
`.update()`, a raw delete) gives the rows it touches new versions stamped with its own
transaction id, never the id on the versions they replace. If a table's row count is unchanged,
each new version took the place of an older one and the sum of `xmin` moves (it grows, as ids
do); if the count changed, the count shows it. In the lists, a row the page does not show
cannot change it, and a write that changes which rows it shows (a new event, an invoice turning
open) changes their ids and their count. The fingerprint therefore changes in the very
commit that changes the data, and the next view draws the page anew: money shown is never older
than the database, and there is no invalidation to forget. (`cmin` does the same for writes
made inside one transaction, as a test makes them. Only changes whose ids cancel out exactly,
to the unit, could hide one another.)

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
import weakref
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import caches
from django.db import connection
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import get_language

from accounts.models import Account, Membership, User
from billing_portal.lib import clock

from . import selectors
from .models import CreditEntry, Invoice, Payment, Plan, Price, Subscription, SubscriptionEvent

CSRF_PLACEHOLDER = "csrf-token-of-this-request"
# Long enough to serve a burst of reloads, short enough that an unused entry soon frees its room.
TIMEOUT_SECONDS = 60


def _order_by(fields: tuple[str, ...]) -> str:
    """`("-created_at", "-id")` as SQL: `created_at DESC, id DESC`."""
    return ", ".join(f"{name.lstrip('-')} {'DESC' if name.startswith('-') else 'ASC'}" for name in fields)


@functools.cache
def _fingerprint_sql() -> str:
    """`table:count:sum(id):sum(xmin):sum(cmin)` for each table shown (by number), joined by commas; $1 is the
    account, $2 the user. The lists the page shows in part are read as the page reads them (the
    same order and length, from selectors): the rows shown and, through `sum(id)`, which rows
    they are. All rows go through one aggregate, grouped by table: a single pass is cheaper for
    PostgreSQL than one aggregate per table, and each table keeps its own sums."""
    account, membership, user = Account._meta.db_table, Membership._meta.db_table, User._meta.db_table
    subscription, event = Subscription._meta.db_table, SubscriptionEvent._meta.db_table
    invoice, payment, credit = Invoice._meta.db_table, Payment._meta.db_table, CreditEntry._meta.db_table
    plan, price = Plan._meta.db_table, Price._meta.db_table
    newest_first = _order_by(selectors.NEWEST_FIRST)
    # Each row as its version numbers (cast here, once: a row version has no arithmetic of its own).
    row = "id, xmin::text::bigint AS x, cmin::text::bigint AS c"
    # The rows the page is drawn from, table by table.
    shown = [
        f"{row} FROM {account} WHERE id = $1",
        f"{row} FROM {membership} WHERE account_id = $1",
        f"""{row} FROM {user} WHERE id = ANY(ARRAY(
            SELECT $2 UNION SELECT user_id FROM {membership} WHERE account_id = $1 UNION SELECT actor_id FROM events
        ))""",
        "id, x, c FROM subscriptions",
        "id, x, c FROM events",
        "id, x, c FROM invoices",
        f"{row} FROM {payment} WHERE invoice_id = ANY(ARRAY(SELECT id FROM invoices WHERE status = '{Invoice.OPEN}'))",
        f"{row} FROM {credit} WHERE account_id = $1",
        f"{row} FROM {plan}",
        f"{row} FROM {price}",
    ]
    return f"""
        WITH subscriptions AS MATERIALIZED (
            SELECT {row} FROM {subscription} WHERE account_id = $1
        ), events AS MATERIALIZED (
            -- the newest events of each subscription through its index, then the newest of all
            SELECT latest.* FROM subscriptions CROSS JOIN LATERAL (
                SELECT {row}, actor_id, created_at FROM {event} WHERE subscription_id = subscriptions.id
                ORDER BY {newest_first} LIMIT {selectors.RECENT_EVENTS}
            ) AS latest
            ORDER BY {newest_first} LIMIT {selectors.RECENT_EVENTS}
        ), invoices AS MATERIALIZED (
            -- the newest ones listed, and the open ones the dunning and SCA parts show
            (SELECT {row}, status FROM {invoice} WHERE account_id = $1
             ORDER BY {newest_first} LIMIT {selectors.RECENT_INVOICES})
            UNION ALL
            (SELECT {row}, status FROM {invoice} WHERE account_id = $1 AND status = '{Invoice.OPEN}')
        ), shown (tbl, id, x, c) AS (
            {" UNION ALL ".join(f"SELECT {number}, {rows}" for number, rows in enumerate(shown))}
        )
        -- grouped by the table's number: cheaper for PostgreSQL than by its name
        SELECT coalesce(string_agg(concat_ws(':', tbl, rows, ids, xmins, cmins), ',' ORDER BY tbl), '') FROM (
            SELECT tbl, count(*) AS rows, sum(id) AS ids, sum(x) AS xmins, sum(c) AS cmins FROM shown GROUP BY tbl
        ) AS tables"""


# The database connections (psycopg's, one per process and thread) that have the fingerprint
# query prepared: PostgreSQL then plans it once per connection instead of at every view, which
# halves its cost. A prepared statement lives as long as its connection, whatever the
# transactions on it do.
_prepared_on = weakref.WeakSet()


def _fingerprint(*, account_id: int, user_id: int) -> str:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if connection.connection not in _prepared_on:
            cursor.execute(f"PREPARE billing_page_fingerprint(bigint, bigint) AS {_fingerprint_sql()}")
            _prepared_on.add(connection.connection)
        cursor.execute("EXECUTE billing_page_fingerprint(%s, %s)", [account_id, user_id])
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
    pages = caches["pages"]
    html = pages.get(key)
    if html is None:
        html = draw(placeholder)
        pages.set(key, html, TIMEOUT_SECONDS)
    elif settings.BILLING_PAGE_CACHE_CHECK:
        if draw(placeholder) != html:
            raise AssertionError(f"The cached billing page is stale: a table it shows is missing from {__name__}.")
    return HttpResponse(html.replace(CSRF_PLACEHOLDER, get_token(request)))
