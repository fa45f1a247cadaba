"""The response envelope of every API answer (specification):
`{"status": "ok", …fields…, "error": null}` or `{"status": "error", "error": {code, message}}`."""

from django.http import JsonResponse
from rest_framework.response import Response


def ok_body(**fields) -> dict:
    return {"status": "ok", **fields, "error": None}


def error_body(code: str, message: str, details=None) -> dict:
    error = {"code": code, "message": str(message)}
    if details:
        error["fields"] = details
    return {"status": "error", "error": error}


def ok(status=200, headers=None, **fields) -> Response:
    return Response(ok_body(**fields), status=status, headers=headers)


def error_response(code: str, message: str, status: int, details=None) -> JsonResponse:
    """A plain Django response, for middleware and URL-level handlers outside DRF."""
    return JsonResponse(error_body(code, message, details), status=status)
