"""The project's WSGI application plus one bare DRF view, for the widgets benchmark's baseline.

`GET /bench/bare?logged_in_customer_id=<id>` reads one customer row by its Shopify id and answers
its balance through DRF: no signature, no rate limit, no tenancy scope. It is what "a bare DRF
view reading one row" costs on this machine, measured under the same gunicorn and wrk settings
as the widget endpoint. Served only by the benchmark (`gunicorn bench.baseline.wsgi`).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalnest.settings.base")

import django
from django.conf import settings

django.setup()
settings.ROOT_URLCONF = "bench.baseline.urls"

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
