"""The one settings file: every value comes from the environment (see .env.example).

With no environment at all it runs for development: SQLite in var/, localstripe on loopback,
an embedded (filesystem) Celery broker and emails printed to the console. Production sets
DEBUG=false and must then give SECRET_KEY, ALLOWED_HOSTS and the Stripe keys.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Runtime files of development: the SQLite database, the embedded broker, localstripe's store.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)


def _required_in_production(name: str, dev_default: str) -> str:
    """A secret that development may default but production must set."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"Set the {name} environment variable (required when DEBUG=false).")


SECRET_KEY = _required_in_production("SECRET_KEY", "dev-only-insecure-key-not-for-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The seller as every new invoice names it (name, address, VAT number: one line each, "\n" between
# them). Copied onto each invoice when it is made, so a later change never rewrites old ones. The
# deploy check warns when it is empty in production; development invoices name a demo company.
INVOICE_ISSUER = env.str(
    "INVOICE_ISSUER",
    default="Demo Billing B.V.\nKeizersgracht 100\n1015 AA Amsterdam, Netherlands\nVAT NL000000000B01" if DEBUG else "",
    multiline=True,
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "accounts",
    "subscriptions",
    "retention",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.current_account",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing_portal.urls"
WSGI_APPLICATION = "billing_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Seconds a process keeps its database connection between requests or tasks (0: a new one each
# time). Workers and gunicorn in production: 60. Checked before reuse, so a dropped one is replaced.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Login throttling: after 5 failures the email address, and separately the IP address, are
# locked out for 15 minutes (docs/rules.md).
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)
AXES_VERBOSE = False
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "subscriptions:billing"
LOGOUT_REDIRECT_URL = "accounts:login"
# Card changes and the final cancellation step ask for the password again after this long.
ACCOUNTS_REAUTH_MINUTES = env.int("ACCOUNTS_REAUTH_MINUTES", default=15)
AUTH_PASSWORD_VALIDATORS = [
    # Our User has an email and a name (no username, first or last name) to compare passwords with.
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ["email", "name"]},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nl", _("Dutch")), ("fr", _("French")), ("it", _("Italian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Italian dates as Italian writes them ("1 aprile 2026"): billing_portal/formats/.
FORMAT_MODULE_PATH = ["billing_portal.formats"]
# Pages: the language the user chose with the switcher (a cookie kept for a year), else the
# browser's Accept-Language, else English (LocaleMiddleware). Emails: the account's language.
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns at every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Billing <billing@example.com>")

# --- Redis, Celery -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# The test suite runs in parallel processes (pytest-xdist, `make test`): each takes its own Redis
# database (gw0 → 1, gw1 → 2, ...), so that caches, locks and rate limits of one never meet
# another's, as each has its own PostgreSQL database already. Its Celery workers inherit the
# variable and so land on the same one.
_TEST_PROCESS = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _TEST_PROCESS.startswith("gw"):
    REDIS_URL = urlsplit(REDIS_URL)._replace(path=f"/{int(_TEST_PROCESS[2:]) + 1}").geturl()
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CACHES = {"default": {"BACKEND": "billing_portal.lib.redis_cache.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions are read on every page: from Redis, written through to the database, so a Redis
    # restart logs nobody out (bench/pages.py, docs/benchmarks.md). Only with a cache all
    # processes share: a per-process cache would keep serving a session another process ended.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # kombu's filesystem transport: a broker with no server, for `make run` on a bare machine.
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Drawn billing pages (subscriptions/page_cache.py), in each process's own memory: their key names
# the exact state of every row they show, so no process can serve another's out-of-date copy,
# and a hit costs no round trip to Redis.
CACHES["pages"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "billing-pages",
    "OPTIONS": {"MAX_ENTRIES": 2000},
}
# Several deployments (or test runs) can share one broker by using their own queue.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="celery")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# At-least-once delivery (docs/rules.md, "Jobs and resilience"): a task is acknowledged after it
# ran, and one whose worker process died is given back to the broker; every task is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
BILLING_SWEEP_SECONDS = env.int("BILLING_SWEEP_SECONDS", default=300)
# Hour (UTC) of the daily reminders run: trial ending, annual renewal, card expiring, pause ending.
BILLING_REMINDERS_HOUR_UTC = env.int("BILLING_REMINDERS_HOUR_UTC", default=8)
# Redis redelivers a task nobody acknowledged after this many seconds, and a task with an ETA or
# countdown longer than it would be delivered again and again: no task waits longer than this
# (the longest is a webhook retry of a minute), every task ends well within it (time limit
# below), and the beat sweep, not a long countdown, is what retries work later.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}

# --- Stripe ------------------------------------------------------------------------------------
# Without a real secret key the SDK talks to localstripe on loopback (see README).
STRIPE_SECRET_KEY = _required_in_production("STRIPE_SECRET_KEY", "sk_test_localstripe")
STRIPE_PUBLISHABLE_KEY = _required_in_production("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe")
STRIPE_WEBHOOK_SECRET = _required_in_production("STRIPE_WEBHOOK_SECRET", "whsec_localstripe")
LOCALSTRIPE_URL = env.str(
    "LOCALSTRIPE_URL",
    default="http://127.0.0.1:8420" if STRIPE_SECRET_KEY == "sk_test_localstripe" else "",
).rstrip("/")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# One budget of requests per second toward Stripe, shared by every worker and web process through
# a Redis token bucket (a per-process bucket without Redis). Stripe allows 100/s live and 25/s in
# test mode; the defaults leave headroom for the dashboard and other clients of the same account.
STRIPE_MAX_REQUESTS_PER_SECOND = env.float(
    "STRIPE_MAX_REQUESTS_PER_SECOND", default=80.0 if STRIPE_SECRET_KEY.startswith("sk_live_") else 20.0
)
# How often a request Stripe answered with 429 (rate limited) is tried again, with backoff.
STRIPE_RATE_LIMIT_RETRIES = env.int("STRIPE_RATE_LIMIT_RETRIES", default=3)
# Benchmarks only: "stub" answers every Stripe call in-process after STRIPE_STUB_LATENCY_MS,
# still through the rate limit, so bench/renewals.py can measure the portal without localstripe.
# Refused with a live key: a stub must never stand in for real charges.
STRIPE_GATEWAY = env.str("STRIPE_GATEWAY", default="stripe")
STRIPE_STUB_LATENCY_MS = env.float("STRIPE_STUB_LATENCY_MS", default=50.0)
if STRIPE_GATEWAY not in ("stripe", "stub") or (STRIPE_GATEWAY == "stub" and STRIPE_SECRET_KEY.startswith("sk_live_")):
    raise ImproperlyConfigured("STRIPE_GATEWAY must be 'stripe' ('stub' is for benchmarks, never with a live key).")

# Benchmarks only: mounts /bench/ceiling/ (billing_portal/ceiling.py), the trivial logged-in page
# bench/pages.py compares the real pages with. Off everywhere else.
BENCH_CEILING_VIEW = env.bool("BENCH_CEILING_VIEW", default=False)

# --- Billing rules -----------------------------------------------------------------------------
# What happens to a proration credit larger than the new price: "forfeit" (seed 004) or "credit".
BILLING_PRORATION_EXCESS = env.str("BILLING_PRORATION_EXCESS", default="forfeit")
if BILLING_PRORATION_EXCESS not in ("forfeit", "credit"):
    raise ImproperlyConfigured("BILLING_PRORATION_EXCESS must be 'forfeit' or 'credit'.")
BILLING_DUNNING_RETRY_DAYS = [int(d) for d in env.list("BILLING_DUNNING_RETRY_DAYS", default=["1", "3", "5", "7"])]
BILLING_DUNNING_FINAL_ACTION = env.str("BILLING_DUNNING_FINAL_ACTION", default="cancel")
if BILLING_DUNNING_FINAL_ACTION not in ("cancel", "pause"):
    raise ImproperlyConfigured("BILLING_DUNNING_FINAL_ACTION must be 'cancel' or 'pause'.")
# Tests only: every cached billing summary served is drawn again and must be the same
# (subscriptions/page_cache.py), so a table the summary shows but the cache does not watch fails.
BILLING_PAGE_CACHE_CHECK = env.bool("BILLING_PAGE_CACHE_CHECK", default=False)
# How long a worker may hold a subscription while it charges; a crashed worker's claim expires.
BILLING_CLAIM_SECONDS = env.int("BILLING_CLAIM_SECONDS", default=300)
# A task is stopped before its claim could expire under it (the soft limit raises inside the
# task, the hard one ends the process); both stay far below the broker's visibility timeout.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=BILLING_CLAIM_SECONDS)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(30, CELERY_TASK_TIME_LIMIT // 10)
for _name, _seconds in (
    ("BILLING_SWEEP_SECONDS", BILLING_SWEEP_SECONDS),
    ("BILLING_CLAIM_SECONDS", BILLING_CLAIM_SECONDS),
    ("CELERY_TASK_TIME_LIMIT", CELERY_TASK_TIME_LIMIT),
):
    if _seconds >= CELERY_VISIBILITY_TIMEOUT:
        raise ImproperlyConfigured(f"{_name} must be shorter than CELERY_VISIBILITY_TIMEOUT.")

# --- Retention (the cancellation flow) ----------------------------------------------------------
# Where requests for a free 1:1 session with the success team are emailed.
RETENTION_TEAM_EMAIL = env.str("RETENTION_TEAM_EMAIL", default="success@example.com")

# --- Privacy: data export and account deletion (docs/rules.md) ----------------------------------
# Days between asking for the deletion and carrying it out, during which an owner can undo it
# (0: carried out at once).
PRIVACY_DELETION_GRACE_DAYS = env.int("PRIVACY_DELETION_GRACE_DAYS", default=14)
if PRIVACY_DELETION_GRACE_DAYS < 0:
    raise ImproperlyConfigured("PRIVACY_DELETION_GRACE_DAYS must be 0 or more.")
# How long an export's download link (and its file) lasts.
PRIVACY_EXPORT_LINK_DAYS = env.int("PRIVACY_EXPORT_LINK_DAYS", default=7)
if PRIVACY_EXPORT_LINK_DAYS < 1:
    raise ImproperlyConfigured("PRIVACY_EXPORT_LINK_DAYS must be 1 or more.")
# Where export files are written; never under STATIC_ROOT or MEDIA_ROOT (the download view checks
# the link, the owner and the expiry). The worker writes there and the web reads: share it.
PRIVACY_EXPORT_DIR = Path(env.str("PRIVACY_EXPORT_DIR", default=str(VAR_DIR / "exports")))
# How long invoices and payments of a deleted account are kept (tax law: 10 years in the
# Netherlands and France). Shown to customers; no job deletes invoices yet (docs/rules.md).
PRIVACY_INVOICE_RETENTION_YEARS = env.int("PRIVACY_INVOICE_RETENTION_YEARS", default=10)

# --- Signup, email verification, team invitations (the accounts app) -----------------------------
# A verification link works for this many days; an invitation link for this many.
ACCOUNTS_VERIFY_DAYS = env.int("ACCOUNTS_VERIFY_DAYS", default=3)
ACCOUNTS_INVITE_DAYS = env.int("ACCOUNTS_INVITE_DAYS", default=7)
# Resending a verification link: at most one per this many seconds, and this many per day.
ACCOUNTS_VERIFY_RESEND_SECONDS = env.int("ACCOUNTS_VERIFY_RESEND_SECONDS", default=60)
ACCOUNTS_VERIFY_MAX_PER_DAY = env.int("ACCOUNTS_VERIFY_MAX_PER_DAY", default=5)
# The currency of accounts made by self-service signup (and of the public pricing page).
ACCOUNTS_SIGNUP_CURRENCY = "eur"

# --- Production hardening (DEBUG=false) --------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("BEHIND_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Content Security Policy: no inline script anywhere; pages with card entry add Stripe.js
# through subscriptions.decorators.allow_stripe_js.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "stripe": {"level": "WARNING"}},
}
