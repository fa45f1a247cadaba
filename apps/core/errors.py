"""The error-code catalogue. Every error the API returns is one of these codes.

Messages are lazy translations, rendered in the request's locale by the API layer.
"""

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    """Base of every expected failure: a stable `code`, an HTTP status, a localized message."""

    code = "application_error"
    status = 400
    default_message = _("The request could not be completed.")

    def __init__(self, message=None, *, code=None, status=None, details=None):
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        super().__init__(str(self.code))


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status = 400
    default_message = _("Some fields are missing or invalid.")


class InvalidLocale(ApplicationError):
    code = "invalid_locale"
    status = 400
    default_message = _("This locale is not supported.")


class MalformedRequest(ApplicationError):
    code = "malformed_request"
    status = 400
    default_message = _("The request body is not valid JSON.")


class AuthenticationFailed(ApplicationError):
    code = "authentication_failed"
    status = 401
    default_message = _("Your session has expired or is invalid. Reload the app.")


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403
    default_message = _("You do not have permission to do this.")


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class MethodNotAllowed(ApplicationError):
    code = "method_not_allowed"
    status = 405
    default_message = _("This method is not allowed here.")


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    default_message = _("The request conflicts with the current state.")


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = _("This Idempotency-Key was already used with a different request.")


class InsufficientPoints(ApplicationError):
    code = "insufficient_points"
    status = 422
    default_message = _("The customer does not have enough points.")


class PayloadTooLarge(ApplicationError):
    code = "payload_too_large"
    status = 413
    default_message = _("The request body is too large.")


class UnsupportedMediaType(ApplicationError):
    code = "unsupported_media_type"
    status = 415
    default_message = _("Send the request body as application/json.")


class RateLimited(ApplicationError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many requests. Try again in a moment.")


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    status = 503
    default_message = _("The service is temporarily unavailable. Try again shortly.")


class InternalError(ApplicationError):
    code = "internal_error"
    status = 500
    default_message = _("Something went wrong on our side. It has been logged.")


CATALOGUE = {
    cls.code: cls
    for cls in (
        ValidationFailed,
        InvalidLocale,
        MalformedRequest,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        Conflict,
        IdempotencyConflict,
        InsufficientPoints,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        ServiceUnavailable,
        InternalError,
    )
}
