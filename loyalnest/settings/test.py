"""The test suite: real PostgreSQL and Redis (CI starts them), fast password hashing."""

import os

import dj_database_url

from .base import *  # noqa: F403
from .base import DATABASES, env

DATABASES["default"] = dj_database_url.parse(
    env("TEST_DATABASE_URL", env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalnest")),
    conn_max_age=0,
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "apps.core.db.postgresql"  # as in production (base.py)
REDIS_URL = env("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"loyalnest-test-{os.getpid()}",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True},
    }
}
CELERY_BROKER_URL = REDIS_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SHOPIFY_API_KEY = "test-client-id"
SHOPIFY_API_SECRET = "test-client-secret-for-the-fake-shopify-0123456789"  # noqa: S105  (the fake Shopify signs with it)
POSTHOG_API_KEY = ""
DEMO_MODE = False
WHITENOISE_AUTOREFRESH = True
