"""gunicorn in production: `gunicorn -c deploy/gunicorn.conf.py loyalnest.wsgi` (docs/OPERATIONS.md).

Sync workers with persistent database connections (DB_CONN_MAX_AGE, health-checked by Django);
every value can be overridden from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "sync"
# Shopify gives a webhook 5 s; nothing the app answers should take more than 30 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (bounded memory growth); jitter so they do not restart together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Each worker touches a heartbeat file for the arbiter a few times per request: on a disk-backed
# /tmp that cost the storefront endpoint ~15 % of its throughput (docs/PERFORMANCE.md); in memory
# it costs nothing. Gunicorn's documentation recommends /dev/shm for the same reason.
# (gunicorn makes the file with mkstemp and unlinks it at once: nothing another user could take over.)
SHARED_MEMORY = "/dev/shm"  # noqa: S108
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) else None)
# The TLS-terminating proxy in front sets X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
