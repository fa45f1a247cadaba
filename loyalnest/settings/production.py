"""Production: refuses to start with a default secret; HTTPS everywhere."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    CELERY_QUEUE_TIME_LIMITS,
    CELERY_TASK_TIME_LIMITS,
    CELERY_VISIBILITY_TIMEOUT,
    DEMO_MODE,
    ENCRYPTION_KEYS,
    INSECURE_DEFAULT_ENCRYPTION_KEYS,
    INSECURE_DEFAULT_SECRET_KEY,
    SECRET_KEY,
    SHOPIFY_API_BASE_URL,
    SHOPIFY_API_SECRET,
    env,
    env_bool,
)

DEBUG = False
if SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random value of 50+ characters.")
if ENCRYPTION_KEYS == INSECURE_DEFAULT_ENCRYPTION_KEYS or "dev:" in ENCRYPTION_KEYS:
    raise ImproperlyConfigured("ENCRYPTION_KEYS must be set to production keys.")
if not SHOPIFY_API_SECRET:
    raise ImproperlyConfigured("SHOPIFY_API_SECRET must be set.")
if SHOPIFY_API_BASE_URL:
    raise ImproperlyConfigured("SHOPIFY_API_BASE_URL is for tests and development only.")
if DEMO_MODE:
    raise ImproperlyConfigured("DEMO_MODE must be off in production.")
for _name, (_soft, _hard) in [*CELERY_QUEUE_TIME_LIMITS.items(), *CELERY_TASK_TIME_LIMITS.items()]:
    if not 0 < _soft < _hard < CELERY_VISIBILITY_TIMEOUT:
        raise ImproperlyConfigured(
            f"Time limits of {_name}: need 0 < soft ({_soft}) < hard ({_hard}) < CELERY_VISIBILITY_TIMEOUT."
        )

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
