"""Benchmark: N due subscriptions renewed by real Celery workers on Redis and PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_portal REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/renewals.py --n 10000 --gateway stub --rate 80 --stub-latency-ms 50

It works in its own database (the DATABASE_URL database name plus "_bench", created and
migrated if needed, emptied at each run) and its own Celery queue, so it never touches the data
or the workers of `make run`. It creates N monthly subscriptions whose period has ended (sharing
one Stripe customer and card), starts the workers, queues one sweep (what beat does), and waits
until every renewal invoice is paid and every queued task (receipts included) has run.

--gateway localstripe starts a localstripe of its own; --gateway stub answers every Stripe call
in-process after --stub-latency-ms (subscriptions/gateway.py, STRIPE_GATEWAY=stub). Both go
through the same rate limit (--rate, STRIPE_MAX_REQUESTS_PER_SECOND, shared through Redis).

Prints renewals per second, SQL queries and Stripe requests per renewal (counted inside the
workers, bench/worker.py), and the Stripe request rate as a share of the configured limit.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_SECRETS = {
    "DEBUG": "false",  # workers as in production: no debug cursor on every query
    "SECRET_KEY": "bench-only-" + "x" * 40,
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe",
    "EMAIL_URL": "dummymail://",
    "CONN_MAX_AGE": "60",
    "LOG_LEVEL": "WARNING",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="due subscriptions to renew (default 10000)")
    parser.add_argument("--gateway", choices=["stub", "localstripe"], default="stub")
    parser.add_argument("--rate", type=float, default=80.0, help="Stripe requests per second for all workers")
    parser.add_argument("--stub-latency-ms", type=float, default=50.0, help="latency of each stub Stripe call")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="processes per worker")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    return parser.parse_args()


def bench_database_url(override: str = "BENCH_DATABASE_URL", suffix: str = "_bench") -> str:
    """The benchmark's own database: `override` if set, else DATABASE_URL's name + `suffix`."""
    url = os.environ.get(override)
    if url:
        return url
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit(f"Set DATABASE_URL (PostgreSQL) or {override}.")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"nothing listens on port {port}")


def main() -> None:
    args = parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: the workers need Redis as their broker and for the shared rate limit.")
    database_url = bench_database_url()
    ensure_database(database_url)
    queue = f"bench-{os.getpid()}"
    env = {
        **os.environ,
        **BENCH_SECRETS,
        "DATABASE_URL": database_url,
        "CELERY_DEFAULT_QUEUE": queue,
        "STRIPE_MAX_REQUESTS_PER_SECOND": str(args.rate),
        "BENCH_COUNTERS_KEY": f"{queue}:counters",
        "DJANGO_SETTINGS_MODULE": "billing_portal.settings",
        "PYTHONPATH": str(ROOT),
    }
    processes: list[subprocess.Popen] = []
    if args.gateway == "stub":
        env.update(STRIPE_GATEWAY="stub", STRIPE_STUB_LATENCY_MS=str(args.stub_latency_ms), LOCALSTRIPE_URL="")
    else:
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "localstripe_server.py"), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(port)
        env["LOCALSTRIPE_URL"] = f"http://127.0.0.1:{port}"
    os.environ.update(env)
    try:
        run(args, env, queue, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def run(args, env: dict, queue: str, processes: list) -> None:
    import django

    django.setup()
    import redis
    from dateutil.relativedelta import relativedelta
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import Account
    from billing_portal.lib import clock
    from subscriptions import gateway, lifecycle, services, tasks
    from subscriptions.models import EmailSent, Invoice, Payment, Plan, Price, Subscription

    print(f"database {settings.DATABASES['default']['NAME']}, queue {queue}, gateway {args.gateway}", flush=True)
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    counters = env["BENCH_COUNTERS_KEY"]
    broker.delete(counters, queue)

    # N due subscriptions sharing one Stripe customer and card (created through the gateway).
    created = time.perf_counter()
    first = Account.objects.create(name="Bench 0", billing_email="bench0@example.com")
    customer = services.account_ensure_stripe_customer(account=first)
    services.account_card_save(
        account=first, card=gateway.payment_method_make_default(customer_id=customer, payment_method_id="pm_card_visa")
    )
    first.refresh_from_db()
    plan = Plan.objects.create(code="bench", name="Bench", rank=1)
    price = Price.objects.create(plan=plan, cycle=lifecycle.MONTHLY, amount_minor=1900, currency="eur")
    card = {
        field: getattr(first, field)
        for field in (
            "stripe_customer_id",
            "payment_method_id",
            "card_brand",
            "card_last4",
            "card_exp_month",
            "card_exp_year",
        )
    }
    accounts = [first] + Account.objects.bulk_create(
        (Account(name=f"Bench {n}", billing_email=f"bench{n}@example.com", **card) for n in range(1, args.n)),
        batch_size=2000,
    )
    period_end = clock.now() - timedelta(hours=1)
    anchor = period_end - relativedelta(months=1)
    Subscription.objects.bulk_create(
        (
            Subscription(
                account=account,
                price=price,
                status=lifecycle.ACTIVE,
                amount_minor=price.amount_minor,
                currency=price.currency,
                billing_anchor_at=anchor,
                period_number=1,
                current_period_start=anchor,
                current_period_end=period_end,
                current_period_paid_minor=price.amount_minor,
                created_at=anchor,
            )
            for account in accounts
        ),
        batch_size=2000,
    )
    print(f"created {args.n} due subscriptions in {time.perf_counter() - created:.1f}s", flush=True)

    for number in range(args.workers):
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "bench.worker",
                    "worker",
                    "-n",
                    f"bench{number}-{queue}@%h",
                    "--concurrency",
                    str(args.concurrency),
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    time.sleep(3)  # let the workers connect before the clock starts

    started = time.perf_counter()
    tasks.sweep.apply_async(queue=queue)
    renewals = Invoice.objects.filter(billing_reason=Invoice.CYCLE)
    paid_at = None
    last_report = 0.0
    while True:
        elapsed = time.perf_counter() - started
        if elapsed > args.timeout:
            sys.exit(f"timed out after {elapsed:.0f}s")
        paid = renewals.filter(status=Invoice.PAID).count()
        if paid_at is None and paid == args.n:
            paid_at = elapsed
        receipts = EmailSent.objects.filter(kind="payment-receipt").count()
        if paid_at is not None and receipts == args.n and broker.llen(queue) == 0:
            break
        if elapsed - last_report >= 10:
            print(f"  {elapsed:6.0f}s  {paid:>6} paid  ({paid / max(elapsed, 0.001):.1f}/s)", flush=True)
            last_report = elapsed
        time.sleep(0.5)
    drained_at = time.perf_counter() - started

    stats = {key.decode(): float(value) for key, value in broker.hgetall(counters).items()}
    total_queries = sum(value for key, value in stats.items() if key.endswith(":queries"))
    total_stripe = sum(value for key, value in stats.items() if key.endswith(":stripe"))
    succeeded = Payment.objects.filter(invoice__billing_reason=Invoice.CYCLE, status=Payment.SUCCEEDED)
    assert renewals.count() == args.n and succeeded.count() == args.n, "every subscription renewed once"
    assert succeeded.values("invoice").distinct().count() == args.n, "one successful charge per invoice"

    renewals_per_second = args.n / paid_at
    stripe_per_second = total_stripe / paid_at
    print()
    print(
        f"gateway                      {args.gateway}"
        + (f" ({args.stub_latency_ms:g} ms per call)" if args.gateway == "stub" else "")
    )
    print(f"workers                      {args.workers} x concurrency {args.concurrency}")
    print(f"subscriptions renewed        {args.n}")
    print(f"all paid after               {paid_at:.1f} s")
    print(f"all tasks done after         {drained_at:.1f} s (receipts included)")
    print(f"renewals per second          {renewals_per_second:.1f}")
    print(f"SQL queries per renewal      {total_queries / args.n:.1f} (all tasks: sweep, renewal, receipt)")
    for name in ("sweep", "process_subscription", "send_notice", "recover_payment"):
        if f"{name}:tasks" in stats:
            count = stats[f"{name}:tasks"]
            print(
                f"  {name:<26} {count:>7.0f} tasks, {stats[f'{name}:queries'] / count:5.1f} queries and"
                f" {stats[f'{name}:seconds'] / count * 1000:7.1f} ms each"
            )
    print(f"Stripe requests per renewal  {total_stripe / args.n:.2f}")
    print(f"Stripe requests per second   {stripe_per_second:.1f}")
    print(f"rate limit                   {args.rate:g} requests/s")
    print(f"ratio to the rate limit      {stripe_per_second / args.rate:.2f}")
    broker.delete(counters, queue)


if __name__ == "__main__":
    main()
