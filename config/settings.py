"""Alongside settings: one module, every deployment value read from the environment.

ALONGSIDE_ENV=production makes the deployment values required and turns on the
HTTPS-only hardening; anything else is a developer machine with embedded defaults
(SQLite, the in-process channel layer, a filesystem Celery broker).
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ALONGSIDE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str | None = None, *, required_in_production: bool = False) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    if required_in_production and PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when ALONGSIDE_ENV=production")
    return default if default is not None else ""


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    if not value:
        return default
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        # Set but empty (",", " "): a typo, not a wish for the default or for nothing.
        raise ImproperlyConfigured(f"{name} must be a comma-separated list, not {value!r}")
    return items


ENVIRONMENT = os.environ.get("ALONGSIDE_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("ALONGSIDE_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"

SECRET_KEY = env_str(
    "SECRET_KEY", "dev-only-insecure-key-never-use-in-production-0123456789", required_in_production=True
)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when ALONGSIDE_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000", required_in_production=True).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    "accounts",
    "circles",
    "reflections",
    "insights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into our generic page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "accounts.context_processors.capabilities",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env_str("DATABASE_URL", required_in_production=True)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # An unreachable server must fail a request (and /healthz/) in seconds, not hang it.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        # Parameters bound by the server, so that a pooled connection can keep prepared
        # statements (below). On in every process, so the test suite runs the queries this way.
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        # Under ASGI Django cannot keep a connection between requests, so without a pool every
        # request opens a new one. Set for the web process only: forked Celery workers must not
        # inherit a pool.
        if DB_POOL_MAX_SIZE := env_int("DB_POOL_MAX_SIZE", 0):
            if DATABASES["default"]["CONN_MAX_AGE"]:
                raise ImproperlyConfigured("Use DB_POOL_MAX_SIZE or DB_CONN_MAX_AGE, not both")
            DATABASES["default"]["OPTIONS"]["pool"] = {
                "min_size": 1,
                "max_size": DB_POOL_MAX_SIZE,
                "timeout": 10,
            }
            # A query run a second time on a pooled connection skips Postgres's planning, which
            # costs more than executing most of our page queries (about 1 ms of the home page's
            # upcoming list against 0.3 ms of execution). Only pooled connections live long
            # enough to profit; PgBouncer in transaction mode would need this off.
            DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2
else:
    DATABASES = {
        "default": {
            "ENGINE": "config.sqlite",  # Django's, keeping connections (config/sqlite/base.py)
            "NAME": VAR_DIR / "alongside.sqlite3",
            # The web server, the worker and beat share one file: WAL and IMMEDIATE
            # transactions keep them from tripping over each other's locks.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", required_in_production=True)
if REDIS_URL:
    # Redis pub/sub: a group_send is one PUBLISH, and each process gets it once and hands it to
    # its own sockets. channels_redis.core pushed one list entry per member and then paid one
    # Redis receive per socket (bench_live: 3x the room saturation with pub/sub). A message sent
    # while a process is disconnected is lost either way; the live protocol's seq, sync and pong
    # repair that (docs/live-protocol.md).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "alongside")},
        }
    }
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # A broker that needs no server: messages are files under var/broker. The exchange tables
    # too: kombu's default for them is ./control, in whatever directory the process runs.
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Reminders: a sweeper claim older than the lease is taken to belong to a dead worker and retried.
REMINDER_LEASE_SECONDS = env_int("REMINDER_LEASE_SECONDS", 120)
REMINDER_SWEEP_SECONDS = env_int("REMINDER_SWEEP_SECONDS", 30)

# The beat schedule is code. django-celery-beat's DatabaseScheduler copies each entry into its
# tables when beat starts, where operators can pause one or change its timing in the admin (a
# timing changed there is set back to this one at the next beat start; a paused entry stays paused).
CELERY_BEAT_SCHEDULE = {
    # Every hour: plan each open circle's sessions for the coming 12 weeks. Running it twice
    # creates nothing twice (one session per circle and date), so a missed or doubled beat is harmless.
    "sessions-materialise": {"task": "circles.tasks.sessions_materialise", "schedule": 60 * 60},
    # Every 30 seconds: send the session reminders and notices that are due. Two beats running at
    # once are harmless: sweepers claim disjoint rows.
    "reminders-sweep": {"task": "circles.tasks.reminders_sweep", "schedule": REMINDER_SWEEP_SECONDS},
    # Every hour: re-plan every circle's reminders, so the outbox converges even if a change
    # somewhere forgot to plan them, and facilitators hear of turns as they come into view.
    "reminders-replan": {"task": "circles.tasks.reminders_replan", "schedule": 60 * 60},
    # Every Monday at 07:00 UTC: the weekly digest, for the people who asked for one.
    "digest-weekly": {
        "task": "circles.tasks.digests_send",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
    },
    # Every 30 seconds: drop live-room connections a dead server left behind, and end live sessions
    # past their scheduled end plus grace. Each room is locked while it is touched, so overlaps are safe.
    "live-rooms-sweep": {"task": "circles.tasks.live_rooms_sweep", "schedule": 30},
    # Every hour: blank session chat older than the organisation keeps it (chat_retention_days > 0;
    # with 0 it went when the session ended).
    "live-chat-purge": {"task": "circles.tasks.live_chat_purge", "schedule": 60 * 60},
    # Every night at 03:30 UTC: delete reflection threads older than each organisation keeps them
    # (its reflection retention days). Deleting what is already gone does nothing, so reruns are safe.
    "reflections-retention": {
        "task": "reflections.tasks.reflections_retention_purge",
        "schedule": crontab(minute=30, hour=3),
    },
    # Every night at 02:30 UTC: recompute the managers' insights for the twelve months they show,
    # so people who changed team count with their new team. It rewrites whole months: reruns are safe.
    "insights-rollups-nightly": {
        "task": "insights.tasks.rollups_refresh_nightly",
        "schedule": crontab(minute=30, hour=2),
    },
}

# --- Accounts and sign-in ---------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.UserBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 14)

# Session idle timeout: use pushes the expiry forward (config.middleware.IdleSessionMiddleware,
# at most once a SESSION_REFRESH_SECONDS), so only idleness ends a session.
SESSION_ENGINE = "accounts.sessions"  # Django's database sessions, read without the ORM
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 120) * 60
SESSION_REFRESH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = False

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failures for one email from one
# address, sign-in is refused for AXES_COOLOFF_TIME with the same generic message.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0) or None

# --- Email ---------------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Alongside <alongside@localhost>")

# --- Internationalisation and time ---------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "/static/"
# Development serves straight from the finders; production serves what collectstatic gathered.
STATIC_ROOT = env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")) if PRODUCTION else None
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security headers -------------------------------------------------------------------------

# No inline script or style anywhere: templates load ES modules and stylesheets from /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload-eligible by default (check --deploy asks for it); the domain only joins the browsers'
    # list if its owner submits it at hstspreload.org. Set false for a domain that must keep plain HTTP.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
