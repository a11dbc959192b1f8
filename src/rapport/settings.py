"""Django settings for Rapport, configured from the environment (O — configuration).

Everything that differs between machines comes from environment variables:
``DATABASE_URL``, ``SECRET_KEY``, ``RAPPORT_VAR_DIR``, ``RAPPORT_DEBUG``, ``ALLOWED_HOSTS``,
``RAPPORT_DEFAULT_REGION``, and the security knobs (S4/S6/S7) ``RAPPORT_SECURE_COOKIES``,
``RAPPORT_SESSION_AGE``, ``RAPPORT_SESSION_IDLE``, ``RAPPORT_LOCKOUT_FAILURES``,
``RAPPORT_LOCKOUT_MINUTES``, ``RAPPORT_TRUSTED_PROXIES``, ``RAPPORT_ENCRYPTION_KEYS``,
``RAPPORT_RATE_TOKEN``, ``RAPPORT_RATE_IP``, and the database and server knobs (A1)
``RAPPORT_CONN_MAX_AGE``, ``RAPPORT_PG_PREPARE``. Nothing secret is committed: without
``SECRET_KEY`` a key is generated once into ``var/secret_key`` and reused; encryption keys
likewise go to ``var/keys.json`` (see docs/security.md).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent
VAR_DIR = Path(os.environ.get("RAPPORT_VAR_DIR", PROJECT_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_from_var(filename: str, nbytes: int = 50) -> str:
    """Read a generated secret from var/, creating it (mode 600) the first time."""
    path = VAR_DIR / filename
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


SECRET_KEY = os.environ.get("SECRET_KEY") or _secret_from_var("secret_key")
DEBUG = _env_bool("RAPPORT_DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_tasks",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "rapport.core",
    "rapport.access",
    "rapport.people",
    "rapport.privacy",
    "rapport.identity",
    "rapport.imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rapport.core.middleware.RequestIdMiddleware",
    # A1/S7: API calls signed in by token skip the session, its user, the second-factor wrapper
    # and messages (the core.api.middleware classes), and their JSON gets a fixed strict CSP
    # (decision 0017); for every other request these are Django's, django-otp's and django-csp's.
    "rapport.core.api.middleware.TokenSignInMiddleware",
    "rapport.core.api.middleware.CSPMiddleware",
    "rapport.core.api.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "rapport.core.api.middleware.AuthenticationMiddleware",
    "rapport.core.api.middleware.OTPMiddleware",
    # S4: allowed IP ranges, the MFA step, idle sessions — on every request after sign-in.
    "rapport.access.middleware.AccessPolicyMiddleware",
    "rapport.core.api.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes turns a locked-out sign-in into the lock-out page; it must come last.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "rapport.urls"
WSGI_APPLICATION = "rapport.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'rapport.sqlite3'}"),
        conn_max_age=int(os.environ.get("RAPPORT_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE transactions take the
    # write lock up front so concurrent writers wait (busy timeout) instead of failing.
    # RAPPORT_SQLITE_WAL_AUTOCHECKPOINT: WAL pages after which a commit checkpoints (SQLite's
    # default, 1000, unless set; docs/performance/access.md round 5 measures where they fall).
    _wal_pages = int(os.environ.get("RAPPORT_SQLITE_WAL_AUTOCHECKPOINT", "1000"))
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                        f"PRAGMA wal_autocheckpoint={_wal_pages};",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("RAPPORT_TEST_SQLITE_NAME") or None}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _env_bool("RAPPORT_PG_PREPARE", True):
    # A1: the API's fixed hot queries (rapport.core.api.prepared) run as server-side prepared
    # statements; every other query keeps Django's client-side binding, which never prepares.
    # Set RAPPORT_PG_PREPARE=off behind a transaction-pooling PgBouncer.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "access.User"
# Lock-out first (django-axes), then password + the IP ranges of the user's role (S4).
AUTHENTICATION_BACKENDS = [
    "rapport.access.backends.LockoutBackend",
    "rapport.access.backends.StaffBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("RAPPORT_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The shell's own assets (app.css, app.js, vendored htmx) live in the package, not in an app.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"

# S4 — sessions: absolute lifetime, idle timeout (AccessPolicyMiddleware), secure cookies.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("RAPPORT_SESSION_AGE", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
RAPPORT_SESSION_IDLE = int(os.environ.get("RAPPORT_SESSION_IDLE", str(60 * 60)))
SESSION_COOKIE_SECURE = _env_bool("RAPPORT_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if SESSION_COOKIE_SECURE:
    # Served over HTTPS: tell browsers to stay on it.
    SECURE_HSTS_SECONDS = int(os.environ.get("RAPPORT_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
RAPPORT_TRUSTED_PROXIES = [p for p in os.environ.get("RAPPORT_TRUSTED_PROXIES", "").split(",") if p.strip()]
if RAPPORT_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# S4 — CSP: no inline scripts or styles anywhere in the staff UI (htmx needs 'self' only).
# The API docs pages (Swagger/ReDoc from a CDN) get their own wider policy from the
# access middleware; they show the schema, never personal data.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# S4 — lock-out after repeated failures, per username and address (django-axes).
AXES_FAILURE_LIMIT = int(os.environ.get("RAPPORT_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("RAPPORT_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "access/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "rapport.access.network.client_ip"
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# S4 — MFA (django-otp): TOTP apps plus single-use recovery codes.
OTP_TOTP_ISSUER = os.environ.get("RAPPORT_MFA_ISSUER", "Rapport")
RAPPORT_RECOVERY_CODES = 10
# S5 — a break-glass reason opens a restricted record for this long.
RAPPORT_BREAK_GLASS_MINUTES = int(os.environ.get("RAPPORT_BREAK_GLASS_MINUTES", "60"))
# S8 — the largest attachment accepted.
RAPPORT_MAX_ATTACHMENT = int(os.environ.get("RAPPORT_MAX_ATTACHMENT", str(10 * 1024 * 1024)))

# Request bodies larger than this are refused with 413 (A1).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("RAPPORT_MAX_BODY", str(2 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # S7: token sign-in (its lookup is one prepared statement, decision 0014).
        "rapport.access.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # S1/S7: signed in, token scope covers the method, role allows the view's object type.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "rapport.access.api.permissions.TokenScopePermission",
        "rapport.access.api.permissions.RolePermission",
    ],
    # S7: per token and per address; counters in the database so every process shares them.
    "DEFAULT_THROTTLE_CLASSES": [
        "rapport.access.api.throttling.TokenRateThrottle",
        "rapport.access.api.throttling.AddressRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": os.environ.get("RAPPORT_RATE_TOKEN", "1200/min"),
        "address": os.environ.get("RAPPORT_RATE_IP", "3000/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "rapport.core.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rapport.core.api.errors.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rapport.core.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Rapport API",
    "DESCRIPTION": "Privacy-first CRM. Errors are RFC 9457 problem details; writes accept If-Match and Idempotency-Key.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

TASKS = {
    "default": {
        "BACKEND": os.environ.get("RAPPORT_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# Phone numbers typed without a country code are read in this region (I1).
RAPPORT_DEFAULT_REGION = os.environ.get("RAPPORT_DEFAULT_REGION", "GB")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "rapport.core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("RAPPORT_LOG_LEVEL", "WARNING")},
    "loggers": {"rapport": {"level": os.environ.get("RAPPORT_LOG_LEVEL", "INFO")}},
}

# Static files are served by WhiteNoise from the package itself (no collectstatic needed to run).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
