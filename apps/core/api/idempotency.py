"""`Idempotency-Key` on merchant POSTs (RELIABILITY C2).

Same key and same body → the stored response again; same key with another body → 409. The
record is inserted before the handler runs, in the handler's transaction, so a concurrent
duplicate waits on the unique index and then replays the committed answer.
"""

import hashlib
import json
from functools import wraps

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from rest_framework.response import Response

from apps.core import errors
from apps.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class _DoNotStore(Exception):
    def __init__(self, response):
        self.response = response


def request_fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise errors.IdempotencyConflict()
    return Response(record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"})


def idempotency_key(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise errors.ValidationFailed(details={HEADER: [str(_("Use 1 to 255 characters."))]})
    return key


def stored_key(view, request, key: str) -> str:
    """The key the record is stored under. Keys are unique per merchant; a view whose callers
    share a merchant but must never see each other's answers (storefront shoppers) names a
    namespace with `idempotency_namespace(request)`, and the client's key is hashed into it."""
    namespace_of = getattr(view, "idempotency_namespace", None)
    namespace = namespace_of(request) if namespace_of is not None else None
    if not namespace:
        return key
    return f"{namespace}:{hashlib.sha256(key.encode()).hexdigest()}"


def idempotent(handler):
    """Decorate a view method that changes state. Only successful answers are stored."""

    @wraps(handler)
    def wrapper(self, request, *args, **kwargs):
        key = idempotency_key(request)
        if key is None:
            return handler(self, request, *args, **kwargs)
        key = stored_key(self, request, key)
        fingerprint = request_fingerprint(request)
        merchant = request.merchant
        existing = IdempotencyRecord.objects.filter(merchant=merchant, key=key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(
                            merchant=merchant,
                            key=key,
                            method=request.method,
                            path=request.path[:255],
                            request_fingerprint=fingerprint,
                            response_status=0,
                            response_body={},
                        )
                except IntegrityError:
                    record = None
                if record is not None:
                    response = handler(self, request, *args, **kwargs)
                    if not 200 <= response.status_code < 300:
                        raise _DoNotStore(response)
                    record.response_status = response.status_code
                    record.response_body = response.data
                    record.save(update_fields=["response_status", "response_body"])
                    return response
        except _DoNotStore as outcome:
            return outcome.response
        # A concurrent request with the same key committed first: answer as it did.
        return _replay(IdempotencyRecord.objects.get(merchant=merchant, key=key), fingerprint)

    return wrapper
