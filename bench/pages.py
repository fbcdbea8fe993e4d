"""Benchmark: the customer pages under load, through gunicorn, against a trivial logged-in page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_portal REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/pages.py --accounts 10000 --invoices 200 --duration 10 --rounds 5 --connections 8

It works in its own database (the DATABASE_URL database name plus "_pages", created and migrated
if needed, emptied at each run), seeds --accounts accounts (an owner, a card on file, a running
subscription, an invoice each) and one measured account with --invoices paid invoices and a
matching history, collects the static files and starts gunicorn as the Procfile does (4 sync
workers) with production settings (DEBUG=false, CONN_MAX_AGE=60, Redis cache). It logs in over
HTTP like a browser (login form, CSRF token, session cookie), checks that every measured page
answers 200 with its own content, warms up, then drives each page with wrk for --duration
seconds over --connections connections, one page after the other (--rounds times, the median is
reported). Requests carry `X-Forwarded-Proto: https`, as the TLS proxy in front of gunicorn
sends, so the production HTTPS redirect does not answer them.

Stripe's API address points at a trap (a small HTTP server in this script that counts requests):
a page view that called Stripe fails the run. So does any response other than 200.

Before the load, each page's work per request is measured in this process through Django's test
client: SQL queries, Python function calls (cProfile; independent of the machine's load) and
CPU time. "billing, drawn" is the billing page with its summary cache off
(subscriptions/page_cache.py), as on the first view after a change; under load the summary comes
from the cache. Then it prints, per page, requests per second, p50 and p99 latency and their
ratio to the ceiling (a logged-in page with the same middleware and nothing else:
billing_portal/ceiling.py), plus the load average before and after each run, since the machine
may be shared.

Gunicorn runs sync workers, as the Procfile deploys it: the pages are CPU-bound Python, so
threads (gthread) would add no throughput on top of one process per core, and keep-alive is the
TLS proxy's job. A sync worker closes the connection after each response, so wrk reconnects for
every request, to the ceiling as to the pages.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.renewals import BENCH_SECRETS, bench_database_url, ensure_database, free_port, wait_for_port  # noqa: E402

PASSWORD = "bench-pages-password"
MEASURED_EMAIL = "measured@bench.test"
# (label, path, text the page must contain); the ceiling comes first, the ratios are to it.
PAGES = [
    ("ceiling", "/bench/ceiling/", "ceiling user="),
    ("billing page", "/billing/", "Billing settings"),
    ("plan picker", "/billing/plans/", "Choose a plan"),
    ("invoice list", "/billing/invoices/", "Invoices"),
]
UNCACHED = "billing, drawn"  # measured in-process only: the billing page with its cache off
# wrk counts anything but 2xx/3xx as an error; a redirect (to the login page, to HTTPS) would
# pass unnoticed, so the script counts every status other than 200 itself.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("not_ok") end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d not_ok=%d socket_errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout))
end
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts in the database (default 10000)")
    parser.add_argument("--invoices", type=int, default=200, help="invoices of the measured account (default 200)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per page and round (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="measure the pages one after the other this many times (median; default 5)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load per page before measuring")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4, as the Procfile)")
    parser.add_argument("--language", default="en", help="Accept-Language of the requests (default en)")
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args()


# --- The Stripe trap ----------------------------------------------------------------------------------
class StripeTrap:
    """An HTTP server standing where Stripe's API would be: it counts every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                trap.requests.append(f"{self.command} {self.path}")
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "bench/pages.py: no Stripe call on a page view"}}')

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- Seeding --------------------------------------------------------------------------------------------
def seed(*, accounts: int, invoices: int) -> None:
    """`accounts` customers with a running subscription, the first one with `invoices` invoices."""
    from dateutil.relativedelta import relativedelta
    from django.contrib.auth.hashers import make_password

    from accounts.models import Account, Membership, User
    from billing_portal.lib import clock
    from subscriptions import lifecycle
    from subscriptions.management.commands.seed_demo import Command as SeedDemo
    from subscriptions.models import CreditEntry, Invoice, InvoiceLine, Payment, Subscription, SubscriptionEvent

    now = clock.now()
    prices = SeedDemo()._plans()
    paid_prices = [prices[code][cycle] for code in ("pro", "business") for cycle in prices[code]]
    password = make_password(PASSWORD)  # one hash for all: hashing 10,000 would take minutes
    card = {
        "stripe_customer_id": "cus_bench",
        "payment_method_id": "pm_bench",
        "card_brand": "visa",
        "card_last4": "4242",
        "card_exp_month": 12,
        "card_exp_year": now.year + 3,
    }
    account_rows = Account.objects.bulk_create(
        (
            Account(name=f"Bench customer {n}", billing_email=f"billing{n}@bench.test", created_at=now, **card)
            for n in range(accounts)
        ),
        batch_size=2000,
    )
    users = User.objects.bulk_create(
        (
            User(
                email=MEASURED_EMAIL if n == 0 else f"owner{n}@bench.test",
                name=f"Owner {n}",
                password=password,
                email_verified_at=now,
            )
            for n in range(accounts)
        ),
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        (Membership(account=a, user=u, role=Membership.OWNER) for a, u in zip(account_rows, users, strict=True)),
        batch_size=2000,
    )

    # Every account but the measured one: a running subscription started 1 to 28 days ago, its
    # first invoice paid, one audit event.
    subscriptions = []
    for n, account in enumerate(account_rows):
        price = prices["pro"][lifecycle.MONTHLY] if n == 0 else paid_prices[n % len(paid_prices)]
        periods = invoices if n == 0 else 1
        if n == 0:
            # The measured account: monthly since `invoices` months, in its last period now.
            anchor = now - relativedelta(months=invoices - 1) - timedelta(days=10)
        else:
            anchor = now - timedelta(days=1 + n % 28)
        subscriptions.append(
            Subscription(
                account=account,
                price=price,
                status=lifecycle.ACTIVE,
                amount_minor=price.amount_minor,
                currency=price.currency,
                billing_anchor_at=anchor,
                period_number=periods,
                current_period_start=lifecycle.period_end(anchor, price.cycle, periods - 1),
                current_period_end=lifecycle.period_end(anchor, price.cycle, periods),
                current_period_paid_minor=price.amount_minor,
                commitment_end_at=lifecycle.commitment_end(anchor, price.cycle),
                created_at=anchor,
            )
        )
    subscriptions = Subscription.objects.bulk_create(subscriptions, batch_size=2000)

    invoice_rows, events = [], []
    for n, sub in enumerate(subscriptions):
        for period in range(invoices if n == 0 else 1):
            start = lifecycle.period_end(sub.billing_anchor_at, sub.price.cycle, period)
            invoice_rows.append(
                Invoice(
                    account_id=sub.account_id,
                    subscription=sub,
                    billing_reason=Invoice.CREATE if period == 0 else Invoice.CYCLE,
                    price=sub.price,
                    status=Invoice.PAID,
                    currency=sub.currency,
                    period_start=start,
                    period_end=lifecycle.period_end(sub.billing_anchor_at, sub.price.cycle, period + 1),
                    subtotal_minor=sub.amount_minor,
                    amount_due_minor=sub.amount_minor,
                    customer_name=f"Bench customer {n}",
                    customer_email=f"billing{n}@bench.test",
                    created_at=start,
                    paid_at=start,
                )
            )
            kind = "started" if period == 0 else "payment_succeeded"
            events.append(
                SubscriptionEvent(
                    subscription=sub,
                    kind=kind,
                    from_status="" if period == 0 else lifecycle.ACTIVE,
                    to_status=lifecycle.ACTIVE,
                    actor_kind=SubscriptionEvent.CUSTOMER if period == 0 else SubscriptionEvent.JOB,
                    price=sub.price,
                    data={"price": sub.price_id, "amount_minor": sub.amount_minor},
                    created_at=start,
                )
            )
            if period:
                events.append(
                    SubscriptionEvent(
                        subscription=sub,
                        kind="renewed",
                        from_status=lifecycle.ACTIVE,
                        to_status=lifecycle.ACTIVE,
                        actor_kind=SubscriptionEvent.JOB,
                        data={"period": period + 1},
                        created_at=start,
                    )
                )
    invoice_rows = Invoice.objects.bulk_create(invoice_rows, batch_size=2000)
    InvoiceLine.objects.bulk_create(
        (
            InvoiceLine(
                invoice=invoice,
                kind=InvoiceLine.PLAN,
                description=f"{invoice.price.plan.name} ({invoice.price.get_cycle_display().lower()})",
                amount_minor=invoice.subtotal_minor,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
            )
            for invoice in invoice_rows
        ),
        batch_size=2000,
    )
    Payment.objects.bulk_create(
        (
            Payment(
                invoice=invoice,
                attempt=1,
                idempotency_key=f"bench-invoice-{invoice.pk}-1",
                stripe_payment_intent_id=f"pi_bench_{invoice.pk}",
                amount_minor=invoice.amount_due_minor,
                currency=invoice.currency,
                status=Payment.SUCCEEDED,
                created_at=invoice.created_at,
                finished_at=invoice.created_at,
            )
            for invoice in invoice_rows
        ),
        batch_size=2000,
    )
    # The measured account's recent history: a plan change, a cancellation scheduled and undone.
    measured = subscriptions[0]
    business = prices["business"][lifecycle.MONTHLY]
    recent = [
        ("price_changed", {"from_price": business.pk, "price": measured.price_id}, 40),
        ("cancel_scheduled", {"cancel_at": measured.current_period_end.isoformat()}, 20),
        ("cancel_undone", {}, 19),
    ]
    events += [
        SubscriptionEvent(
            subscription=measured,
            kind=kind,
            from_status=lifecycle.ACTIVE,
            to_status=lifecycle.ACTIVE,
            actor_kind=SubscriptionEvent.CUSTOMER,
            actor=users[0],
            data=data,
            created_at=now - timedelta(days=days_ago),
        )
        for kind, data, days_ago in recent
    ]
    SubscriptionEvent.objects.bulk_create(events, batch_size=2000)
    CreditEntry.objects.create(
        account=account_rows[0],
        amount_minor=500,
        currency="eur",
        kind=CreditEntry.GRANT,
        note="Goodwill",
        created_at=now - timedelta(days=30),
    )
    # Teammates of the measured account, so the team-related queries have something to find.
    teammates = User.objects.bulk_create(
        [
            User(email="admin@bench.test", name="Billing admin", password=password, email_verified_at=now),
            User(email="member@bench.test", name="Member", password=password, email_verified_at=now),
        ]
    )
    Membership.objects.bulk_create(
        [
            Membership(account=account_rows[0], user=teammates[0], role=Membership.BILLING_ADMIN),
            Membership(account=account_rows[0], user=teammates[1], role=Membership.MEMBER),
        ]
    )


# --- HTTP as a browser does it --------------------------------------------------------------------------
class Browser:
    """Just enough of a browser behind the TLS proxy: cookies (secure ones too) and the proxy header."""

    def __init__(self, port: int, language: str) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.language = language

    def headers(self) -> dict[str, str]:
        headers = {"X-Forwarded-Proto": "https", "Accept-Language": self.language, "User-Agent": "bench/pages.py"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return headers

    def request(self, method: str, path: str, body: dict | None = None, extra: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = self.headers() | (extra or {})
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response.status, dict(response.getheaders()), text

    def login(self, email: str, password: str) -> None:
        status, _, html = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if status != 200 or token is None or "csrftoken" not in self.cookies:
            sys.exit(f"login page: status {status}, no CSRF token or cookie")
        origin = f"https://127.0.0.1:{self.port}"
        status, headers, _ = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token.group(1), "username": email, "password": password},
            {"Referer": f"{origin}/accounts/login/", "Origin": origin},
        )
        if status != 302 or "sessionid" not in self.cookies:
            sys.exit(f"login failed: status {status}, location {headers.get('Location')}")


# --- Work per request, in-process ------------------------------------------------------------------------
def measure_work(args, requests: int = 20) -> dict[str, dict]:
    """SQL queries, Python function calls and CPU milliseconds per request of each page, through
    Django's test client in this process (the same settings as gunicorn's).

    Function calls are counted by cProfile, so they do not depend on the machine's load: the
    figure to compare before and after a change on a shared machine. CPU time does depend on it.
    """
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client

    from accounts.models import User

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    client = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_ACCEPT_LANGUAGE=args.language, SERVER_NAME="127.0.0.1")
    client.force_login(User.objects.get(email=MEASURED_EMAIL))
    work = {}

    def measure_page(label: str, path: str, text: str) -> None:
        for _ in range(3):  # templates compiled, caches warm, the login message consumed
            response = client.get(path)
        assert response.status_code == 200 and text in response.content.decode(), f"{label}: {response}"
        queries[0] = 0
        cpu = time.process_time()
        for _ in range(requests):
            client.get(path)
        cpu = (time.process_time() - cpu) / requests
        page_queries = queries[0] / requests
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(requests):
            client.get(path)
        profile.disable()
        calls = pstats.Stats(profile).total_calls / requests
        work[label] = {"queries": page_queries, "calls": calls, "cpu_ms": cpu * 1000, "bytes": len(response.content)}
        print(
            f"  {label:<13} {page_queries:3.0f} queries, {calls:7.0f} Python calls, {cpu * 1000:5.1f} ms CPU,"
            f" {len(response.content):6} bytes per request (in-process, test client)",
            flush=True,
        )

    with connection.execute_wrapper(count):
        for label, path, text in PAGES:
            measure_page(label, path, text)
        # Under load the billing page's summary comes from its cache (subscriptions/page_cache.py);
        # the first view after any change draws it in full, which costs this:
        with mock.patch("subscriptions.page_cache.enabled", return_value=False):
            measure_page(UNCACHED, "/billing/", "Billing settings")
    return work


# --- Load -----------------------------------------------------------------------------------------------
def run_wrk(args, url: str, headers: dict, seconds: int, script: str) -> dict:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", script, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (.+)", output)
    if match is None:
        sys.exit(f"wrk printed no result:\n{output}")
    result = {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> None:
    args = parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: production runs with the Redis cache, and so does this benchmark.")
    database_url = bench_database_url("BENCH_PAGES_DATABASE_URL", "_pages")
    ensure_database(database_url)
    var_dir = tempfile.mkdtemp(prefix="bench-pages-")
    trap = StripeTrap()
    port = free_port()
    env = {
        **os.environ,
        **BENCH_SECRETS,
        "DATABASE_URL": database_url,
        "VAR_DIR": var_dir,  # static files collected for this run, nothing in the project's var/
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"https://127.0.0.1:{port}",
        "LOCALSTRIPE_URL": trap.url,  # the SDK's API base: any Stripe call lands in the trap
        "STRIPE_GATEWAY": "stripe",
        "BENCH_CEILING_VIEW": "true",
        "BEHIND_PROXY": "true",
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    print(f"database {settings.DATABASES['default']['NAME']}, cache {settings.CACHES['default']['BACKEND']}")
    print(f"sessions {settings.SESSION_ENGINE}", flush=True)
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    started = time.perf_counter()
    seed(accounts=args.accounts, invoices=args.invoices)
    from django.db import connection

    # A production database has planner statistics (autovacuum keeps them up to date); a
    # bulk-loaded one has none until autovacuum passes, which would make each run differ.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {args.accounts} accounts, {args.invoices} invoices on the measured one"
        f" in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    call_command("collectstatic", interactive=False, verbosity=0)
    work = measure_work(args)
    from django.db import connections

    connections.close_all()

    # As the Procfile starts it: sync workers (one request at a time per process; keep-alive is the
    # TLS proxy's business), access log to stdout.
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "billing_portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            "sync",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=60)
        measure(args, port, trap, work)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        try:
            gunicorn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(gunicorn.pid, signal.SIGKILL)
        trap.server.shutdown()
        shutil.rmtree(var_dir, ignore_errors=True)


def measure(args, port: int, trap: StripeTrap, work: dict) -> None:
    browser = Browser(port, args.language)
    browser.login(MEASURED_EMAIL, PASSWORD)
    for label, path, text in PAGES:
        status, _, body = browser.request("GET", path)
        if status != 200 or text not in body:
            sys.exit(f"{label} {path}: status {status}, {text!r} {'found' if text in body else 'missing'}")
    # The pages to measure all render (and whatever the login put in the session is consumed).
    status, _, body = browser.request("GET", "/billing/invoices/")
    rows = len(re.findall(r'href="/billing/invoices/\d+/"', body))
    print(f"logged in as {MEASURED_EMAIL}; every page answers 200 ({rows} invoice links on the list)")
    headers = browser.headers()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    base = f"http://127.0.0.1:{port}"
    if args.warmup:
        for _, path, _ in PAGES:
            run_wrk(args, base + path, headers, args.warmup, script.name)
    results: dict[str, list[dict]] = {label: [] for label, _, _ in PAGES}
    for round_number in range(args.rounds):
        for label, path, _ in PAGES:
            before = os.getloadavg()[0]
            result = run_wrk(args, base + path, headers, args.duration, script.name)
            result["load_before"], result["load_after"] = before, os.getloadavg()[0]
            results[label].append(result)
            print(
                f"  round {round_number + 1} {label:<13} {result['rps']:7.1f} req/s"
                f"  p50 {result['p50_us'] / 1000:6.1f} ms  p99 {result['p99_us'] / 1000:6.1f} ms"
                f"  load {before:.2f} -> {result['load_after']:.2f}",
                flush=True,
            )
    os.unlink(script.name)

    failures = []
    for label, runs in results.items():
        for result in runs:
            if result["not_ok"] or result["socket_errors"]:
                failures.append(
                    f"{label}: {result['not_ok']} responses not 200, {result['socket_errors']} socket errors"
                )
    if trap.requests:
        failures.append(f"Stripe was called {len(trap.requests)} times during page views: {trap.requests[:5]}")

    summary = {}
    for label, runs in results.items():
        summary[label] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
            "requests": sum(r["requests"] for r in runs),
            "load": (min(r["load_before"] for r in runs), max(r["load_after"] for r in runs)),
        }
    ceiling = summary["ceiling"]
    print()
    print(
        f"gunicorn {args.workers} sync workers; wrk {args.threads} threads, {args.connections} connections, "
        f"{args.duration}s per page x {args.rounds} round(s); {args.accounts} accounts, "
        f"{args.invoices} invoices on the measured one"
    )
    print(
        f"{'page':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s vs ceiling':>17} {'p99 vs ceiling':>15}"
        f" {'load avg':>12} {'queries':>8} {'Python calls':>13}"
    )
    for label, row in summary.items():
        print(
            f"{label:<14} {row['rps']:8.1f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f}"
            f" {row['rps'] / ceiling['rps']:16.2f}x {row['p99_ms'] / ceiling['p99_ms']:14.2f}x"
            f" {row['load'][0]:5.2f}-{row['load'][1]:<5.2f} {work[label]['queries']:8.0f} {work[label]['calls']:13.0f}"
        )
    billing = summary["billing page"]
    print()
    print(
        f"goal: billing page >= 0.80x the ceiling's req/s: {billing['rps'] / ceiling['rps']:.2f}x "
        f"({'met' if billing['rps'] >= 0.8 * ceiling['rps'] else 'NOT met'})"
    )
    print(
        f"goal: billing page p99 <= 2x the ceiling's: {billing['p99_ms'] / ceiling['p99_ms']:.2f}x "
        f"({'met' if billing['p99_ms'] <= 2 * ceiling['p99_ms'] else 'NOT met'})"
    )
    print(f"Stripe requests during the run: {len(trap.requests)}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "work": work, "summary": summary, "runs": results}, indent=2)
        )
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
