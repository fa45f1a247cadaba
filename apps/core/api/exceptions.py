"""Turn every exception raised in an API view into the error envelope, in the request's locale."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.core import errors

from .responses import error_body

logger = logging.getLogger(__name__)

RETRY_INVALID_SESSION_HEADER = "X-Shopify-Retry-Invalid-Session-Request"

_DRF_TO_APP = (
    (drf.ParseError, errors.MalformedRequest),
    (drf.NotAuthenticated, errors.AuthenticationFailed),
    (drf.AuthenticationFailed, errors.AuthenticationFailed),
    (drf.PermissionDenied, errors.PermissionDenied),
    (drf.NotFound, errors.NotFound),
    (drf.MethodNotAllowed, errors.MethodNotAllowed),
    (drf.UnsupportedMediaType, errors.UnsupportedMediaType),
    (drf.Throttled, errors.RateLimited),
    (Http404, errors.NotFound),
    (DjangoPermissionDenied, errors.PermissionDenied),
)


def _flatten(detail):
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        flat = [_flatten(item) for item in detail]
        return flat if any(isinstance(item, (dict, list)) for item in flat) else [str(i) for i in flat]
    return str(detail)


def as_application_error(exc) -> errors.ApplicationError | None:
    if isinstance(exc, errors.ApplicationError):
        return exc
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return errors.ValidationFailed(details=_flatten(detail))
    for drf_class, app_class in _DRF_TO_APP:
        if isinstance(exc, drf_class):
            return app_class()
    if isinstance(exc, (OperationalError, DatabaseError)):
        logger.exception("Database unavailable while serving an API request")
        return errors.ServiceUnavailable()
    return None


def envelope_exception_handler(exc, context):
    app_error = as_application_error(exc)
    if app_error is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        app_error = errors.InternalError()
    headers = {}
    # App Bridge retries such a request once with a fresh session token; for an error that says
    # "retry with a new session" (e.g. a shop whose Shopify grant must be renewed, which the
    # next session-token request does) that retry is the cure.
    if isinstance(app_error, errors.AuthenticationFailed) or getattr(app_error, "retry_with_new_session", False):
        headers[RETRY_INVALID_SESSION_HEADER] = "1"
    if isinstance(exc, drf.Throttled) and exc.wait:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    body = error_body(app_error.code, app_error.message, app_error.details)
    return Response(body, status=app_error.status, headers=headers)
