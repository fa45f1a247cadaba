"""Settings shared by every environment; everything variable comes from the environment."""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Development-only fallbacks. settings.production refuses to start with either of them.
INSECURE_DEFAULT_SECRET_KEY = "dev-insecure-loyalnest-secret-key-do-not-use-in-production"  # noqa: S105
INSECURE_DEFAULT_ENCRYPTION_KEYS = "dev:ZGV2LWluc2VjdXJlLWtleS0zMi1ieXRlcy1sb25nISE="

SECRET_KEY = env("SECRET_KEY", INSECURE_DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
APP_URL = env("APP_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "rules.apps.AutodiscoverRulesConfig",
    "apps.core",
    "apps.shopify",
    "apps.notifications",
    "apps.rfm",
    "apps.multistore",
    "apps.merchant_referrals",
    "apps.gamification",
    "apps.theme_extensions",
    "apps.slack_community",
    "apps.wallet",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestSizeLimitMiddleware",
    # App-proxy requests (/proxy/) leave the stack here: what follows serves browsers.
    "apps.core.middleware.StorefrontRouterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.shopify.middleware.FrameAncestorsMiddleware",
    "apps.core.middleware.AdminScopesMiddleware",
]

# What app-proxy requests pass through after StorefrontRouterMiddleware (apps.core.middleware).
STOREFRONT_MIDDLEWARE: list[str] = []

AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "loyalnest.urls"
WSGI_APPLICATION = "loyalnest.wsgi.application"
ASGI_APPLICATION = "loyalnest.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL when DATABASE_URL is set, SQLite as the zero-setup first-run default.
DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'loyalnest.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Same backend, with a health check that costs no round trip per request (apps/core/db).
    DATABASES["default"]["ENGINE"] = "apps.core.db.postgresql"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server, worker and beat share one file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, streams and the Celery broker. Never the source of truth.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "0.5"))
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "loyalnest",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            # A cache outage degrades to misses; the database answers.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
STREAM_MAXLEN = int(env("STREAM_MAXLEN", "100"))

# --- Celery
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Seconds before a message taken by a worker that vanished (SIGKILL, lost machine) is delivered
# again; longer than the slowest task, or a still-running task is delivered twice (E1).
CELERY_VISIBILITY_TIMEOUT = int(env("CELERY_VISIBILITY_TIMEOUT", "3600"))
# A task attempt handed out more often than this (its worker died or hung each time) is not run
# again: it goes to the Redis list `celery:dead-letter` (loyalnest/tasks.py).
CELERY_MAX_DELIVERIES = int(env("CELERY_MAX_DELIVERIES", "5"))
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "idempotency-records-purge": {
        "task": "apps.core.tasks.idempotency_records_purge_task",
        "schedule": 3600.0,
    },
}
CELERY_BEAT_SCHEDULE["shopify-webhook-inbox-sweep"] = {
    "task": "apps.shopify.webhooks.tasks.webhook_inbox_sweep_task",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["shopify-orders-reconcile"] = {
    "task": "apps.shopify.webhooks.tasks.orders_reconcile_all_task",
    "schedule": float(env("SHOPIFY_RECONCILE_INTERVAL_SECONDS", "900")),
}
CELERY_BEAT_SCHEDULE["shopify-customer-metafields-sweep"] = {
    "task": "apps.shopify.metafields.customer_metafields_sweep_all_task",
    "schedule": float(env("SHOPIFY_METAFIELDS_SWEEP_INTERVAL_SECONDS", "900")),
}
CELERY_BEAT_SCHEDULE["shopify-reward-redemptions-sweep"] = {
    "task": "apps.shopify.tasks.reward_redemption_sweep_task",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["shopify-customer-metafields-verify"] = {
    "task": "apps.shopify.metafields.customer_metafields_sweep_all_task",
    "schedule": 24 * 3600.0,
    "kwargs": {"verify_shopify": True},
}

# --- Auth, sessions, passwords
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- i18n: 22 locales, three right-to-left.
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LANGUAGES = [
    ("en", _("English")),
    ("es", _("Spanish")),
    ("de", _("German")),
    ("ja", _("Japanese")),
    ("fr", _("French")),
    ("pt", _("Portuguese")),
    ("ru", _("Russian")),
    ("it", _("Italian")),
    ("nl", _("Dutch")),
    ("pl", _("Polish")),
    ("tr", _("Turkish")),
    ("fa", _("Persian")),
    ("zh-hans", _("Simplified Chinese")),
    ("vi", _("Vietnamese")),
    ("id", _("Indonesian")),
    ("cs", _("Czech")),
    ("ar", _("Arabic")),
    ("ko", _("Korean")),
    ("uk", _("Ukrainian")),
    ("hu", _("Hungarian")),
    ("sv", _("Swedish")),
    ("he", _("Hebrew")),
]
LANGUAGES_BIDI = ["ar", "he", "fa"]
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files (Chart.js and our own CSS/JS are served by WhiteNoise)
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded and generated files (compliance data exports, encrypted).
MEDIA_ROOT = env("MEDIA_ROOT", str(BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- API
API_MAX_BODY_BYTES = int(env("API_MAX_BODY_BYTES", str(256 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.shopify.auth.SessionTokenAuthentication",
        "apps.shopify.auth.DemoAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.api.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.api.exceptions.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.LoyalNestAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LoyalNest API",
    "DESCRIPTION": "Merchant and storefront API of the LoyalNest loyalty app.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1/api/",
    "AUTHENTICATION_WHITELIST": [
        "apps.shopify.auth.SessionTokenAuthentication",
        "apps.shopify.proxy.AppProxyAuthentication",
    ],
}
IDEMPOTENCY_KEY_TTL_HOURS = int(env("IDEMPOTENCY_KEY_TTL_HOURS", "48"))

# --- Shopify (the edge itself arrives with apps.shopify)
SHOPIFY_API_KEY = env("SHOPIFY_API_KEY", "")
SHOPIFY_API_SECRET = env("SHOPIFY_API_SECRET", "")
# Accepted as well during a client-secret rotation window.
SHOPIFY_API_SECRET_PREVIOUS = env("SHOPIFY_API_SECRET_PREVIOUS", "")
SHOPIFY_API_VERSION = env("SHOPIFY_API_VERSION", "2026-10")
SESSION_TOKEN_LEEWAY_SECONDS = 10
# Only for tests and local development against a fake Shopify: routes shop URLs to this base.
SHOPIFY_API_BASE_URL = env("SHOPIFY_API_BASE_URL", "")
SHOPIFY_CONNECT_TIMEOUT_SECONDS = float(env("SHOPIFY_CONNECT_TIMEOUT_SECONDS", "3"))
SHOPIFY_READ_TIMEOUT_SECONDS = float(env("SHOPIFY_READ_TIMEOUT_SECONDS", "10"))
SHOPIFY_GRAPHQL_MAX_ATTEMPTS = int(env("SHOPIFY_GRAPHQL_MAX_ATTEMPTS", "4"))

# --- Storefront (app proxy) rate limits, "<requests>/<seconds>" (D3). Per shopper, or per IP
# address for anonymous visitors, within a group; and per shop across every proxy endpoint.
PROXY_RATE_LIMITS = {
    "storefront": env("PROXY_RATE_LIMIT_STOREFRONT", "120/60"),
    "redeem": env("PROXY_RATE_LIMIT_REDEEM", "10/60"),
    "referral_lookup": env("PROXY_RATE_LIMIT_REFERRAL_LOOKUP", "20/60"),
}
PROXY_RATE_LIMIT_SHOP = env("PROXY_RATE_LIMIT_SHOP", "6000/60")
# Webhooks (apps.shopify.webhooks): the view stores an inbox row, a Celery task processes it.
SHOPIFY_WEBHOOK_MAX_BODY_BYTES = int(env("SHOPIFY_WEBHOOK_MAX_BODY_BYTES", str(5 * 1024 * 1024)))
# Attempts of a delivery that failed for a reason a retry can fix, before it ends in `failed`.
SHOPIFY_WEBHOOK_MAX_ATTEMPTS = int(env("SHOPIFY_WEBHOOK_MAX_ATTEMPTS", "5"))
# The beat sweep re-enqueues deliveries still `received` after this long (broker was down).
SHOPIFY_WEBHOOK_SWEEP_AFTER_SECONDS = int(env("SHOPIFY_WEBHOOK_SWEEP_AFTER_SECONDS", "120"))
# A drain task takes a shop's waiting deliveries this many at a time (orders set-wise, in one
# transaction), at most DRAIN_MAX_BATCHES batches before it yields to other shops' tasks.
SHOPIFY_WEBHOOK_BATCH_SIZE = int(env("SHOPIFY_WEBHOOK_BATCH_SIZE", "200"))
SHOPIFY_WEBHOOK_DRAIN_MAX_BATCHES = int(env("SHOPIFY_WEBHOOK_DRAIN_MAX_BATCHES", "20"))
# Reward discount codes: valid this many days; Shopify attempts (request + task) before the
# redemption fails and the points go back; pending rows untouched this long are re-queued.
REWARD_CODE_VALID_DAYS = int(env("REWARD_CODE_VALID_DAYS", "90"))
REWARD_REDEMPTION_MAX_ATTEMPTS = int(env("REWARD_REDEMPTION_MAX_ATTEMPTS", "5"))
REWARD_REDEMPTION_SWEEP_AFTER_SECONDS = int(env("REWARD_REDEMPTION_SWEEP_AFTER_SECONDS", "600"))
# Reconciliation reads orders updated since the watermark; the first run looks back this far.
SHOPIFY_RECONCILE_INITIAL_LOOKBACK_HOURS = int(env("SHOPIFY_RECONCILE_INITIAL_LOOKBACK_HOURS", "72"))
SHOPIFY_RECONCILE_MAX_PAGES = int(env("SHOPIFY_RECONCILE_MAX_PAGES", "50"))

# --- Encryption at rest: "keyid:base64key,keyid2:base64key2"; the first key encrypts.
ENCRYPTION_KEYS = env("ENCRYPTION_KEYS", INSECURE_DEFAULT_ENCRYPTION_KEYS)

# --- PostHog: off without a key.
POSTHOG_API_KEY = env("POSTHOG_API_KEY", "")
POSTHOG_HOST = env("POSTHOG_HOST", "https://us.i.posthog.com")
POSTHOG_MAX_RETRIES = int(env("POSTHOG_MAX_RETRIES", "3"))

# --- Demo mode lets `make run` open the demo merchant's dashboard without Shopify. DEBUG only.
DEMO_MODE = env_bool("DEMO_MODE", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Notifications (apps.notifications): outbox, Klaviyo / Postscript / Slack senders.
# Base URLs default to the real services; tests and benchmarks point them at local fakes.
NOTIFICATIONS_KLAVIYO_BASE_URL = env("NOTIFICATIONS_KLAVIYO_BASE_URL", "https://a.klaviyo.com")
# LoyalNest's own Klaviyo account, for merchant-facing emails (shoppers' go through the merchant's key).
NOTIFICATIONS_KLAVIYO_PRIVATE_KEY = env("NOTIFICATIONS_KLAVIYO_PRIVATE_KEY", "")
NOTIFICATIONS_POSTSCRIPT_BASE_URL = env("NOTIFICATIONS_POSTSCRIPT_BASE_URL", "https://api.postscript.io")
# Merchants save https://hooks.slack.com/… URLs (D4); the sender swaps in this base.
NOTIFICATIONS_SLACK_WEBHOOK_BASE_URL = env("NOTIFICATIONS_SLACK_WEBHOOK_BASE_URL", "https://hooks.slack.com")
NOTIFICATIONS_SLACK_API_BASE_URL = env("NOTIFICATIONS_SLACK_API_BASE_URL", "https://slack.com/api/")
# Bot token of the LoyalNest Collective workspace (Web API), for merchants without a webhook.
NOTIFICATIONS_SLACK_BOT_TOKEN = env("NOTIFICATIONS_SLACK_BOT_TOKEN", "")
NOTIFICATIONS_CONNECT_TIMEOUT_SECONDS = float(env("NOTIFICATIONS_CONNECT_TIMEOUT_SECONDS", "3"))
NOTIFICATIONS_READ_TIMEOUT_SECONDS = float(env("NOTIFICATIONS_READ_TIMEOUT_SECONDS", "10"))
# Retries after the first attempt (E2), and the backoff: full jitter up to base * 2**n, capped.
NOTIFICATIONS_MAX_RETRIES = int(env("NOTIFICATIONS_MAX_RETRIES", "3"))
NOTIFICATIONS_BACKOFF_BASE_SECONDS = float(env("NOTIFICATIONS_BACKOFF_BASE_SECONDS", "2"))
NOTIFICATIONS_BACKOFF_MAX_SECONDS = float(env("NOTIFICATIONS_BACKOFF_MAX_SECONDS", "300"))
# A claimed (`sending`) row whose lease ran out is claimed again: its worker died (E1).
NOTIFICATIONS_LEASE_SECONDS = float(env("NOTIFICATIONS_LEASE_SECONDS", "300"))
NOTIFICATIONS_RELAY_BATCH_SIZE = int(env("NOTIFICATIONS_RELAY_BATCH_SIZE", "500"))
NOTIFICATIONS_SEND_CHUNK_SIZE = int(env("NOTIFICATIONS_SEND_CHUNK_SIZE", "25"))
NOTIFICATIONS_RELAY_INTERVAL_SECONDS = float(env("NOTIFICATIONS_RELAY_INTERVAL_SECONDS", "10"))
# Circuit breakers (E4): per merchant credential, and per provider across all merchants.
NOTIFICATIONS_BREAKER_FAIL_MAX = int(env("NOTIFICATIONS_BREAKER_FAIL_MAX", "5"))
NOTIFICATIONS_BREAKER_PROVIDER_FAIL_MAX = int(env("NOTIFICATIONS_BREAKER_PROVIDER_FAIL_MAX", "25"))
NOTIFICATIONS_BREAKER_RESET_SECONDS = int(env("NOTIFICATIONS_BREAKER_RESET_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["notifications-relay"] = {
    "task": "apps.notifications.tasks.notifications_relay_task",
    "schedule": NOTIFICATIONS_RELAY_INTERVAL_SECONDS,
}
# --- end of Notifications

# --- Storefront widgets (apps.theme_extensions)
# How long a merchant's widget content (tiers, rewards, texts) is served from the Redis stream
# `content:{merchant_id}:{locale}` before it is rebuilt from PostgreSQL; configuration changes
# clear it at once.
WIDGETS_CONTENT_TTL_SECONDS = float(env("WIDGETS_CONTENT_TTL_SECONDS", "60"))
# What every storefront request reads about its shop (widget content, beta flags) is also kept
# this long in each web process; a change made in a process is seen there at once, in the others
# within this delay.
STOREFRONT_LOCAL_CACHE_SECONDS = float(env("STOREFRONT_LOCAL_CACHE_SECONDS", "5"))
# Rewards listed in the widgets (cheapest first).
WIDGETS_CONTENT_REWARDS = int(env("WIDGETS_CONTENT_REWARDS", "10"))
PROXY_RATE_LIMITS["widgets"] = env("PROXY_RATE_LIMIT_WIDGETS", "120/60")
PROXY_RATE_LIMITS["widget_events"] = env("PROXY_RATE_LIMIT_WIDGET_EVENTS", "60/60")
# --- end of Storefront widgets

# --- RFM analytics (apps.rfm): scoring runs, churn models, nudges.
from celery.schedules import crontab  # noqa: E402  (kept inside this section)

# Nightly full rescoring and model training (UTC hour), incremental rescoring every N seconds.
RFM_NIGHTLY_HOUR = int(env("RFM_NIGHTLY_HOUR", "3"))
RFM_INCREMENTAL_INTERVAL_SECONDS = float(env("RFM_INCREMENTAL_INTERVAL_SECONDS", "900"))
# Below these sizes a merchant's churn model is the labelled recency rule instead.
RFM_CHURN_MIN_CUSTOMERS = int(env("RFM_CHURN_MIN_CUSTOMERS", "200"))
RFM_CHURN_MIN_PER_CLASS = int(env("RFM_CHURN_MIN_PER_CLASS", "20"))
# Shops with too little history borrow a model pooled over at most this many shops / customers
# of their industry (cached a day per industry and horizon).
RFM_POOLED_MAX_STORES = int(env("RFM_POOLED_MAX_STORES", "20"))
RFM_POOLED_MAX_CUSTOMERS = int(env("RFM_POOLED_MAX_CUSTOMERS", "50000"))
RFM_MLP_HIDDEN_UNITS = int(env("RFM_MLP_HIDDEN_UNITS", "16"))
RFM_MLP_MAX_ITER = int(env("RFM_MLP_MAX_ITER", "60"))
RFM_NUDGES_MAX_PER_RUN = int(env("RFM_NUDGES_MAX_PER_RUN", "1000"))
RFM_FORECAST_MAX_CUSTOMERS = int(env("RFM_FORECAST_MAX_CUSTOMERS", "1000"))
# Score history (one row per customer per run) older than this is pruned nightly.
RFM_HISTORY_RETENTION_DAYS = int(env("RFM_HISTORY_RETENTION_DAYS", "400"))
# The seeds' remote model (xAI, OpenAI-compatible chat completions): off unless enabled with a key.
RFM_XAI_ENABLED = env_bool("RFM_XAI_ENABLED", False)
RFM_XAI_API_KEY = env("RFM_XAI_API_KEY", "")
RFM_XAI_BASE_URL = env("RFM_XAI_BASE_URL", "https://api.x.ai/v1")
RFM_XAI_MODEL = env("RFM_XAI_MODEL", "grok-3-mini")
RFM_XAI_BATCH_SIZE = int(env("RFM_XAI_BATCH_SIZE", "200"))
RFM_XAI_CONNECT_TIMEOUT_SECONDS = float(env("RFM_XAI_CONNECT_TIMEOUT_SECONDS", "3"))
RFM_XAI_READ_TIMEOUT_SECONDS = float(env("RFM_XAI_READ_TIMEOUT_SECONDS", "30"))
CELERY_BEAT_SCHEDULE["rfm-nightly"] = {
    "task": "apps.rfm.tasks.rfm_nightly_all_task",
    "schedule": crontab(hour=RFM_NIGHTLY_HOUR, minute=15),
}
CELERY_BEAT_SCHEDULE["rfm-incremental"] = {
    "task": "apps.rfm.tasks.rfm_incremental_all_task",
    "schedule": RFM_INCREMENTAL_INTERVAL_SECONDS,
}
# --- end of RFM analytics

# --- Merchant referrals (apps.merchant_referrals): links, clicks, conversions, rewards.
# Where /r/<code> sends a visitor (the app's Shopify App Store listing).
MERCHANT_REFERRALS_LISTING_URL = env("MERCHANT_REFERRALS_LISTING_URL", "https://apps.shopify.com/loyalnest")
# A click counts for an install this many days later (the referral cookie's lifetime too).
MERCHANT_REFERRALS_ATTRIBUTION_DAYS = int(env("MERCHANT_REFERRALS_ATTRIBUTION_DAYS", "30"))
# A referred shop claims its code within this many hours of its install (later: not a referral).
MERCHANT_REFERRALS_CLAIM_HOURS = int(env("MERCHANT_REFERRALS_CLAIM_HOURS", "48"))
# A pending referral completes after the referred store stays installed this many days, and
# expires when it has not qualified this many days after the install.
MERCHANT_REFERRALS_QUALIFYING_DAYS = int(env("MERCHANT_REFERRALS_QUALIFYING_DAYS", "30"))
MERCHANT_REFERRALS_COMPLETION_WINDOW_DAYS = int(env("MERCHANT_REFERRALS_COMPLETION_WINDOW_DAYS", "90"))
# Rewards: the advocate's (default one month free), the referred store's welcome (off when empty).
MERCHANT_REFERRALS_ADVOCATE_REWARD = env("MERCHANT_REFERRALS_ADVOCATE_REWARD", "1_month_free")
MERCHANT_REFERRALS_ADVOCATE_REWARD_AMOUNT = env("MERCHANT_REFERRALS_ADVOCATE_REWARD_AMOUNT", "29.00")
MERCHANT_REFERRALS_WELCOME_REWARD = env("MERCHANT_REFERRALS_WELCOME_REWARD", "")
MERCHANT_REFERRALS_WELCOME_REWARD_AMOUNT = env("MERCHANT_REFERRALS_WELCOME_REWARD_AMOUNT", "0")
MERCHANT_REFERRALS_REWARD_CURRENCY = env("MERCHANT_REFERRALS_REWARD_CURRENCY", "USD")
# App credits go through Shopify's Partner API (appCreditCreate; the Admin API's was deprecated
# in 2023-07): the partner organization, the app's gid and a Partner API token (secret).
SHOPIFY_PARTNER_API_URL = env("SHOPIFY_PARTNER_API_URL", "https://partners.shopify.com")
SHOPIFY_PARTNER_ORGANIZATION_ID = env("SHOPIFY_PARTNER_ORGANIZATION_ID", "")
SHOPIFY_PARTNER_APP_GID = env("SHOPIFY_PARTNER_APP_GID", "")
SHOPIFY_PARTNER_API_TOKEN = env("SHOPIFY_PARTNER_API_TOKEN", "")
SHOPIFY_PARTNER_API_VERSION = env("SHOPIFY_PARTNER_API_VERSION", "2026-10")
MERCHANT_REFERRALS_TEST_CREDITS = env_bool("MERCHANT_REFERRALS_TEST_CREDITS", DEBUG)
# /r/<code> lookups per client address.
MERCHANT_REFERRALS_REDIRECT_RATE = env("MERCHANT_REFERRALS_REDIRECT_RATE", "30/60")
MERCHANT_REFERRALS_ADVANCE_INTERVAL_SECONDS = float(env("MERCHANT_REFERRALS_ADVANCE_INTERVAL_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE["merchant-referrals-advance"] = {
    "task": "apps.merchant_referrals.tasks.merchant_referrals_advance_task",
    "schedule": MERCHANT_REFERRALS_ADVANCE_INTERVAL_SECONDS,
}
MIDDLEWARE.append("apps.merchant_referrals.middleware.ReferralAttributionMiddleware")
# --- end of Merchant referrals

# --- Wallet passes (apps.wallet): Apple .pkpass, Google Wallet, PassKit updates.
# Every certificate and key below is a PEM given inline (newlines may be written "\n") or the
# path of a PEM file; none is ever in the repository. Unset → that wallet answers
# `wallet_not_configured`.
WALLET_PUBLIC_URL = env("WALLET_PUBLIC_URL", APP_URL)  # where devices fetch passes and PassKit updates
WALLET_PASS_URL_TTL_SECONDS = int(env("WALLET_PASS_URL_TTL_SECONDS", "900"))
WALLET_APPLE_PASS_TYPE_ID = env("WALLET_APPLE_PASS_TYPE_ID", "")  # pass.com.example.loyalnest
WALLET_APPLE_TEAM_ID = env("WALLET_APPLE_TEAM_ID", "")
WALLET_APPLE_CERTIFICATE = env("WALLET_APPLE_CERTIFICATE", "")  # the Pass Type ID certificate
WALLET_APPLE_KEY = env("WALLET_APPLE_KEY", "")
WALLET_APPLE_KEY_PASSWORD = env("WALLET_APPLE_KEY_PASSWORD", "")
WALLET_APPLE_WWDR_CERTIFICATE = env("WALLET_APPLE_WWDR_CERTIFICATE", "")  # Apple's WWDR intermediate
# APNs token authentication (a .p8 key); pushes go over HTTP/2.
WALLET_APNS_BASE_URL = env("WALLET_APNS_BASE_URL", "https://api.push.apple.com")
WALLET_APNS_KEY_ID = env("WALLET_APNS_KEY_ID", "")
WALLET_APNS_KEY = env("WALLET_APNS_KEY", "")
WALLET_GOOGLE_ISSUER_ID = env("WALLET_GOOGLE_ISSUER_ID", "")
WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL = env("WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL", "")
WALLET_GOOGLE_PRIVATE_KEY = env("WALLET_GOOGLE_PRIVATE_KEY", "")
WALLET_GOOGLE_API_BASE_URL = env("WALLET_GOOGLE_API_BASE_URL", "https://walletobjects.googleapis.com/walletobjects/v1")
WALLET_GOOGLE_TOKEN_URL = env("WALLET_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")
WALLET_HTTP_CONNECT_TIMEOUT_SECONDS = float(env("WALLET_HTTP_CONNECT_TIMEOUT_SECONDS", "3"))
WALLET_HTTP_READ_TIMEOUT_SECONDS = float(env("WALLET_HTTP_READ_TIMEOUT_SECONDS", "10"))
# Pass updates: retried at most this many times (exponential backoff with jitter), then `failed`.
WALLET_PUSH_MAX_RETRIES = int(env("WALLET_PUSH_MAX_RETRIES", "3"))
WALLET_PUSH_RETRY_BASE_SECONDS = float(env("WALLET_PUSH_RETRY_BASE_SECONDS", "30"))
PROXY_RATE_LIMITS["wallet"] = env("PROXY_RATE_LIMIT_WALLET", "10/60")
CELERY_BEAT_SCHEDULE["wallet-passes-sweep"] = {
    "task": "apps.wallet.tasks.wallet_passes_sweep_task",
    "schedule": 300.0,
}
# --- end of Wallet passes

# --- Gamification (apps.gamification): badges, streaks, team leaderboards
# Nightly: reset broken streaks and rebuild the current cycle's team sorted sets (UTC hour).
GAMIFICATION_NIGHTLY_HOUR = int(env("GAMIFICATION_NIGHTLY_HOUR", "2"))
# Most teams one ranking read returns (top N).
GAMIFICATION_LEADERBOARD_MAX_LIMIT = int(env("GAMIFICATION_LEADERBOARD_MAX_LIMIT", "100"))
PROXY_RATE_LIMITS["gamification"] = env("PROXY_RATE_LIMIT_GAMIFICATION", "120/60")
# One OpenAPI enum for the streak action types (the streak call and the settings both use them).
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["GamificationActionTypeEnum"] = (
    "apps.gamification.models.ActionType"
)
CELERY_BEAT_SCHEDULE["gamification-nightly"] = {
    "task": "apps.gamification.tasks.gamification_nightly_all_task",
    "schedule": crontab(hour=GAMIFICATION_NIGHTLY_HOUR, minute=30),
}
# --- end of Gamification

# --- Slack community (apps.slack_community): LoyalNest Collective
# The Web API calls reuse the Collective's bot token and base URL of the notifications section
# (NOTIFICATIONS_SLACK_BOT_TOKEN, NOTIFICATIONS_SLACK_API_BASE_URL) and its circuit breakers.
# Channels a new member is added to (comma-separated channel ids, e.g. C0123ABCD,C0456EFGH).
SLACK_COMMUNITY_CHANNEL_IDS = [c.strip() for c in env("SLACK_COMMUNITY_CHANNEL_IDS", "").split(",") if c.strip()]
# Optional Enterprise Grid admin token (admin.conversations.invite); blank: conversations.invite.
SLACK_COMMUNITY_ADMIN_TOKEN = env("SLACK_COMMUNITY_ADMIN_TOKEN", "")
# Events API request signing secret (X-Slack-Signature); blank refuses every event.
SLACK_COMMUNITY_SIGNING_SECRET = env("SLACK_COMMUNITY_SIGNING_SECRET", "")
# The Collective's invite link shown on the merchant page to people not yet in the workspace.
SLACK_COMMUNITY_WORKSPACE_URL = env("SLACK_COMMUNITY_WORKSPACE_URL", "https://loyalnest-collective.slack.com")
# An invite Slack could not take (rate limit, outage, open breaker) is retried this many times.
SLACK_COMMUNITY_INVITE_MAX_RETRIES = int(env("SLACK_COMMUNITY_INVITE_MAX_RETRIES", "3"))
# --- end of Slack community

# --- Multi-store (apps.multistore): store groups, one shared ledger, metafield copies
# How long a signed store-group invite stays valid (seconds).
MULTISTORE_INVITE_TTL_SECONDS = int(env("MULTISTORE_INVITE_TTL_SECONDS", str(7 * 24 * 3600)))
# Link the group's customers (Celery) as soon as a store joins.
MULTISTORE_LINK_ON_JOIN = env_bool("MULTISTORE_LINK_ON_JOIN", True)
# Queue a copy sync of the other stores after every shared balance change.
MULTISTORE_SYNC_ON_CHANGE = env_bool("MULTISTORE_SYNC_ON_CHANGE", True)
CELERY_BEAT_SCHEDULE["multistore-reconcile"] = {
    "task": "apps.multistore.tasks.group_reconcile_all_task",
    "schedule": crontab(minute=15),
}
# --- end of Multi-store

# --- Operations: one Celery queue per workload, so each scales on its own machines
#     (docs/OPERATIONS.md). A worker started without -Q consumes all four queues.
from kombu import Queue  # noqa: E402  (kept inside this section)

WORKLOAD_QUEUES = ("default", "notifications", "analytics", "shopify")
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in WORKLOAD_QUEUES)
CELERY_TASK_CREATE_MISSING_QUEUES = False
# Exact names first, then patterns in order (the first match wins); anything else: "default".
CELERY_TASK_ROUTES = {
    # Shopify writes started by analytics or referral features still use the Shopify rate budget.
    "apps.rfm.tasks.rfm_benchmarks_metafield_sync_task": {"queue": "shopify"},
    "apps.gamification.awarding.gamification_flow_triggers_task": {"queue": "shopify"},
    "apps.merchant_referrals.tasks.merchant_referral_metafield_task": {"queue": "shopify"},
    "apps.merchant_referrals.tasks.merchant_referral_reward_apply_task": {"queue": "shopify"},
    "apps.merchant_referrals.tasks.shop_owner_refresh_task": {"queue": "shopify"},
    "apps.merchant_referrals.tasks.merchant_referrals_advance_task": {"queue": "analytics"},
    "apps.slack_community.tasks.slack_community_metafields_write_task": {"queue": "shopify"},
    "apps.slack_community.tasks.slack_community_invite_task": {"queue": "notifications"},
    "apps.core.tasks.vip_tiers_recalculate_task": {"queue": "analytics"},
    "apps.notifications.*": {"queue": "notifications"},
    "apps.rfm.*": {"queue": "analytics"},
    "apps.gamification.*": {"queue": "analytics"},
    "apps.shopify.*": {"queue": "shopify"},
    "apps.multistore.*": {"queue": "shopify"},
    "apps.wallet.*": {"queue": "shopify"},
}


# Time limits, "soft,hard" seconds. At the soft limit the task gets SoftTimeLimitExceeded inside
# its transaction (rolled back; earlier batches stay committed and the next run resumes after
# them); at the hard limit the prefork pool kills the process (the message is acknowledged, not
# redelivered). Per queue (env CELERY_TIME_LIMITS_<QUEUE>), and for the long jobs named below
# their own; both stay under CELERY_VISIBILITY_TIMEOUT, or a task still running is delivered again
# (production settings refuse to start otherwise).
def _time_limits(name: str, default: str) -> tuple[float, float]:
    soft, hard = (float(part) for part in env(f"CELERY_TIME_LIMITS_{name}", default).split(","))
    return soft, hard


CELERY_QUEUE_TIME_LIMITS = {
    "default": _time_limits("DEFAULT", "300,360"),
    # Under NOTIFICATIONS_LEASE_SECONDS (300): a send still running never outlives its lease.
    "notifications": _time_limits("NOTIFICATIONS", "240,270"),
    "analytics": _time_limits("ANALYTICS", "600,720"),
    "shopify": _time_limits("SHOPIFY", "300,360"),
}
CELERY_TASK_TIME_LIMITS = {
    # 13 s per 100,000-customer shop measured (docs/PERFORMANCE.md); room for shops 10× that.
    "apps.rfm.tasks.rfm_nightly_task": _time_limits("RFM_NIGHTLY", "1200,1500"),
    "apps.gamification.tasks.badge_backfill_task": _time_limits("BADGE_BACKFILL", "1200,1500"),
    # Linking measured at ~2 ms per customer; reconciling reads every copy of a group.
    "apps.multistore.tasks.shared_customers_link_task": _time_limits("MULTISTORE_BULK", "1200,1500"),
    "apps.multistore.tasks.group_reconcile_task": _time_limits("MULTISTORE_BULK", "1200,1500"),
    # Up to SHOPIFY_RECONCILE_MAX_PAGES GraphQL pages; the watermark advances after each page.
    "apps.shopify.webhooks.tasks.orders_reconcile_task": _time_limits("ORDERS_RECONCILE", "900,1080"),
    "apps.backups.tasks.backup_nightly_task": _time_limits("BACKUPS", "3000,3300"),
    "apps.backups.tasks.backup_drill_task": _time_limits("BACKUPS", "3000,3300"),
}
# Sets each task's soft_time_limit / time_limit from the tables above (loyalnest/tasks.py).
CELERY_TASK_ANNOTATIONS = ["loyalnest.tasks.TimeLimits"]
# --- end of Operations

# --- Backups (apps.backups): nightly encrypted pg_dump, 90 days by date, weekly restore drill
INSTALLED_APPS += ["apps.backups"]
# "keyid:base64(32 bytes)[,…]": the first encrypts, all decrypt. Separate from ENCRYPTION_KEYS;
# kept outside the database and outside the backup bucket. Empty: backups refuse to run.
BACKUP_ENCRYPTION_KEYS = env("BACKUP_ENCRYPTION_KEYS", "")
# "s3" (Backblaze B2 or any S3-compatible endpoint) or "local" (a directory; dev and tests).
BACKUP_STORAGE = env("BACKUP_STORAGE", "local")
BACKUP_LOCAL_DIRECTORY = env("BACKUP_LOCAL_DIRECTORY", str(BASE_DIR / "var" / "backups"))
BACKUP_S3_BUCKET = env("BACKUP_S3_BUCKET", "")
BACKUP_S3_PREFIX = env("BACKUP_S3_PREFIX", "loyalnest/")
BACKUP_S3_ENDPOINT_URL = env("BACKUP_S3_ENDPOINT_URL", "")  # e.g. https://s3.us-west-004.backblazeb2.com
BACKUP_S3_REGION = env("BACKUP_S3_REGION", "")
BACKUP_S3_ACCESS_KEY_ID = env("BACKUP_S3_ACCESS_KEY_ID", "")
BACKUP_S3_SECRET_ACCESS_KEY = env("BACKUP_S3_SECRET_ACCESS_KEY", "")
BACKUP_KEEP_DAYS = int(env("BACKUP_KEEP_DAYS", "90"))
# Directory of pg_dump / pg_restore matching the server's major version (blank: from PATH).
BACKUP_PG_BIN_DIR = env("BACKUP_PG_BIN_DIR", "")
# Re-applies one logged erasure after a restore (the compliance code owns the erasure logic).
BACKUP_ERASURE_REPLAY = "apps.shopify.webhooks.compliance.erasure_replay"
CELERY_BEAT_SCHEDULE["backups-nightly"] = {
    "task": "apps.backups.tasks.backup_nightly_task",
    "schedule": crontab(hour=int(env("BACKUP_NIGHTLY_HOUR", "2")), minute=0),
}
CELERY_BEAT_SCHEDULE["backups-drill-weekly"] = {
    "task": "apps.backups.tasks.backup_drill_task",
    "schedule": crontab(day_of_week="sunday", hour=int(env("BACKUP_NIGHTLY_HOUR", "2")) + 2, minute=0),
}
# --- end of Backups
