"""Fixtures shared by every test: localstripe, a real Celery worker, demo-like data.

On CI (CI=true) PostgreSQL, Redis and localstripe must be there: tests that need them fail
instead of skipping.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent
ON_CI = os.environ.get("CI", "").lower() == "true"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Playwright's sync API runs an event loop in the test thread; Django must allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def need(condition: bool, what: str) -> None:
    """Skip when a service is missing on a developer machine; fail on CI."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"{what} is required on CI (CI=true) but is not available.")
    pytest.skip(f"{what} is not available here.")


def pytest_collection_modifyitems(items):
    """The long tests first: `make test` runs the suite in parallel processes (pytest-xdist), and
    one started last would keep the run going alone after every other test is done."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def _login_throttling_off(settings):
    """django-axes needs a request to authenticate, which `client.login()` does not pass; tests
    of the lockout itself use the `login_throttling` fixture."""
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _billing_page_cache_checked(settings):
    """Every cached billing page served is drawn again and compared (subscriptions/page_cache.py)."""
    settings.BILLING_PAGE_CACHE_CHECK = True


@pytest.fixture
def login_throttling(settings):
    settings.AXES_ENABLED = True


class FakeStripe:
    """The localstripe server of this test session."""

    def __init__(self, url: str):
        self.url = url

    def wipe(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=10).raise_for_status()
        requests.delete(f"{self.url}/_config/webhooks", timeout=10).raise_for_status()

    def register_webhook(self, url: str, secret: str, name: str = "portal") -> None:
        """Have localstripe send its events (payment_intent.*) to `url`, signed with `secret`."""
        response = requests.post(f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=10)
        response.raise_for_status()

    def payment_intents(self) -> list[dict]:
        response = requests.get(
            f"{self.url}/v1/payment_intents",
            params={"limit": 100000},
            auth=(settings.STRIPE_SECRET_KEY, ""),
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["data"]

    def succeeded_payment_intents(self) -> list[dict]:
        return [intent for intent in self.payment_intents() if intent["status"] == "succeeded"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many users: the real hasher's iterations cost most of a second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def localstripe_server():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "localstripe_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
    except RuntimeError as error:
        process.kill()
        pytest.fail(f"localstripe did not start: {error}")
    url = f"http://127.0.0.1:{port}"
    previous = settings.LOCALSTRIPE_URL
    settings.LOCALSTRIPE_URL = url
    yield FakeStripe(url)
    settings.LOCALSTRIPE_URL = previous
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def stripe_fake(localstripe_server):
    """A wiped localstripe for this test (the store is shared by the session)."""
    localstripe_server.wipe()
    return localstripe_server


@pytest.fixture(autouse=True, scope="session")
def _celery_tasks_run_inline():
    """Tasks queued by the code under test run at once in the test process (a worker's tests turn
    this off), so nothing is ever left on a broker another worker could read."""
    from billing_portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """A cheap hasher for test users (the default PBKDF2 costs about half a second per user)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def uses_postgres():
    need(settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql", "PostgreSQL (DATABASE_URL)")


@pytest.fixture
def celery_worker_process(transactional_db, localstripe_server):
    """A starter for real Celery workers (separate processes) on the test database and broker.

    Each test gets its own queue, so a worker of `make run` on the same broker never steals
    its tasks. Send with `task.apply_async(queue=start.queue)`. `start(env={...})` adds settings
    for that worker; `start.kill(process)` kills a worker and its pool at once (SIGKILL), as a
    crashed machine would.
    """
    from billing_portal.celery import app

    app.conf.task_always_eager = False
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        database_url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    else:
        database_url = f"sqlite:///{database['NAME']}"
    need(bool(settings.REDIS_URL) or not ON_CI, "Redis (REDIS_URL)")
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    log_dir = tempfile.mkdtemp(prefix="celery-test-")
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOCALSTRIPE_URL": localstripe_server.url,
        "CELERY_DEFAULT_QUEUE": queue,
        "DEBUG": "true",
        "PYTHONPATH": str(ROOT),
        "EMAIL_URL": "dummymail://",
        "CONN_MAX_AGE": "60",  # as in production: a worker keeps its connection between tasks
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    workers: list[subprocess.Popen] = []

    def start(concurrency: int = 1, name: str = "w1", env: dict | None = None) -> subprocess.Popen:
        log = open(os.path.join(log_dir, f"{name}.log"), "w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "billing_portal",
                "worker",
                "-n",
                f"{name}-{queue}@%h",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env={**base_env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool dies with it on kill()
        )
        workers.append(process)
        return process

    def kill(process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    start.queue = queue
    start.kill = kill
    start.log = lambda name="w1": open(os.path.join(log_dir, f"{name}.log")).read()
    yield start
    for process in workers:
        if process.poll() is None:
            process.terminate()
    for process in workers:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    app.conf.task_always_eager = True


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (its own browser downloads cannot work here)."""
    need(os.path.exists(CHROMIUM), f"Chromium ({CHROMIUM})")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
        # While it is open, Playwright's sync API marks its event loop as running in this thread
        # (between calls too), and asgiref, which holds Django's connections, then keeps them per
        # contextvars context instead of per thread: the tests after the browser started used
        # connections of their own. Close them while that is so, or they outlive the session and
        # PostgreSQL refuses to drop the test database ("being accessed by other users").
        connections.close_all()


@pytest.fixture
def browser_page(chromium, live_server, localstripe_server, request):
    """A fresh browser tab on the live server (1280 px wide, English); `page.goto("/billing/")` works."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-output/screenshots/ (not committed) to look at.

    JPEG, not PNG: a third faster to encode, which the accessibility walk's hundreds of shots feel.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.jpg"
    page.screenshot(path=str(path), full_page=True, type="jpeg", quality=85)
    return path


def browser_login(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/billing/")
