"""Settings come from the environment only (secrets never live in the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from casemsg.core.files import create_private

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("CASEMSG_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# A random key per data dir when none is given, so a fresh `make run` works without configuration
# while a real deployment sets CASEMSG_SECRET_KEY. The file, like the SQLite database and job queue below,
# is created readable by its owner only (mode 0600; casemsg.core.files).
_key_file = DATA_DIR / "secret_key"
SECRET_KEY = os.environ.get("CASEMSG_SECRET_KEY") or ""
if not SECRET_KEY:
    if not _key_file.exists():
        import secrets

        create_private(_key_file, secrets.token_urlsafe(50).encode())
    SECRET_KEY = _key_file.read_text().strip()

DEBUG = os.environ.get("CASEMSG_DEBUG", "") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("CASEMSG_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
if os.environ.get("PYTEST_VERSION"):
    ALLOWED_HOSTS.append("testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "axes",
    "django_tables2",
    "django_filters",
    "django_htmx",
    # /api/docs serves django-ninja's bundled Swagger UI files (the app's static files), never a CDN.
    "ninja",
    "casemsg.projects",
    "casemsg.cases",
    "casemsg.workers",
    "casemsg.contacts",
    "casemsg.groups",
    "casemsg.gateways",
    "casemsg.gateways.carrier",
    "casemsg.messaging",
    "casemsg.consent",
    "casemsg.surveys",
    "casemsg.inbound",
    "casemsg.scheduling",
    "casemsg.sources",
    # after every area whose hooks they listen to (event webhooks), then health, metrics and doctor
    "casemsg.events",
    "casemsg.ops",
    "casemsg.web",
    "casemsg.commands",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # gunicorn serves no static files; WhiteNoise does, right after security (its documented place).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Provider webhooks counted and timed for /metrics (casemsg_webhook_requests_total, …).
    "casemsg.ops.middleware.webhook_metrics",
    # Under /api/, every error answers in the API's JSON error shape, and a body over the limits is refused
    # from its headers before anything reads it (the webhooks' fast path included, so it comes first).
    "casemsg.api.core.json_errors",
    # A POST to a provider webhook goes straight to its view from here: it needs none of what follows
    # (casemsg.api.webhooks.fast_path; the hottest path, docs/scale-out.md).
    "casemsg.api.webhooks.fast_path",
    # A Content-Security-Policy on every answer: scripts and styles from casemsg's own files only.
    "casemsg.web.csp.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: pages that update in place answer htmx requests with a fragment.
    "django_htmx.middleware.HtmxMiddleware",
    # Every page under /projects/<slug>/ checks the user's role in that project (casemsg.web.access.RULES).
    "casemsg.web.access.ProjectAccessMiddleware",
    # Who acts (a user, an API key): the consent ledger records it.
    "casemsg.core.actor.ActorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Failed logins are throttled (django-axes); its documented place is last.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Every password a person sets (an invitation, a reset link, a change, `casemsg users add`): Django's checks.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Five wrong passwords for one user from one address lock that pair out for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("CASEMSG_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("CASEMSG_LOGIN_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# A locked-out login gets the styled page (status 429), not a bare text answer.
AXES_LOCKOUT_TEMPLATE = "web/locked.html"

ROOT_URLCONF = "casemsg.urls"
WSGI_APPLICATION = "casemsg.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "casemsg.web.access.role_context",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("CASEMSG_DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    # Created empty, mode 0600, before SQLite opens it (SQLite gives its -wal and -shm files the same mode).
    create_private(DATA_DIR / "casemsg.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "casemsg.sqlite3"),  # created above
            "OPTIONS": {
                # WAL lets the web server read while the worker writes; IMMEDIATE transactions take the
                # write lock up front so two writers queue on the busy timeout instead of deadlocking.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # one test database per test run, so two runs at once (developers, helpers) never share a file
            "TEST": {"NAME": str(DATA_DIR / f"test-casemsg-{os.getpid()}.sqlite3")},
            # Keep connections between requests: opening SQLite (and its PRAGMAs) on every webhook cost
            # more CPU than handling it.
            "CONN_MAX_AGE": 60,
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at every start when it is missing
# Serve the apps' static files straight from their directories (found once at start-up), so `casemsg
# serve` and a bare gunicorn need no collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- TLS behind a proxy, cookies, HSTS (docs/configuration.md, docs/security.md "Deployment hardening") --
# casemsg speaks plain HTTP; TLS ends at a reverse proxy. CASEMSG_BEHIND_TLS_PROXY=1 trusts the proxy's
# X-Forwarded-Proto header (set it only when the proxy sets that header itself, replacing any the client sent),
# and makes the session and CSRF cookies Secure. CASEMSG_SSL_REDIRECT=1 redirects plain HTTP to HTTPS (the
# health, readiness and metrics probes excepted); CASEMSG_HSTS_SECONDS tells browsers to use HTTPS only.
CASEMSG_BEHIND_TLS_PROXY = os.environ.get("CASEMSG_BEHIND_TLS_PROXY", "0") == "1"
if CASEMSG_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = os.environ.get("CASEMSG_SSL_REDIRECT", "0") == "1"
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes inside the network, over HTTP
_secure_cookies = "1" if CASEMSG_BEHIND_TLS_PROXY or SECURE_SSL_REDIRECT else "0"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = os.environ.get("CASEMSG_SECURE_COOKIES", _secure_cookies) == "1"
SECURE_HSTS_SECONDS = int(os.environ.get("CASEMSG_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("CASEMSG_HSTS_INCLUDE_SUBDOMAINS", "0") == "1"
SECURE_HSTS_PRELOAD = os.environ.get("CASEMSG_HSTS_PRELOAD", "0") == "1"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- request bodies (docs/security.md, "Bounded work for every upload and body") ---------------------
# A body other than a file upload: at most 2.5 MB (Django's default, stated here); larger: 413 under /api/.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# A file upload (multipart/form-data) under /api/: at most this many bytes, refused from its Content-Length.
# The largest file the API takes is an XLSForm (5 MB); uploaded files over 2.5 MB wait on disk, not in memory.
CASEMSG_MAX_UPLOAD_BYTES = int(os.environ.get("CASEMSG_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# A refused form (stale CSRF token) gets the styled 403 page with a sentence saying what to do.
CSRF_FAILURE_VIEW = "casemsg.web.views.common.csrf_failure"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# --- jobs (Huey) ---------------------------------------------------------------------------------
QUEUE_URL = os.environ.get("CASEMSG_QUEUE_URL", "")
# Tests deliver in-line (they call the pipeline like a worker would); CASEMSG_QUEUE_IMMEDIATE=0 gives
# them the real queue, as the multi-process tests need.
QUEUE_IMMEDIATE = os.environ.get("CASEMSG_QUEUE_IMMEDIATE", "1" if os.environ.get("PYTEST_VERSION") else "0") == "1"
if QUEUE_URL.startswith("redis://"):
    HUEY = {
        "huey_class": "huey.PriorityRedisHuey",
        "name": "casemsg",
        "url": QUEUE_URL,
        "immediate": QUEUE_IMMEDIATE,
        "results": False,  # jobs report nothing back: the database holds every outcome
        "consumer": {"workers": 4, "worker_type": "thread"},
    }
else:
    create_private(DATA_DIR / "queue.sqlite3")  # mode 0600, before Huey's SQLite opens it
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "casemsg",
        "filename": str(DATA_DIR / "queue.sqlite3"),
        "immediate": QUEUE_IMMEDIATE,
        "results": False,  # jobs report nothing back: the database holds every outcome
        "consumer": {"workers": 4, "worker_type": "thread"},
    }

# --- messaging ------------------------------------------------------------------------------------
EMAIL_URL = os.environ.get("CASEMSG_EMAIL_URL", "")
if EMAIL_URL:
    from urllib.parse import unquote, urlparse

    _u = urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _u.hostname or "127.0.0.1"
    EMAIL_PORT = _u.port or 25
    EMAIL_HOST_USER = unquote(_u.username or "")
    EMAIL_HOST_PASSWORD = unquote(_u.password or "")
    EMAIL_USE_TLS = _u.scheme == "smtp+tls"
    EMAIL_USE_SSL = _u.scheme == "smtps"
    EMAIL_TIMEOUT = 10
else:
    # No SMTP server configured: email goes to the console, which keeps `make run` self-contained.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("CASEMSG_EMAIL_FROM", "casemsg@localhost")

CASEMSG_STALE_AFTER_DAYS = int(os.environ.get("CASEMSG_STALE_AFTER_DAYS", "7"))
CASEMSG_MAX_ATTEMPTS = int(os.environ.get("CASEMSG_MAX_ATTEMPTS", "3"))
CASEMSG_SENDING_TIMEOUT_SECONDS = int(os.environ.get("CASEMSG_SENDING_TIMEOUT_SECONDS", "300"))
CASEMSG_RETRY_BASE_SECONDS = float(os.environ.get("CASEMSG_RETRY_BASE_SECONDS", "30"))
CASEMSG_LOOP_LIMIT = int(os.environ.get("CASEMSG_LOOP_LIMIT", "20"))
CASEMSG_LOOP_WINDOW_SECONDS = int(os.environ.get("CASEMSG_LOOP_WINDOW_SECONDS", "3600"))
# How often an idle worker looks at the embedded (SQLite) queue; Redis queues use blocking pops instead.
# Huey's default backs off to 10 s, which made a reply wait seconds after a quiet spell.
CASEMSG_QUEUE_POLL_SECONDS = float(os.environ.get("CASEMSG_QUEUE_POLL_SECONDS", "0.1"))

# --- trust boundaries ------------------------------------------------------------------------------
# The sandbox gateway is a test tool: a production installation switches it off (CASEMSG_SANDBOX=0).
CASEMSG_SANDBOX = os.environ.get("CASEMSG_SANDBOX", "1") == "1"
# URLs a project configures (gateways, event webhooks) may not reach loopback, private, link-local or
# metadata addresses unless the installation allows it (tests and benchmarks talk to 127.0.0.1).
CASEMSG_GATEWAY_ALLOW_PRIVATE = (
    os.environ.get("CASEMSG_GATEWAY_ALLOW_PRIVATE", "1" if os.environ.get("PYTEST_VERSION") else "0") == "1"
)

# --- operations (docs/operations.md, docs/webhooks.md) ---------------------------------------------
# GET /metrics answers only `Authorization: Bearer <this>`; empty: /metrics is off (403).
CASEMSG_METRICS_TOKEN = os.environ.get("CASEMSG_METRICS_TOKEN", "")
# /readyz fails when no worker wrote its heartbeat within this many seconds.
CASEMSG_WORKER_STALE_SECONDS = float(os.environ.get("CASEMSG_WORKER_STALE_SECONDS", "60"))
# Event webhooks: posts at once per endpoint, seconds per post, first retry delay (doubled each time),
# and how long after the event casemsg keeps trying.
CASEMSG_WEBHOOK_CONCURRENCY = int(os.environ.get("CASEMSG_WEBHOOK_CONCURRENCY", "32"))
CASEMSG_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("CASEMSG_WEBHOOK_TIMEOUT_SECONDS", "10"))
CASEMSG_WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("CASEMSG_WEBHOOK_RETRY_BASE_SECONDS", "10"))
CASEMSG_WEBHOOK_RETRY_HOURS = float(os.environ.get("CASEMSG_WEBHOOK_RETRY_HOURS", "24"))

# `CASEMSG_LOG_FORMAT=json`: one JSON object per line (casemsg.core.logs). Phone numbers are masked at INFO
# and above in either format.
CASEMSG_LOG_FORMAT = os.environ.get("CASEMSG_LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_numbers": {"()": "casemsg.core.logs.MaskNumbersFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "casemsg.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_numbers"],
            "formatter": "json" if CASEMSG_LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("CASEMSG_LOG_LEVEL", "WARNING")},
}
